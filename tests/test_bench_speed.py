"""``emtrack bench speed``, and the fast paths of the online tracker it measures.

The first part checks the benchmark's structure on tiny streams (no timing is asserted). The
second checks that the tracker's fast paths compute what the reference code computes: the
feature planes bit for bit against :func:`emtrack.model.features.edge_features`, the in-place
Kalman steps bit for bit against :mod:`emtrack.track.motion`'s reference functions, the far-pair
bound against the network itself, and the tracker with far pairs skipped against the tracker
that scores every pair.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import emtrack.track.logit_grid as grid_module
import emtrack.track.tracker as tracker_module
from emtrack.cli import main
from emtrack.errors import EmtrackInputError
from emtrack.model.features import NUM_FEATURES, edge_features
from emtrack.track import Tracker, TrackerConfig, load_model, motion
from emtrack.track.far_pairs import far_pair_bound
from emtrack.track.feature_planes import edge_feature_planes

HAVE_TRACKERS = importlib.util.find_spec("trackers") is not None
needs_trackers = pytest.mark.skipif(not HAVE_TRACKERS, reason="needs the 'trackers' package")


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def test_density_stream_is_seeded_and_near_its_target() -> None:
    from emtrack.bench.speed_bench import density_stream

    dets, seqinfo, mean_objects = density_stream(40, 30, seed=3)
    again, _, _ = density_stream(40, 30, seed=3)
    assert seqinfo.seq_length == 30 and seqinfo.frame_rate == 30.0
    np.testing.assert_array_equal(dets.boxes_xyxy, again.boxes_xyxy)
    assert (dets.ids == -1).all()  # identities removed before any tracker sees them
    assert 0.7 * 40 <= len(dets) / 30 <= 1.3 * 40
    assert mean_objects > 40  # occlusion hides some people, so more are needed
    with pytest.raises(EmtrackInputError):
        density_stream(0, 30)


@needs_trackers
def test_speed_bench_rows_and_ratios() -> None:
    from emtrack.bench.speed_bench import SPEED_TRACKERS, run_speed_bench

    report = run_speed_bench((3, 15), num_frames=12, seed=1)
    assert report.trackers == SPEED_TRACKERS and report.skipped == ()
    assert [row.target for row in report.rows] == [3, 15]
    for row in report.rows:
        assert row.frames == 12 and row.dets_per_frame > 0
        fps = {name: row.fps(name) for name in SPEED_TRACKERS}
        assert all(value is not None and value > 0 for value in fps.values())
        assert row.ratio is not None and row.ratio > 0
    table = report.format_table().splitlines()
    assert table[0].split() == ["dets/frame", "frames", *SPEED_TRACKERS, "emtrack/bytetrack"]
    assert len(table) == 2 + len(report.rows)
    with pytest.raises(EmtrackInputError):
        run_speed_bench((), num_frames=12)


def test_speed_row_ratio_worked_by_hand() -> None:
    """100 frames in 0.5 s (emtrack) and in 2 s (ByteTrack): 200 and 50 frames/s, ratio 4."""
    from emtrack.bench.speed_bench import SpeedRow

    seconds = {"emtrack": 0.5, "bytetrack": 2.0, "sort": 0.25}
    row = SpeedRow(
        target=10, dets_per_frame=10.2, frames=100, mean_objects=8.0, update_seconds=seconds
    )
    assert (row.fps("emtrack"), row.fps("bytetrack"), row.fps("ocsort")) == (200.0, 50.0, None)
    assert row.ratio == 4.0
    record = row.to_dict()
    assert record["fps"] == {"emtrack": 200.0, "bytetrack": 50.0, "sort": 400.0}
    assert record["emtrack_vs_bytetrack"] == 4.0
    # Without ByteTrack, or with no time measured for it, there is no ratio.
    assert dataclasses.replace(row, update_seconds={"emtrack": 0.5}).ratio is None
    unmeasured = dataclasses.replace(row, update_seconds={"emtrack": 0.5, "bytetrack": 0.0})
    assert unmeasured.fps("bytetrack") == math.inf and unmeasured.ratio is None
    assert unmeasured.to_dict()["emtrack_vs_bytetrack"] is None
    assert unmeasured.to_dict()["fps"]["bytetrack"] is None  # JSON has no infinity


@needs_trackers
def test_bench_speed_cli_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "speed.json"
    argv = ["-q", "bench", "speed", "--dets", "4,9", "--frames", "10", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "emtrack/bytetrack" in printed
    data = json.loads(out.read_text())
    assert data["benchmark"] == "emtrack bench speed"
    assert data["settings"]["densities"] == [4, 9] and data["settings"]["frames"] == 10
    assert [row["target_dets_per_frame"] for row in data["rows"]] == [4, 9]
    for row in data["rows"]:
        assert set(row["fps"]) == {"emtrack", "bytetrack", "sort"}
        assert row["emtrack_vs_bytetrack"] > 0
    assert "machine" in data and "versions" in data
    assert not list(out.parent.glob("*.tmp*"))  # written atomically, no leftovers


@pytest.mark.parametrize("value", ["0", "ten", "5,-1"])
def test_bench_speed_bad_densities_exit_2(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "speed", "--dets", value]) == 2
    assert "--dets" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The fast paths compute what the reference code computes
# --------------------------------------------------------------------------------------------


def random_boxes(rng: np.random.Generator, count: int, spread: float = 2000.0) -> np.ndarray:
    """Boxes with sides from 0.0001 px to 1100 px (tiny ones exercise the side floor)."""
    corner = rng.uniform(-50.0, spread, (count, 2))
    sides = np.exp(rng.uniform(-9.0, 7.0, (count, 2)))
    return np.concatenate([corner, corner + sides], 1)


def reference_logits(weights, ref: np.ndarray, cur: np.ndarray, gap: np.ndarray) -> np.ndarray:
    x = edge_features(ref, cur, gap)
    for k, (w, b) in enumerate(weights.layers):
        x = x @ w + b
        if k < len(weights.layers) - 1:
            np.maximum(x, 0.0, out=x)
    return x[..., 0]


def test_feature_planes_equal_edge_features_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for num_cur, num_ref in [(0, 3), (1, 1), (7, 11), (40, 25)]:
        ref, cur = random_boxes(rng, num_ref), random_boxes(rng, num_cur)
        gap = rng.uniform(-1.0, 12.0, (1, num_ref))  # clamped to [0, 10] s
        planes = np.empty((NUM_FEATURES, num_cur, num_ref))
        edge_feature_planes(ref.T[:, None, :], cur.T[:, :, None], gap, planes)
        np.testing.assert_array_equal(np.moveaxis(planes, 0, -1), edge_features(ref, cur, gap))
        pairs = np.empty((NUM_FEATURES, num_ref))
        matched = random_boxes(rng, num_ref)
        edge_feature_planes(ref.T, matched.T, gap[0], pairs)
        expected = edge_features(ref[:, None, :], matched[:, None, :], gap[0, :, None, None])
        np.testing.assert_array_equal(pairs.T, expected[:, 0, 0])


def test_fast_logits_match_the_reference_network() -> None:
    rng = np.random.default_rng(1)
    weights = load_model()
    ref, cur = random_boxes(rng, 300), random_boxes(rng, 30)  # 9000 pairs: blocked products
    gap = rng.uniform(0.0, 3.0, 300)
    expected = reference_logits(weights, ref, cur, gap[None, :])
    np.testing.assert_allclose(weights.grid_logits(ref, cur, gap), expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        weights.logits(ref, cur, gap[None, :]), expected, rtol=1e-12, atol=1e-9
    )
    rows, cols = rng.integers(0, 30, 500), rng.integers(0, 300, 500)
    np.testing.assert_allclose(
        weights.pair_logits(ref[cols], cur[rows], gap[cols]),
        expected[rows, cols],
        rtol=1e-12,
        atol=1e-9,
    )


def _reference_initial(boxes: np.ndarray, r: np.ndarray, p_vel: np.ndarray):
    """New tracks in the textbook form: means ``(K, 2, 4)``, covariances ``(K, 4, 2, 2)``."""
    obs = motion.boxes_to_state(boxes)
    mean = np.zeros((len(obs), 2, 4))
    mean[:, 0] = obs
    h2 = np.maximum(obs[:, 3], motion.MIN_SIDE) ** 2
    cov = np.zeros((len(obs), 4, 2, 2))
    for c in range(4):
        cov[:, c, 0, 0] = r[c] * h2
        cov[:, c, 1, 1] = p_vel[c] * h2
    return mean, cov


def _reference_predict(mean: np.ndarray, cov: np.ndarray, dt: float, q: np.ndarray):
    """``F m`` and ``F C Fᵀ + q h² [[dt³/3, dt²/2], [dt²/2, dt]]``, one entry at a time."""
    dt = np.broadcast_to(np.asarray(dt, float), (len(mean),))  # numpy's power, as the tracker
    h2 = np.maximum(mean[:, 0, 3], motion.MIN_SIDE) ** 2
    new_mean = mean.copy()
    new_mean[:, 0] += dt[:, None] * mean[:, 1]
    new_cov = np.empty_like(cov)
    for c in range(4):
        a, b, d = cov[:, c, 0, 0], cov[:, c, 0, 1], cov[:, c, 1, 1]
        qh = h2 * q[c]
        new_cov[:, c, 0, 0] = a + 2 * dt * b + dt * dt * d + qh * dt**3 / 3
        new_cov[:, c, 0, 1] = new_cov[:, c, 1, 0] = b + dt * d + qh * dt**2 / 2
        new_cov[:, c, 1, 1] = d + qh * dt
    return new_mean, new_cov


def _reference_update(mean: np.ndarray, cov: np.ndarray, boxes: np.ndarray, r: np.ndarray):
    """Kalman update with the gain ``C Hᵀ / s``, ``s = C_pp + r h²``, one entry at a time."""
    obs = motion.boxes_to_state(boxes)
    h2 = np.maximum(obs[:, 3], motion.MIN_SIDE) ** 2
    new_mean = mean.copy()
    new_cov = np.empty_like(cov)
    for c in range(4):
        a, b, d = cov[:, c, 0, 0], cov[:, c, 0, 1], cov[:, c, 1, 1]
        s = a + r[c] * h2
        y = obs[:, c] - mean[:, 0, c]
        new_mean[:, 0, c] = mean[:, 0, c] + a / s * y
        new_mean[:, 1, c] = mean[:, 1, c] + b / s * y
        new_cov[:, c, 0, 0] = a - a * a / s
        new_cov[:, c, 0, 1] = new_cov[:, c, 1, 0] = b - a * b / s
        new_cov[:, c, 1, 1] = d - b * b / s
    return new_mean, new_cov


@pytest.mark.parametrize("fps", [7.0, 12.5, 25.0, 29.97, 30.0])
def test_in_place_kalman_steps_equal_the_reference_bit_for_bit(fps: float) -> None:
    rng = np.random.default_rng(int(fps * 100))
    weights = load_model()
    # A different constant for every coordinate, so that a mixed-up axis shows.
    scale = np.array([0.5, 1.0, 2.0, 4.0])
    q, r, p_vel = (
        weights.noise_q * scale,
        weights.noise_r * scale[::-1],
        weights.noise_p_vel * scale,
    )
    boxes = random_boxes(rng, 23)
    mean, cov = _reference_initial(boxes, r, p_vel)
    fast_mean, fast_cov = motion.initial_tracks(boxes, r, p_vel)
    np.testing.assert_array_equal(motion.covariance_matrix(fast_cov), cov)
    mean[:, 1] = fast_mean[:, 1] = rng.normal(0.0, 30.0, (23, 4))  # give them speed
    for _ in range(3):
        mean, cov = _reference_predict(mean, cov, 1.0 / fps, q)
        motion.predict_tracks(fast_mean, fast_cov, 1.0 / fps, q)
    np.testing.assert_array_equal(
        motion.predicted_boxes(fast_mean), motion.state_to_boxes(mean[:, 0])
    )
    np.testing.assert_array_equal(motion.covariance_matrix(fast_cov), cov)
    seen = random_boxes(rng, 23)
    mean, cov = _reference_update(mean, cov, seen, r)
    fast_mean, fast_cov = motion.update_tracks(fast_mean, fast_cov, seen, r)
    np.testing.assert_array_equal(fast_mean, mean)
    np.testing.assert_array_equal(motion.covariance_matrix(fast_cov), cov)


def test_far_pairs_stay_below_the_proven_bound() -> None:
    rng = np.random.default_rng(2)
    weights = load_model()
    bound = far_pair_bound(weights, gap_max_s=1.6)
    assert bound is not None and bound.gap_max_s >= 1.6
    # Pedestrian-like boxes all over a large image, so that many pairs are far.
    corner = rng.uniform(0.0, 3000.0, (400, 2))
    height = rng.uniform(1.0, 300.0, 400)
    width = height * rng.uniform(0.05, 2.0, 400)
    boxes = np.stack([corner[:, 0], corner[:, 1], corner[:, 0] + width, corner[:, 1] + height], 1)
    ref, cur = boxes[:200], boxes[200:]
    gap = rng.uniform(0.0, bound.gap_max_s, 200)
    far = bound.far_mask(ref, cur)
    assert 0.5 < far.mean() < 1.0
    logits = reference_logits(weights, ref, cur, gap[None, :])
    assert logits[far].max() <= bound.logit
    features = edge_features(ref, cur, gap[None, :])
    assert (features[far][:, 5] == 0.0).all()  # far boxes never overlap
    # Boxes outside the proof's conditions are never far.
    wide = boxes[:5].copy()
    wide[:, 2] = wide[:, 0] + 3.0 * (wide[:, 3] - wide[:, 1])
    assert not bound.far_mask(wide, cur).any() and not bound.far_mask(ref, wide).any()


@pytest.mark.parametrize("shape", [(1, 6), (6, 1)])
def test_single_row_or_column_assignment_is_the_hungarian_one(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        cost = rng.integers(-3, 3, shape).astype(float)  # many ties
        np.testing.assert_array_equal(
            np.stack(grid_module.assign(cost)), np.stack(linear_sum_assignment(cost))
        )


def test_skipping_far_pairs_changes_no_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from emtrack.bench.speed_bench import density_stream

    dets, seqinfo, _ = density_stream(120, 25, seed=5)
    frames = [
        np.concatenate([dets.boxes_xyxy[rows], dets.scores[rows, None]], 1)
        for rows in dets.frame_index(seqinfo.seq_length)
    ]
    weights = load_model()

    def run() -> list[np.ndarray]:
        tracker = Tracker(seqinfo.frame_rate, weights, TrackerConfig())
        return [tracker.update(frame) for frame in frames]

    gated_grids = []
    grid_class = grid_module.LogitGrid

    class Spy(grid_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            gated_grids.append(self.known is not None)

    monkeypatch.setattr(tracker_module, "LogitGrid", Spy)
    gated = run()
    assert sum(gated_grids) >= 20  # the far-pair path ran on most frames
    monkeypatch.setattr(grid_module, "GATE_MIN_PAIRS", 10**12)
    gated_grids.clear()
    full = run()
    assert not any(gated_grids)
    assert sum(len(out) for out in full) > 500
    for got, expected in zip(gated, full, strict=True):
        np.testing.assert_array_equal(got, expected)

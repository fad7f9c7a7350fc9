"""Detector scores on any scale: the calibration fitted per input, and the fixed overrides."""

from __future__ import annotations

import numpy as np
import pytest

from emtrack.eval import EvalSequence, evaluate
from emtrack.io import MotTable, write_mot
from emtrack.track import SCORE_NORMALISATIONS, TrackerConfig, normalised_scores, track_sequence
from emtrack.track.calibration import fit_score_calibration, score_bin_edges
from test_tracker import _scene_tables


def test_fixed_rules_rank_or_keep_the_scores() -> None:
    raw = np.array([12.0, -0.3, 95.0, 12.0, 40.0])
    # fraction of the file's detections scoring at most as high; ties share the rank
    np.testing.assert_allclose(normalised_scores(raw, "rank"), [0.6, 0.2, 1.0, 0.6, 0.8])
    np.testing.assert_allclose(normalised_scores(np.array([0.9, 0.1]), "rank"), [1.0, 0.5])
    assert normalised_scores(raw, "none") is raw
    assert normalised_scores(np.zeros(0), "rank").shape == (0,)
    with pytest.raises(ValueError, match="rank"):
        normalised_scores(raw, "zscore")
    with pytest.raises(ValueError, match="score_normalisation"):
        TrackerConfig(score_normalisation="zscore")
    assert TrackerConfig().score_normalisation == "auto" == SCORE_NORMALISATIONS[0]


def _mixture(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores and track ids of 60 real tracks (long, scoring high) and 400 clutter tracks
    (1-3 detections, scoring low), with the truth of every detection."""
    scores, ids, real = [], [], []
    for k in range(60):
        n = int(rng.integers(40, 120))
        scores.append(rng.beta(6, 2, n))
        ids.append(np.full(n, k))
        real.append(np.ones(n, bool))
    for k in range(400):
        n = int(rng.integers(1, 4))
        scores.append(rng.beta(2, 5, n))
        ids.append(np.full(n, 1000 + k))
        real.append(np.zeros(n, bool))
    return np.concatenate(scores), np.concatenate(ids), np.concatenate(real)


def test_calibration_recovers_the_share_of_real_detections_by_score() -> None:
    """On a known mixture, the fitted P(real | score) is close to the true share of real
    detections among those of similar score, and non-decreasing in the score."""
    rng = np.random.default_rng(0)
    scores, ids, real = _mixture(rng)
    calibration = fit_score_calibration(scores, ids)
    assert np.all(np.diff(calibration.probabilities) >= 0)
    edges = score_bin_edges(scores)
    assert len(edges) == 9
    bins = np.searchsorted(edges, scores, side="right")
    for b in range(len(edges) + 1):
        inside = bins == b
        true_share = real[inside].mean()
        assert abs(calibration(scores[inside]).mean() - true_share) < 0.12
    assert calibration.real_mean_length > 10 * calibration.clutter_mean_length


def test_track_log_odds_judge_tracks_of_the_known_mixture() -> None:
    """The fitted mixture's log odds that a track is real separate the real tracks of a known
    mixture from its clutter (real tracks are long and score high), grow with a track's length
    and its scores, and are None without a mixture."""
    rng = np.random.default_rng(2)
    scores, ids, real = _mixture(rng)
    calibration = fit_score_calibration(scores, ids)
    tracks = [np.flatnonzero(ids == k) for k in np.unique(ids)]
    odds = calibration.track_log_odds([scores[rows] for rows in tracks])
    truth = np.array([real[rows[0]] for rows in tracks])
    assert np.mean((odds > 0) == truth) > 0.95
    high, low = np.quantile(scores, 0.95), np.quantile(scores, 0.05)
    longer, shorter, lower = calibration.track_log_odds(
        [np.full(20, high), np.full(5, high), np.full(20, low)]
    )
    assert longer > shorter and longer > lower and longer > 0
    assert calibration.track_log_odds([]).shape == (0,)
    assert (
        fit_score_calibration(np.full(50, 0.5), np.repeat(np.arange(10), 5)).track_log_odds(
            [np.array([0.5])]
        )
        is None
    )


def test_calibration_ignores_the_score_scale() -> None:
    """Logits, a shifted and scaled copy, or any increasing map of the same scores give the
    same probabilities: only the order of the scores and the tracks count."""
    rng = np.random.default_rng(1)
    scores, ids, _ = _mixture(rng)
    base = fit_score_calibration(scores, ids)(scores)
    for transform in (lambda s: np.log(s / (1 - s)), lambda s: 100 * s - 5, np.sqrt):
        np.testing.assert_allclose(
            fit_score_calibration(transform(scores), ids)(transform(scores)), base
        )


def test_one_score_for_all_counts_every_detection_as_confident() -> None:
    ids = np.repeat(np.arange(10), 5)
    for constant in (0.0, -1.0, 7.0):
        calibration = fit_score_calibration(np.full(50, constant), ids)
        np.testing.assert_array_equal(calibration(np.full(3, constant)), np.ones(3))
    assert fit_score_calibration(np.zeros(0), np.zeros(0))(np.array([0.3])) == 1.0


def _scored(dets: MotTable, scores: np.ndarray) -> MotTable:
    return MotTable.from_arrays(dets.frames, dets.boxes_xyxy, scores)


@pytest.mark.parametrize("offline", [False, True])
def test_any_increasing_score_scale_tracks_exactly_as_probabilities(offline: bool) -> None:
    """Logits and raw values (x100 - 5) of a stream's probability scores give the same tracks,
    and the result file keeps the file's own scores."""
    scene, dets = _scene_tables(3)
    p = np.clip(dets.scores, 1e-6, 1 - 1e-6)
    base = track_sequence(dets, scene.seqinfo, offline=offline).result
    for raw in (np.log(p / (1 - p)), dets.scores * 100.0 - 5.0):
        result = track_sequence(_scored(dets, raw), scene.seqinfo, offline=offline).result
        np.testing.assert_array_equal(result.ids, base.ids)
        np.testing.assert_array_equal(result.boxes_xyxy, base.boxes_xyxy)
        detected = result.scores != 0  # (0: offline gap fills)
        assert detected.sum() > 0.5 * len(result)
        file_scores = set(zip(dets.frames.tolist(), raw.tolist(), strict=True))
        reported = zip(
            result.frames[detected].tolist(), result.scores[detected].tolist(), strict=True
        )
        assert set(reported) <= file_scores


def _hota(tmp_path, scene, result: MotTable, name: str) -> float:
    gt_path, result_path = tmp_path / "gt.txt", tmp_path / f"{name}.txt"
    write_mot(gt_path, scene.gt)
    write_mot(result_path, result)
    return evaluate([EvalSequence("s", gt_path, result_path, scene.seqinfo)]).combined.hota


def test_binary_equal_or_cut_scores_track_about_as_well_as_probabilities(tmp_path) -> None:
    """Scores that say less (0/1 with two thirds 0, or one value for all) track within a few
    HOTA of the same stream's probability scores, where as given they lose most tracks; a
    stream whose boxes under 0.5 were dropped (less to track) tracks as well as as given."""
    scene, dets = _scene_tables(6)
    base = _hota(tmp_path, scene, track_sequence(dets, scene.seqinfo).result, "base")
    binary = (dets.scores >= np.quantile(dets.scores, 2 / 3)).astype(float)
    none = TrackerConfig(score_normalisation="none")
    for name, scores in (("binary", binary), ("equal", np.full(len(dets), -1.0))):
        table = _scored(dets, scores)
        hota = _hota(tmp_path, scene, track_sequence(table, scene.seqinfo).result, name)
        assert hota > base - 3.0, name
        as_given = track_sequence(table, scene.seqinfo, config=none).result
        assert _hota(tmp_path, scene, as_given, name + "-given") < hota - 5.0, name
    cut = dets.select(dets.scores >= 0.5)
    fitted = _hota(tmp_path, scene, track_sequence(cut, scene.seqinfo).result, "cut")
    given = _hota(tmp_path, scene, track_sequence(cut, scene.seqinfo, config=none).result, "cg")
    assert fitted > given - 1.0

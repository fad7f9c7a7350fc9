"""Behaviour of the online tracker, the offline pass and the Python API contract."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

import emtrack
from emtrack.errors import EmtrackInputError, EmtrackInputWarning
from emtrack.io import MotTable, SeqInfo, Timestamps, write_mot
from emtrack.track import Tracker, TrackerConfig, load_model, track_sequence
from emtrack.track.fit import SequenceFit
from emtrack.track.motion import boxes_to_state, smooth_track, state_to_boxes
from emtrack.track.weights import model_noise


def _walker(frame: int, x0: float, vx: float, y: float = 200.0, h: float = 100.0) -> list[float]:
    x = x0 + vx * frame
    return [x, y - h, x + 0.4 * h, y]


def test_api_contract_shapes_and_ids() -> None:
    tracker = emtrack.Tracker(frame_rate=30)
    ids_seen = []
    for f in range(10):
        dets = np.array([_walker(f, 100, 3) + [0.9], _walker(f, 600, -3) + [0.9]])
        out = tracker.update(dets)
        assert out.shape[1] == 5
        ids_seen.append(sorted(out[:, 4].tolist()))
    # Two stable identities once reported.
    assert ids_seen[-1] == [1.0, 2.0]
    assert all(row == [1.0, 2.0] for row in ids_seen[2:])


def test_empty_frames_and_zero_detections() -> None:
    tracker = Tracker(frame_rate=30)
    assert tracker.update(np.zeros((0, 5))).shape == (0, 5)
    assert tracker.update(np.empty((0, 5))).shape == (0, 5)
    for f in range(5):
        tracker.update(np.array([_walker(f, 100, 2) + [0.9]]))
    out = tracker.update(np.zeros((0, 5)))
    assert out.shape == (0, 5)
    # The track survives a short gap and keeps its id.
    out = tracker.update(np.array([_walker(7, 100, 2) + [0.9]]))
    assert out[:, 4].tolist() == [1.0]


@pytest.mark.parametrize("output_boxes", ["filtered", "detections"])
def test_output_keeps_input_order(output_boxes: str) -> None:
    tracker = Tracker(frame_rate=30, config=TrackerConfig(output_boxes=output_boxes))
    rng = np.random.default_rng(0)
    for f in range(6):
        dets = np.array([_walker(f, 100 + 150 * k, 2) + [0.9] for k in range(5)])
        perm = rng.permutation(5)
        out = tracker.update(dets[perm])
        if f >= 2:
            # Rows come back in input order: the detections' own boxes, or the tracks'
            # estimates, within a frame's step (2 px) of these noise-free walkers while
            # their velocity is learnt.
            assert tracker.last_rows.tolist() == [0, 1, 2, 3, 4]
            if output_boxes == "detections":
                np.testing.assert_array_equal(out[:, :4], dets[perm, :4])
            else:
                np.testing.assert_allclose(out[:, :4], dets[perm, :4], atol=2.0)
            assert sorted(out[:, 4].tolist()) == [1, 2, 3, 4, 5]


def test_filtered_boxes_are_the_kalman_estimates_and_less_noisy() -> None:
    """The default output is each track's posterior box, nearer the truth than noisy detections."""
    rng = np.random.default_rng(3)
    filtered = Tracker(frame_rate=30)
    raw = Tracker(frame_rate=30, config=TrackerConfig(output_boxes="detections"))
    err_filtered, err_raw = [], []
    for f in range(60):
        truth = np.array(_walker(f, 100, 4))
        det = truth + rng.normal(0.0, 3.0, 4)
        dets = np.array([[*det, 0.9]])
        out_f, out_r = filtered.update(dets), raw.update(dets)
        np.testing.assert_array_equal(out_r[:, :4], dets[:, :4])
        assert out_f[:, 4].tolist() == out_r[:, 4].tolist()
        if f >= 10:
            np.testing.assert_array_equal(
                out_f[0, :4],
                state_to_boxes(filtered.tracks.mean[0, 0]),  # the updated mean
            )
            err_filtered.append(np.abs(out_f[0, :4] - truth).mean())
            err_raw.append(np.abs(det - truth).mean())
    assert np.mean(err_filtered) < 0.8 * np.mean(err_raw)


def test_output_boxes_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="output_boxes"):
        TrackerConfig(output_boxes="smoothed")


def test_reset_restarts_ids() -> None:
    tracker = Tracker(frame_rate=30)
    for f in range(3):
        tracker.update(np.array([_walker(f, 100, 2) + [0.9]]))
    tracker.reset()
    assert tracker.num_tracks == 0
    out = tracker.update(np.array([_walker(0, 500, 2) + [0.9]]))
    assert out[:, 4].tolist() == [1.0]


def test_crossing_objects_keep_ids() -> None:
    tracker = Tracker(frame_rate=30)
    ids_a, ids_b = set(), set()
    for f in range(60):
        a = _walker(f, 100, 6, y=300)
        b = _walker(f, 460, -6, y=320)
        out = tracker.update(np.array([a + [0.9], b + [0.9]]))
        for row in out:
            nearer_a = np.abs(row[:4] - a).sum() < np.abs(row[:4] - b).sum()
            (ids_a if nearer_a else ids_b).add(int(row[4]))
    assert ids_a == {1} and ids_b == {2}


@pytest.mark.parametrize(
    "dets, match",
    [
        (np.zeros((3, 4)), "shape"),
        (np.array([[0, 0, 10, 10, np.nan]]), "not finite"),
        (np.array([[10, 0, 5, 10, 0.9]]), r"x2 < x1.*\[x, y, w, h\] boxes need x2 = x \+ w"),
        (np.array([[0, 10, 5, 5, 0.9]]), r"y2 < y1"),
        (np.zeros((2, 7)), r"shape \(N, 5\).*or \(N, 6\)"),
        (np.array([["a", "b", "c", "d", "e"]]), "numeric"),
    ],
)
def test_bad_arrays_are_rejected(dets: np.ndarray, match: str) -> None:
    with pytest.raises(EmtrackInputError, match=match):
        Tracker(frame_rate=30).update(dets)


def test_bad_frame_rate_and_config() -> None:
    with pytest.raises(EmtrackInputError):
        Tracker(frame_rate=0)
    with pytest.raises(ValueError):
        TrackerConfig(low_score=0.9, high_score=0.5)
    with pytest.raises(ValueError):
        TrackerConfig(min_hits=0)


def test_default_model_loads_and_bad_model_file(tmp_path) -> None:
    weights = load_model()
    assert weights.noise_r > 0 and weights.noise_q > 0
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(EmtrackInputError, match=r"bad\.npz"):
        load_model(bad)


def test_state_box_round_trip() -> None:
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 3.0, 7.0]])
    np.testing.assert_allclose(state_to_boxes(boxes_to_state(boxes)), boxes)


def test_smooth_track_fills_short_gaps_only() -> None:
    frames = np.array([1, 2, 3, 6, 7, 30, 31])
    boxes = np.array([_walker(int(f), 100, 2) for f in frames])
    w = load_model()
    out_frames, out_boxes = smooth_track(frames, boxes, 30.0, model_noise(w), 5)
    assert out_frames.tolist() == [1, 2, 3, 4, 5, 6, 7, 30, 31]
    # Filled boxes lie on the straight walk.
    expected = np.array(_walker(4, 100, 2))
    np.testing.assert_allclose(out_boxes[3], expected, atol=2.0)


def test_offline_gap_limit_is_in_seconds() -> None:
    """A 9-frame miss is 0.3 s at 30 fps (filled by default, 1 s) but 1.8 s at 5 fps (not);
    ``max_gap_fill`` (frames) replaces the seconds when given."""
    from emtrack.track.offline import gap_fill_frames

    frames = np.r_[1:11, 20:31]
    dets = MotTable.from_arrays(
        frames, np.array([_walker(int(f), 100, 2) for f in frames]), np.full(len(frames), 0.9)
    )

    def reported(fps: float, config: TrackerConfig) -> list[int]:
        info = SeqInfo(name="walk", frame_rate=fps, seq_length=30)
        return track_sequence(dets, info, config=config, offline=True).result.frames.tolist()

    assert reported(30.0, TrackerConfig()) == list(range(1, 31))
    assert reported(5.0, TrackerConfig()) == frames.tolist()
    assert reported(5.0, TrackerConfig(max_gap_fill_s=2.0)) == list(range(1, 31))
    assert reported(30.0, TrackerConfig(max_gap_fill=8)) == frames.tolist()
    assert gap_fill_frames(TrackerConfig(), 30.0) == 30
    assert gap_fill_frames(TrackerConfig(max_gap_fill_s=0.5), 7.0) == 4
    assert gap_fill_frames(TrackerConfig(max_gap_fill=3), 30.0) == 3


def test_offline_drops_trajectories_of_the_least_confident_detections() -> None:
    """Three walkers at 0.95 and one at 0.8: with scores as given, the fourth's detections rank
    0.25 in the file (below the default 0.3), so the offline pass drops it; online reports all
    four. The cut is relative to the file: the same walker among walkers of its own score is
    kept. The fitted calibration judges the walker unlike the others as clutter, online too."""
    frames = np.repeat(np.arange(1, 31), 4)
    boxes = np.array(
        [_walker(int(f), 100, 2, y=200.0 + 250 * k) for f in range(1, 31) for k in range(4)]
    )
    scores = np.tile([0.95, 0.95, 0.95, 0.8], 30)
    dets = MotTable.from_arrays(frames, boxes, scores)
    info = SeqInfo(name="walk", frame_rate=30.0, seq_length=30)

    def tracks(config: TrackerConfig, offline: bool, table: MotTable = dets) -> int:
        result = track_sequence(table, info, config=config, offline=offline).result
        return len(np.unique(result.ids))

    given = TrackerConfig(score_normalisation="none")
    assert tracks(given, offline=False) == 4
    assert tracks(given, offline=True) == 3
    assert tracks(replace(given, min_track_score_rank=0.0), offline=True) == 4
    assert tracks(replace(given, min_track_score_rank=0.2), offline=True) == 4
    assert tracks(TrackerConfig(), offline=False) == 3
    all_low = MotTable.from_arrays(frames, boxes, np.full(len(frames), 0.8))
    assert tracks(TrackerConfig(), offline=True, table=all_low) == 4
    assert tracks(given, offline=True, table=all_low) == 4


def test_mean_score_ranks() -> None:
    from emtrack.track.offline import mean_score_ranks

    reference = np.array([0.1, 0.5, 0.5, 0.9])
    ranks = mean_score_ranks([np.array([0.5]), np.array([0.1, 0.9]), np.array([0.95])], reference)
    np.testing.assert_allclose(ranks, [0.75, 0.625, 1.0])
    np.testing.assert_array_equal(mean_score_ranks([np.array([0.3])], np.zeros(0)), [1.0])
    assert mean_score_ranks([], reference).shape == (0,)
    with pytest.raises(ValueError, match="at least one score"):
        mean_score_ranks([np.array([0.5]), np.zeros(0)], reference)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="min_track_score_rank"):
            TrackerConfig(min_track_score_rank=bad)


def _scene_tables(seed: int):
    from emtrack.synth import SceneConfig, generate_scene

    config = SceneConfig(num_frames=150, frame_rate=10.0, mean_objects=15)
    scene = generate_scene(config, np.random.default_rng(seed))
    dets = scene.detections
    stripped = MotTable.from_arrays(dets.frames, dets.boxes_xyxy, dets.scores)
    return scene, stripped


def test_track_sequence_online_and_offline() -> None:
    scene, dets = _scene_tables(1)
    online = track_sequence(dets, scene.seqinfo)
    offline = track_sequence(dets, scene.seqinfo, offline=True)
    for run in (online, offline):
        assert len(run.result) > 0
        assert (run.result.ids >= 1).all()
        assert run.num_frames == scene.seqinfo.seq_length
        # No identity twice in one frame.
        pairs = run.result.frames * 10**6 + run.result.ids
        assert len(np.unique(pairs)) == len(pairs)
    # Offline fills gaps: it reports at least as many boxes.
    assert len(offline.result) >= len(online.result)


def test_detections_beyond_seq_length_are_an_error() -> None:
    dets = MotTable.from_arrays(np.array([1, 5]), np.array([[0, 0, 10, 20.0], [0, 0, 10, 20.0]]))
    info = SeqInfo(name="x", frame_rate=30.0, seq_length=3)
    with pytest.raises(EmtrackInputError, match="seqLength"):
        track_sequence(dets, info)


def test_beats_iou_tracking_on_synthetic_scenes(tmp_path) -> None:
    """Offline: fewer identity switches than SORT (IoU); online: higher IDF1 and HOTA."""
    pytest.importorskip("trackers")
    from emtrack.bench.peers import run_peer
    from emtrack.eval import EvalSequence, evaluate

    sequences: dict[str, list[EvalSequence]] = {"online": [], "offline": [], "sort": []}
    for seed in (3, 4):
        scene, dets = _scene_tables(seed)
        gt_path = tmp_path / f"gt{seed}.txt"
        write_mot(gt_path, scene.gt)
        results = {
            "online": track_sequence(dets, scene.seqinfo).result,
            "offline": track_sequence(dets, scene.seqinfo, offline=True).result,
            "sort": run_peer("sort", dets, scene.seqinfo).result,
        }
        for name, result in results.items():
            path = tmp_path / f"{name}{seed}.txt"
            write_mot(path, result)
            sequences[name].append(EvalSequence(f"s{seed}", gt_path, path, scene.seqinfo))
    scores = {name: evaluate(seqs).combined for name, seqs in sequences.items()}
    assert scores["offline"].idsw < scores["sort"].idsw
    assert scores["online"].idf1 > scores["sort"].idf1
    assert scores["online"].hota > scores["sort"].hota


def _gap_only_weights(max_gap_s: float | None):
    """A network whose logit is ``10 - 20 * gap_s`` whatever the boxes (dustbin 0)."""
    from emtrack.model.features import FEATURE_NAMES
    from emtrack.track.weights import AssociationWeights

    w0 = np.zeros((len(FEATURE_NAMES), 1))
    w0[FEATURE_NAMES.index("gap_s"), 0] = 1.0
    arrays = {
        "w0": w0,
        "b0": np.zeros(1),
        "w1": np.array([[-20.0]]),
        "b1": np.array([10.0]),
        "dustbin_logit": np.array(0.0),
        "noise_q": np.array(0.25),
        "noise_r": np.array(0.04**2),
        "noise_p_vel": np.array(1.0),
    }
    if max_gap_s is not None:
        arrays["max_gap_s"] = np.array(max_gap_s)
    return AssociationWeights.from_arrays(arrays)


def test_gap_feature_is_capped_at_the_trained_gap() -> None:
    """One walker at 10 fps, missed for 5 frames: after the miss its gap is 0.6 s, where
    this network's logit (10 - 20 gap) is -2, below the match margin 5, so a new track starts;
    a network trained on gaps up to 0.2 s is asked at 0.2 s at most (logit 6): matched,
    one track. Offline re-linking caps the gap the same way."""
    frames = np.r_[1:4, 9:12]
    dets = MotTable.from_arrays(
        frames, np.array([_walker(int(f), 100, 2) for f in frames]), np.full(len(frames), 0.9)
    )
    info = SeqInfo(name="walk", frame_rate=10.0, seq_length=11)

    def num_ids(weights, config: TrackerConfig | None = None, offline: bool = False) -> int:
        result = track_sequence(dets, info, weights, config, offline=offline).result
        return len(np.unique(result.ids))

    assert num_ids(_gap_only_weights(None)) == 2  # files without the field: no cap (10 s)
    assert num_ids(_gap_only_weights(0.2)) == 1
    # The track dies after one miss, so only re-linking (gap 0.6 s too) can join the parts.
    short = TrackerConfig(max_lost_s=0.1, min_track_hits=1, min_track_score_rank=0.0)
    assert num_ids(_gap_only_weights(0.2), short) == 2
    assert num_ids(_gap_only_weights(None), short, offline=True) == 2
    assert num_ids(_gap_only_weights(0.2), short, offline=True) == 1


def test_max_gap_s_in_weight_files(tmp_path) -> None:
    assert _gap_only_weights(None).max_gap_s == 10.0
    assert _gap_only_weights(50.0).max_gap_s == 10.0  # the features clamp at 10 s anyway
    weights = _gap_only_weights(0.25)
    path = tmp_path / "w.npz"
    np.savez(path, **weights.to_arrays())
    assert load_model(path).max_gap_s == 0.25
    for bad in (0.0, -1.0, np.nan, np.array([0.1, 0.2])):
        arrays = {**weights.to_arrays(), "max_gap_s": np.asarray(bad)}
        np.savez(path, **arrays)
        with pytest.raises(EmtrackInputError, match="max_gap_s"):
            load_model(path)


def test_confirmed_tracks_match_before_tentative_ones() -> None:
    """A walker tracked for 4 frames; in frame 5 a second box 8 px beside it starts a
    tentative track; frame 6 has one box, a little nearer that track's prediction than the
    walker's. The walker's confirmed track is matched first and keeps it (matching all live
    tracks at once gave it to the tentative track, which took over the walker's identity)."""

    def box(frame: int, dx: float = 0.0) -> list[float]:
        return [*_walker(frame, 100.0 + dx, 2.0, y=300.0), 0.9]

    tracker = Tracker(frame_rate=10.0)
    for frame in range(1, 5):
        walker_id = tracker.update(np.array([box(frame)]))[:, 4]
    out5 = tracker.update(np.array([box(5), box(5, dx=8.0)]))
    assert out5[:, 4].tolist() == walker_id.tolist()  # the new box is only tentative
    out6 = tracker.update(np.array([box(6, dx=7.0)]))
    assert out6[:, 4].tolist() == walker_id.tolist()


def _last_box_after_jump(measurement_noise: str, score: float) -> np.ndarray:
    """Filtered box of a steady walker (scores 1) after a detection 6 px off its path (scores
    compared as given)."""
    config = TrackerConfig(measurement_noise=measurement_noise)
    tracker = Tracker(frame_rate=30, config=config, online_fit=False)
    for f in range(10):
        tracker.update(np.array([_walker(f, 100, 2) + [1.0]]))
    jumped = np.array(_walker(10, 106, 2) + [score])
    out = tracker.update(jumped[None])
    assert out[:, 4].tolist() == [1.0]  # the same track took it
    return out[0, :4]


def test_unsure_detection_moves_its_track_less() -> None:
    on_path = np.array(_walker(10, 100, 2))
    pull = {
        (mode, score): _last_box_after_jump(mode, score)[0] - on_path[0]
        for mode in ("score", "constant")
        for score in (0.3, 0.9, 1.0)
    }
    # Constant noise: the score does not matter; by score: the less sure, the smaller the pull,
    # and a score of 1 is the constant noise.
    assert pull["constant", 0.3] == pytest.approx(pull["constant", 0.9])
    assert 0.0 < pull["score", 0.3] < pull["score", 0.9] < pull["score", 1.0]
    assert pull["score", 1.0] == pytest.approx(pull["constant", 1.0])
    assert pull["score", 0.3] < 0.7 * pull["constant", 0.3]


def test_measurement_noise_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="measurement_noise"):
        TrackerConfig(measurement_noise="adaptive")


@pytest.mark.parametrize("measurement_noise", ["score", "constant"])
def test_new_track_starts_with_its_detections_noise(measurement_noise: str) -> None:
    config = TrackerConfig(measurement_noise=measurement_noise)
    tracker = Tracker(frame_rate=30, config=config, online_fit=False)
    tracker.update(np.array([_walker(0, 100, 2) + [0.8], _walker(0, 600, 2) + [1.0]]))
    r_h2 = tracker.weights.noise_r * 100.0**2  # the walkers are 100 px tall
    factor = 1 / 0.8 if measurement_noise == "score" else 1.0
    assert tracker.tracks.cov[:, 0, 0] == pytest.approx([r_h2 * factor, r_h2])


def _square(x: float, y: float = 0.0) -> list[float]:
    return [x, y, x + 10.0, y + 10.0]


def test_iou_association_gates_each_stage_by_hand_computed_iou() -> None:
    """``association="iou"``: a 10 px square shifted by 2, 4 or 6 px overlaps its track's
    (unmoved) predicted box with IoU 80/120 = 0.67, 60/140 = 0.43 or 40/160 = 0.25. Confident
    detections need 0.3 (0.43 matches, 0.25 starts a new track); low-score ones 0.5 (0.67
    matches, 0.43 does not)."""
    config = TrackerConfig(
        association="iou", min_hits=1, camera_motion_s=0.0, measurement_noise="constant"
    )
    tracker = Tracker(frame_rate=30, config=config)
    starts = [0.0, 100.0, 200.0, 300.0]  # tracks 1 … 4
    first = tracker.update(np.array([[*_square(x), 0.9] for x in starts]))
    assert first[:, 4].tolist() == [1, 2, 3, 4]
    second = np.array(
        [
            [*_square(starts[0] + 4), 0.3],  # low score, IoU 0.43 < 0.5: unmatched
            [*_square(starts[1] + 2), 0.3],  # low score, IoU 0.67: track 2
            [*_square(starts[2] + 4), 0.9],  # confident, IoU 0.43: track 3
            [*_square(starts[3] + 6), 0.9],  # confident, IoU 0.25 < 0.3: a new track, 5
        ]
    )
    out = tracker.update(second)
    assert tracker.last_rows.tolist() == [1, 2, 3]
    assert out[:, 4].tolist() == [2, 3, 5]


def test_iou_association_relinks_by_the_same_gate() -> None:
    """The offline pass re-links a fragment when the IoU of the first track's predicted box
    and the second's first box beats ``iou_gate``: 0.43 links, 0.25 does not."""
    from emtrack.track.offline import relink
    from emtrack.track.tracker import TrackHistory

    weights = load_model()
    config = TrackerConfig(association="iou")

    def history(track_id: int, frames: range, x: float) -> TrackHistory:
        boxes = np.array([_square(x) for _ in frames])
        return TrackHistory(track_id, np.array(frames), boxes, np.full(len(boxes), 0.9), True)

    for shift, linked in ((4.0, True), (6.0, False)):
        tracks = [history(1, range(1, 11), 0.0), history(2, range(13, 20), shift)]
        chains = relink(tracks, weights, 30.0, config)
        assert chains == ([[0, 1]] if linked else [[0], [1]])


def test_association_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="association"):
        TrackerConfig(association="hungarian")
    with pytest.raises(ValueError, match="iou_gate"):
        TrackerConfig(iou_gate=1.5)


# --------------------------------------------------------------------------------------------
# Degenerate rows, classes and time (Tracker.update)
# --------------------------------------------------------------------------------------------


def _two_walkers(frame: int) -> np.ndarray:
    return np.array([_walker(frame, 100, 3) + [0.9], _walker(frame, 600, -3) + [0.9]])


def test_degenerate_rows_are_dropped_with_one_warning() -> None:
    """Zero-width or zero-height rows are dropped (warned about once per tracker); the other
    rows are tracked as without them, and last_rows still names input rows."""
    plain, tracker = Tracker(frame_rate=30), Tracker(frame_rate=30)
    zero_width = [300.0, 50.0, 300.0, 150.0, 0.95]
    zero_height = [400.0, 80.0, 420.0, 80.0, 0.95]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for frame in range(6):
            dets = _two_walkers(frame)
            expected = plain.update(dets)
            with_bad = np.array([zero_width, dets[0], zero_height, dets[1]])
            out = tracker.update(with_bad)
            np.testing.assert_array_equal(out, expected)
            np.testing.assert_array_equal(tracker.last_rows, [1, 3][: len(out)])
    assert [w.category for w in caught] == [EmtrackInputWarning]
    assert "dropped 2 degenerate row(s)" in str(caught[0].message)
    assert "row 0" in str(caught[0].message)
    assert tracker.dropped_rows == 12
    # All rows degenerate: an empty frame, the tracks age as without detections.
    assert tracker.update(np.array([zero_width])).shape == (0, 5)


def test_strict_makes_degenerate_rows_an_error_and_changes_nothing() -> None:
    bad = np.array([[10.0, 10, 50, 110, 0.9], [5.0, 5, 5, 20, 0.9]])
    for tracker, kwargs in ((Tracker(30, strict=True), {}), (Tracker(30), {"strict": True})):
        first = tracker.update(_two_walkers(0))
        with pytest.raises(EmtrackInputError, match=r"row 1 has x2 <= x1 or y2 <= y1.*strict"):
            tracker.update(bad, **kwargs)
        assert tracker.frame_count == 1 and tracker.time == 0.0 and tracker.dropped_rows == 0
        again = tracker.update(_two_walkers(1))
        assert again[:, 4].tolist() == first[:, 4].tolist()
    with pytest.warns(EmtrackInputWarning):
        assert Tracker(30, strict=True).update(bad, strict=False).shape == (1, 5)


def _two_class_frames(num_frames: int = 60) -> tuple[list[np.ndarray], float]:
    """``(N, 6)`` frames of two synthetic scenes on one image: class 1 from the first frame,
    class 7 from frame 15 on (its tracker starts late), rows of both classes interleaved."""
    from emtrack.synth import SceneConfig, generate_scene

    config = SceneConfig(num_frames=num_frames, frame_rate=30.0, mean_objects=8.0)
    frames = []
    scenes = [generate_scene(config, seed) for seed in (5, 6)]
    rng = np.random.default_rng(0)
    for f in range(1, num_frames + 1):
        parts = []
        for scene, class_id, start in zip(scenes, (1.0, 7.0), (1, 15), strict=True):
            d = scene.detections
            rows = np.flatnonzero(d.frames == f) if f >= start else np.zeros(0, np.int64)
            parts.append(
                np.column_stack([d.boxes_xyxy[rows], d.scores[rows], np.full(len(rows), class_id)])
            )
        both = np.concatenate(parts)
        frames.append(both[rng.permutation(len(both))])
    return frames, config.frame_rate


def _assert_same_tracks(ids_a: list[np.ndarray], ids_b: list[np.ndarray]) -> None:
    """Two runs' ids frame by frame name the same tracks: a one-to-one renaming."""
    pairs = {
        (int(a), int(b))
        for fa, fb in zip(ids_a, ids_b, strict=True)
        for a, b in zip(fa, fb, strict=True)
    }
    assert len({a for a, _ in pairs}) == len({b for _, b in pairs}) == len(pairs)


def test_per_class_tracking_is_tracking_each_class_alone() -> None:
    """Done when: a two-class stream tracked per class gives, for each class, the tracks (and
    boxes) of a tracker given only that class's rows; ids stay unique across classes."""
    frames, fps = _two_class_frames()
    tracker = Tracker(fps)
    alone = {1.0: Tracker(fps), 7.0: Tracker(fps)}
    agnostic, plain = Tracker(fps, class_agnostic=True), Tracker(fps)
    ids: dict[float, tuple[list[np.ndarray], list[np.ndarray]]] = {1.0: ([], []), 7.0: ([], [])}
    owner: dict[int, float] = {}
    mixed = 0
    for dets in frames:
        out = tracker.update(dets)
        assert out.shape == (len(tracker.last_rows), 6)
        np.testing.assert_array_equal(out[:, 5], dets[tracker.last_rows, 5])
        for class_id, single in alone.items():
            rows = np.flatnonzero(dets[:, 5] == class_id)
            expected = single.update(dets[rows, :5])
            mine = out[:, 5] == class_id
            np.testing.assert_array_equal(tracker.last_rows[mine], rows[single.last_rows])
            np.testing.assert_array_equal(out[mine, :4], expected[:, :4])
            ids[class_id][0].append(out[mine, 4])
            ids[class_id][1].append(expected[:, 4])
            for track_id in out[mine, 4].astype(int).tolist():
                assert owner.setdefault(track_id, class_id) == class_id  # unique across classes
        # Class-agnostic: the class column is carried along, the tracks are those of (N, 5).
        out_agnostic, out_plain = agnostic.update(dets), plain.update(dets[:, :5])
        np.testing.assert_array_equal(out_agnostic[:, :5], out_plain)
        np.testing.assert_array_equal(out_agnostic[:, 5], dets[agnostic.last_rows, 5])
        mixed += len(out_plain)
    for class_id, (per_class, single) in ids.items():
        assert sum(len(a) for a in per_class) > 50, class_id
        _assert_same_tracks(per_class, single)
    assert set(owner.values()) == {1.0, 7.0}
    assert tracker.num_tracks == sum(t.num_tracks for t in alone.values())
    assert mixed > 0


def test_per_class_history_and_reset() -> None:
    frames, fps = _two_class_frames(30)
    tracker = Tracker(fps, keep_history=True)
    for dets in frames:
        tracker.update(dets)
    history = tracker.history
    assert {h.class_id for h in history.values()} == {1.0, 7.0}
    assert list(history) == sorted(history)
    assert all(h.frames.max() <= 30 and h.frames.min() >= 1 for h in history.values())
    assert min(h.frames.min() for h in history.values() if h.class_id == 7.0) == 15
    tracker.reset()
    assert tracker.num_tracks == 0 and tracker.history == {}
    assert tracker.update(frames[0])[:, 4].min(initial=1) == 1


def test_timestamps_at_the_frame_rate_match_updates_without() -> None:
    frames, fps = _two_class_frames(40)
    timed, untimed = Tracker(fps), Tracker(fps)
    for k, dets in enumerate(frames):
        a = timed.update(dets[:, :5], timestamp=100.0 + k / fps)
        b = untimed.update(dets[:, :5])
        np.testing.assert_array_equal(a[:, 4], b[:, 4])
        np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert untimed.time == pytest.approx(39 / fps) and timed.time == 100.0 + 39 / fps


def test_a_dropped_frame_is_not_a_frame_without_detections() -> None:
    """A new walker (tentative) is missed in the next frame: dropped (not given), it is
    confirmed at its second detection; seen but not detected, its track dies and it starts
    again."""
    fps = 30.0

    def frame(k: int, with_new: bool = True) -> np.ndarray:
        dets = [_walker(k, 100, 3) + [0.9]]
        if with_new and k >= 5:
            dets.append(_walker(k, 600, -3) + [0.9])
        return np.array(dets)

    dropped, missed = Tracker(fps), Tracker(fps)
    for k in range(6):
        dropped.update(frame(k), timestamp=k / fps)
        missed.update(frame(k), timestamp=k / fps)
    missed.update(frame(6, with_new=False), timestamp=6 / fps)  # frame 6: the walker only
    out_dropped = dropped.update(frame(7), timestamp=7 / fps)  # frame 6 dropped
    out_missed = missed.update(frame(7), timestamp=7 / fps)
    # Dropped: the new walker's track has two consecutive hits and is reported (id 2).
    assert out_dropped[:, 4].tolist() == [1, 2]
    # Missed: its track died; it starts again (id 3), reported from its second hit on.
    assert out_missed[:, 4].tolist() == [1]
    assert missed.update(frame(8), timestamp=8 / fps)[:, 4].tolist() == [1, 3]


def test_lost_tracks_are_kept_for_max_lost_s_seconds_of_real_time() -> None:
    """Three updates, then one 1.4 s or 1.6 s later (max_lost_s = 1.5): only the first finds
    the standing person's track again."""
    box = np.array([[500.0, 100, 540, 200, 0.9]])
    ids = {}
    for gap in (1.4, 1.6):
        tracker = Tracker(frame_rate=30)
        first = [tracker.update(box, timestamp=k / 30)[:, 4] for k in range(3)][-1]
        ids[gap] = (first, tracker.update(box, timestamp=2 / 30 + gap)[:, 4])
    assert ids[1.4][1].tolist() == ids[1.4][0].tolist() == [1.0]
    assert ids[1.6][1].tolist() == []  # a new, tentative track: not reported


@pytest.mark.parametrize(
    "timestamp, match",
    [
        (0.5, "is not after the previous frame's 0.5"),
        (0.2, "is not after"),
        (float("nan"), "finite number"),
        (float("inf"), "finite number"),
        (True, "finite number"),
        ("1.0", "finite number"),
    ],
)
def test_bad_timestamps_leave_the_tracker_unchanged(timestamp: object, match: str) -> None:
    tracker = Tracker(frame_rate=30)
    first = tracker.update(_two_walkers(0), timestamp=0.5)
    with pytest.raises(EmtrackInputError, match=match):
        tracker.update(_two_walkers(1), timestamp=timestamp)  # type: ignore[arg-type]
    assert tracker.frame_count == 1 and tracker.time == 0.5
    again = tracker.update(_two_walkers(1), timestamp=0.5 + 1 / 30)
    assert len(again) == len(first) == 2


# --------------------------------------------------------------------------------------------
# Classes and time in whole sequences (track_sequence)
# --------------------------------------------------------------------------------------------


def _two_class_table(seed: int = 1, num_frames: int = 90) -> tuple[MotTable, SeqInfo]:
    """Two synthetic scenes on one image, as classes 2 and 5 of one det table."""
    from emtrack.synth import SceneConfig, generate_scene

    config = SceneConfig(num_frames=num_frames, frame_rate=15.0, mean_objects=10)
    scenes = [generate_scene(config, seed + k) for k in range(2)]
    tables = [scene.detections for scene in scenes]
    table = MotTable.from_arrays(
        np.concatenate([t.frames for t in tables]),
        np.concatenate([t.boxes_xyxy for t in tables]),
        np.concatenate([t.scores for t in tables]),
        classes=np.concatenate([np.full(len(t), c) for t, c in zip(tables, (2, 5), strict=True)]),
    )
    return table, scenes[0].seqinfo


def _tracks_of(result: MotTable) -> set[frozenset[tuple]]:
    tracks: dict[int, set[tuple]] = {}
    for frame, track_id, box in zip(
        result.frames.tolist(),
        result.ids.tolist(),
        np.round(result.boxes_xyxy, 6).tolist(),
        strict=True,
    ):
        tracks.setdefault(track_id, set()).add((frame, *box))
    return {frozenset(rows) for rows in tracks.values()}


@pytest.mark.parametrize("offline", [False, True])
def test_track_sequence_per_class_is_each_class_alone(offline: bool) -> None:
    table, info = _two_class_table()
    run = track_sequence(table, info, offline=offline)
    result = run.result
    assert set(result.classes.tolist()) == {2, 5}
    pairs = result.frames * 10**6 + result.ids
    assert len(np.unique(pairs)) == len(pairs)
    for class_id in (2, 5):
        alone = track_sequence(table.select(table.classes == class_id), info, offline=offline)
        mine = result.select(result.classes == class_id)
        assert _tracks_of(mine) == _tracks_of(alone.result)
        np.testing.assert_array_equal(np.sort(mine.scores), np.sort(alone.result.scores))
        assert set(alone.result.classes.tolist()) == {class_id}  # one class: kept too
    ids_by_class = [set(result.ids[result.classes == c].tolist()) for c in (2, 5)]
    assert not ids_by_class[0] & ids_by_class[1]
    # Class-agnostic: the tracks of the same rows without classes.
    agnostic = track_sequence(table, info, offline=offline, class_agnostic=True).result
    stripped = MotTable.from_arrays(table.frames, table.boxes_xyxy, table.scores)
    assert _tracks_of(agnostic) == _tracks_of(
        track_sequence(stripped, info, offline=offline).result
    )
    if not offline:
        assert set(agnostic.classes.tolist()) == {2, 5}


def _hota_idf1(result: MotTable, gt: MotTable, info: SeqInfo, folder) -> tuple[float, float]:
    from emtrack.eval import EvalSequence, evaluate

    folder.mkdir(parents=True, exist_ok=True)
    write_mot(folder / "gt.txt", gt)
    write_mot(folder / "res.txt", result)
    scores = evaluate([EvalSequence("s", folder / "gt.txt", folder / "res.txt", info)]).combined
    return scores.hota, scores.idf1


@pytest.mark.parametrize("offline", [False, True])
def test_dropped_frames_with_timestamps_track_as_well_as_half_the_frame_rate(
    tmp_path, offline: bool
) -> None:
    """Done when: every other frame of a 30 fps stream dropped, with timestamps, tracks at least
    as well as the same frames as a 15 fps stream. Without the timestamps every frame is
    tracked, the dropped ones as frames without detections, and far fewer tracks survive."""
    from emtrack.synth import SceneConfig, generate_scene

    scores: dict[str, list[tuple[float, float]]] = {"dropped": [], "half": [], "untimed": []}
    for seed in (11, 12):
        config = SceneConfig(num_frames=240, frame_rate=30.0, mean_objects=12)
        scene = generate_scene(config, seed)
        d, gt = scene.detections, scene.gt
        kept, gt_kept = d.frames % 2 == 1, gt.frames % 2 == 1
        dets = MotTable.from_arrays(d.frames[kept], d.boxes_xyxy[kept], d.scores[kept])
        stamps = Timestamps.from_arrays(np.arange(1, 241, 2), np.arange(0, 240, 2) / 30.0)
        half_info = SeqInfo("s", 15.0, 120, scene.seqinfo.im_width, scene.seqinfo.im_height)
        half_gt = gt.select(gt_kept)
        half_gt = MotTable.from_arrays(
            (half_gt.frames + 1) // 2, half_gt.boxes_xyxy, half_gt.scores, half_gt.ids,
            half_gt.classes, half_gt.visibility,
        )  # fmt: skip

        def on_half_frames(result: MotTable) -> MotTable:
            odd = result.select(result.frames % 2 == 1)  # offline also fills dropped frames
            return MotTable.from_arrays((odd.frames + 1) // 2, odd.boxes_xyxy, odd.scores, odd.ids)

        run = track_sequence(dets, scene.seqinfo, offline=offline, timestamps=stamps)
        assert (run.num_frames, run.dropped_frames) == (120, 120)
        half = MotTable.from_arrays((dets.frames + 1) // 2, dets.boxes_xyxy, dets.scores)
        half_run = track_sequence(half, half_info, offline=offline)
        every = Timestamps.from_arrays(np.arange(1, 241), np.arange(240) / 30.0)
        untimed = track_sequence(dets, scene.seqinfo, offline=offline, timestamps=every)
        folder = tmp_path / str(seed)
        scores["dropped"].append(
            _hota_idf1(on_half_frames(run.result), half_gt, half_info, folder / "a")
        )
        scores["half"].append(_hota_idf1(half_run.result, half_gt, half_info, folder / "b"))
        scores["untimed"].append(
            _hota_idf1(on_half_frames(untimed.result), half_gt, half_info, folder / "c")
        )
    mean = {name: np.mean(values, axis=0) for name, values in scores.items()}
    # Online the two are the same run (63.01 / 78.05 HOTA / IDF1); offline the dropped stream
    # is smoothed on the 30 fps grid (79.676 vs 79.681 HOTA): 0.1 points of slack for that.
    assert mean["dropped"][0] >= mean["half"][0] - 0.1, mean  # HOTA
    assert mean["dropped"][1] >= mean["half"][1] - 0.1, mean  # IDF1
    assert mean["untimed"][0] < mean["dropped"][0] - 5.0, mean


def test_detections_on_a_stride_are_tracked_with_the_frames_between_dropped() -> None:
    """A det file whose frames with detections are 2, 5, 8, ... (a detector run on every third
    frame) is tracked like the same file with timestamps listing those frames."""
    from emtrack.synth import SceneConfig, generate_scene

    scene = generate_scene(SceneConfig(num_frames=150, frame_rate=30.0, mean_objects=10), 4)
    d = scene.detections
    kept = d.frames % 3 == 2
    dets = MotTable.from_arrays(d.frames[kept], d.boxes_xyxy[kept], d.scores[kept])
    frames = np.arange(2, 151, 3)
    stamps = Timestamps.from_arrays(frames, (frames - 1) / 30.0)
    for offline in (False, True):
        auto = track_sequence(dets, scene.seqinfo, offline=offline)
        timed = track_sequence(dets, scene.seqinfo, offline=offline, timestamps=stamps)
        assert (auto.num_frames, auto.dropped_frames) == (50, 100)
        assert _tracks_of(auto.result) == _tracks_of(timed.result)
        assert len(auto.result) > 0.5 * len(dets) / (1 if offline else 1.5)


def test_track_sequence_timestamps_errors() -> None:
    dets = MotTable.from_arrays(np.array([1, 2, 4]), np.array([[0, 0, 10, 20.0]] * 3))
    info = SeqInfo(name="x", frame_rate=30.0, seq_length=5)
    with pytest.raises(EmtrackInputError, match="detections in frame 2, which the timestamps"):
        track_sequence(dets, info, timestamps=Timestamps.from_arrays([1, 4, 5], [0, 0.1, 0.2]))
    with pytest.raises(EmtrackInputError, match="frame 6 is beyond seqLength=5"):
        track_sequence(dets, info, timestamps=Timestamps.from_arrays([1, 2, 4, 6], [0, 1, 2, 3]))


def test_update_fits_the_stream_online() -> None:
    """One frame at a time, the tracker fits the score calibration (and noise) to the frames
    seen so far: after the first fit, a stream's logit scores track as its probabilities do."""
    scene, dets = _scene_tables(3)  # 10 fps: the first fit is after 10 frames
    p = np.clip(dets.scores, 1e-6, 1 - 1e-6)
    outputs = []
    for scores in (dets.scores, np.log(p / (1 - p))):
        tracker = Tracker(frame_rate=scene.seqinfo.frame_rate)
        rows = np.concatenate([dets.boxes_xyxy, scores[:, None]], 1)
        per_frame = [tracker.update(rows[index]) for index in dets.frame_index(150)]
        assert tracker._online is not None and tracker._online.fit is not None
        assert tracker._online.fit.calibration is not None
        assert tracker.noise is tracker._online.fit.noise is not None
        outputs.append(per_frame)
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_array_equal(a, b)
    given = Tracker(frame_rate=10.0, online_fit=False)
    assert given._online is None


def test_the_shipped_model_states_its_training_data_and_licence() -> None:
    """The default weights were trained on synthetic scenes only (no real data of a
    non-commercial licence) and say so, with the command that trains them."""
    import json

    from emtrack.track import DEFAULT_MODEL_PATH

    with np.load(DEFAULT_MODEL_PATH, allow_pickle=False) as data:
        provenance = json.loads(str(data["provenance"]))
    assert "synthetic" in provenance["training_data"] and "no real" in provenance["training_data"]
    assert provenance["licence"].startswith("MIT")
    assert "--det" not in provenance["command"] and "--init scratch" in provenance["command"]


def _fit_summary(fit: SequenceFit) -> tuple:
    """What a fit decided, comparable with ``==`` (its lines and noise constants)."""
    noise = None if fit.noise is None else (fit.noise.q.tolist(), fit.noise.r.tolist())
    return tuple(fit.describe()), noise, fit.camera_motion, fit.output_boxes


def test_fit_sequence_takes_the_first_pass_ids_precomputed() -> None:
    """Given the first pass's track ids, fit_sequence fits exactly what it fits when it runs
    the pass itself; ids of the wrong length are refused."""
    from emtrack.track.fit import first_pass_track_ids, fit_sequence

    scene, dets = _scene_tables(4)
    weights, config = load_model(None), TrackerConfig()
    ids = first_pass_track_ids(dets, scene.seqinfo, weights)
    own = fit_sequence(dets, scene.seqinfo, weights, config)
    given = fit_sequence(dets, scene.seqinfo, weights, config, track_ids=ids)
    assert _fit_summary(given) == _fit_summary(own)
    # The ids are used: every detection on a track of its own fits other noise constants.
    alone = fit_sequence(dets, scene.seqinfo, weights, config, track_ids=-1 - np.arange(len(dets)))
    assert _fit_summary(alone) != _fit_summary(own)
    with pytest.raises(ValueError, match="one id per detection"):
        fit_sequence(dets, scene.seqinfo, weights, config, track_ids=ids[:-1])


def test_online_fit_runs_its_first_pass_with_the_stream() -> None:
    """The online fit's running first pass gives each fit the tracks that a first pass over
    the frames so far gives (while the stream is shorter than the window): every fit is the
    one fit_sequence makes of those frames."""
    from emtrack.track.fit import OnlineFit, fit_sequence

    scene, dets = _scene_tables(5)
    weights, config = load_model(None), TrackerConfig()
    online = OnlineFit(scene.seqinfo.frame_rate, weights, config)
    rows = np.concatenate([dets.boxes_xyxy, dets.scores[:, None]], 1)
    fits = 0
    for frame, index in enumerate(dets.frame_index(scene.seqinfo.seq_length), start=1):
        fit = online.observe(rows[index], (frame - 1) / scene.seqinfo.frame_rate)
        if fit is None:
            continue
        fits += 1
        prefix = dets.frames <= frame
        table = MotTable.from_arrays(
            dets.frames[prefix], dets.boxes_xyxy[prefix], dets.scores[prefix]
        )
        expected = fit_sequence(
            table, SeqInfo("stream", scene.seqinfo.frame_rate, frame), weights, config
        )
        assert _fit_summary(fit) == _fit_summary(expected)
    assert fits >= 3


def test_forget_history_drops_the_earlier_updates() -> None:
    """Tracker.forget_history keeps the matches of the later updates exactly as they were."""
    scene, dets = _scene_tables(6)
    tracker = Tracker(scene.seqinfo.frame_rate, keep_history=True, online_fit=False)
    rows = np.concatenate([dets.boxes_xyxy, dets.scores[:, None]], 1)
    for index in dets.frame_index(scene.seqinfo.seq_length):
        tracker.update(rows[index])
    before = {track_id: track.frames.copy() for track_id, track in tracker.history.items()}
    tracker.forget_history(100)
    after = tracker.history
    assert after and all(track.frames.min() >= 100 for track in after.values())
    for track_id, frames in before.items():
        later = frames[frames >= 100]
        if len(later):
            np.testing.assert_array_equal(after[track_id].frames, later)
        else:
            assert track_id not in after


def test_reset_forgets_what_the_online_fit_learned() -> None:
    """After reset a tracker starts the next stream with the settings it was given, not the
    last stream's fit, and tracks that stream as a fresh tracker does."""
    scene, dets = _scene_tables(7)
    rows = np.concatenate([dets.boxes_xyxy, dets.scores[:, None]], 1)
    frames = dets.frame_index(scene.seqinfo.seq_length)
    tracker = Tracker(scene.seqinfo.frame_rate)
    given = tracker.noise
    for index in frames:
        tracker.update(rows[index])
    assert tracker.noise is not given  # the online fit replaced the model's constants
    tracker.reset()
    assert tracker.noise is given
    fresh = Tracker(scene.seqinfo.frame_rate)
    for index in frames[:40]:
        np.testing.assert_array_equal(tracker.update(rows[index]), fresh.update(rows[index]))

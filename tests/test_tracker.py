"""Behaviour of the online tracker, the offline pass and the Python API contract."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import emtrack
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, write_mot
from emtrack.track import Tracker, TrackerConfig, load_model, track_sequence
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
                state_to_boxes(filtered._mean[0, 0]),  # the updated mean
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
        (np.array([[10, 0, 5, 10, 0.9]]), r"x2 <= x1"),
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
    """Filtered box of a steady walker (scores 1) after a detection 6 px off its path."""
    tracker = Tracker(frame_rate=30, config=TrackerConfig(measurement_noise=measurement_noise))
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
    tracker = Tracker(frame_rate=30, config=TrackerConfig(measurement_noise=measurement_noise))
    tracker.update(np.array([_walker(0, 100, 2) + [0.8], _walker(0, 600, 2) + [1.0]]))
    r_h2 = tracker.weights.noise_r * 100.0**2  # the walkers are 100 px tall
    factor = 1 / 0.8 if measurement_noise == "score" else 1.0
    assert tracker._cov[:, 0] == pytest.approx([r_h2 * factor, r_h2])


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

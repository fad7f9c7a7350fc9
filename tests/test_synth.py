"""Tests of emtrack.synth: synthetic scenes and the detector noise model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, read_mot, read_seqinfo
from emtrack.synth import (
    DetectionNoiseConfig,
    Scene,
    SceneConfig,
    default_training_scenes,
    detections_from_gt,
    generate_scene,
    load_gt_objects,
    with_noise,
)

# A detector that only misses independently at the base rate (no occlusion, no bursts, no FPs).
PLAIN_MISSES = {"occluded_miss_prob": 0.1, "miss_prob": 0.1, "burst_start_prob": 0.0}


def assert_tables_equal(a: MotTable, b: MotTable) -> None:
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.classes, b.classes)
    np.testing.assert_array_equal(a.visibility, b.visibility)


def assert_scenes_equal(a: Scene, b: Scene) -> None:
    assert a.seqinfo == b.seqinfo
    assert_tables_equal(a.gt, b.gt)
    assert_tables_equal(a.detections, b.detections)


def assert_valid_boxes(table: MotTable, num_frames: int) -> None:
    boxes = table.boxes_xyxy
    assert np.all(np.isfinite(boxes))
    assert np.all(boxes[:, 2] > boxes[:, 0])
    assert np.all(boxes[:, 3] > boxes[:, 1])
    if len(table):
        assert table.frames.min() >= 1
        assert table.frames.max() <= num_frames
    assert np.all(np.diff(table.frames) >= 0)


def long_tracks_gt(num_ids: int, num_frames: int, visibility: float = -1.0) -> MotTable:
    """``num_ids`` static 40x100 boxes side by side, present in every frame."""
    frames = np.repeat(np.arange(1, num_frames + 1), num_ids)
    ids = np.tile(np.arange(1, num_ids + 1), num_frames)
    x1 = 50.0 * (ids - 1)
    boxes = np.stack([x1, np.full_like(x1, 100.0), x1 + 40.0, np.full_like(x1, 200.0)], axis=1)
    return MotTable.from_arrays(
        frames=frames,
        boxes_xyxy=boxes,
        ids=ids,
        scores=np.ones(len(frames)),
        classes=np.ones(len(frames), dtype=np.int64),
        visibility=np.full(len(frames), visibility),
    )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two ``(N, 4)`` xyxy arrays."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a + area_b - inter)


# ---------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_scene() -> None:
    config = SceneConfig(num_frames=200)
    assert_scenes_equal(generate_scene(config, 7), generate_scene(config, 7))
    a = generate_scene(config, np.random.default_rng(3))
    b = generate_scene(config, np.random.default_rng(3))
    assert_scenes_equal(a, b)


def test_scene_rebuilt_from_its_name() -> None:
    config = SceneConfig(num_frames=100)
    scene = generate_scene(config, np.random.default_rng(11))
    assert scene.seqinfo.name.startswith("synth-")
    seed = int(scene.seqinfo.name.removeprefix("synth-"))
    assert_scenes_equal(scene, generate_scene(config, seed))


def test_different_seeds_differ() -> None:
    config = SceneConfig(num_frames=100)
    a, b = generate_scene(config, 1), generate_scene(config, 2)
    assert a.seqinfo.name != b.seqinfo.name
    assert len(a.gt) != len(b.gt) or not np.array_equal(a.gt.boxes_xyxy, b.gt.boxes_xyxy)
    assert len(a.detections) != len(b.detections) or not np.array_equal(
        a.detections.boxes_xyxy, b.detections.boxes_xyxy
    )


def test_scene_tables_are_valid() -> None:
    config = SceneConfig(num_frames=300, mean_objects=30, camera_jitter=5.0)
    scene = generate_scene(config, 0)
    gt, det = scene.gt, scene.detections
    assert_valid_boxes(gt, config.num_frames)
    assert_valid_boxes(det, config.num_frames)
    # gt is clipped to the image, ids are identities >= 1, one row per id and frame.
    assert np.all(gt.boxes_xyxy >= 0)
    assert np.all(gt.boxes_xyxy[:, [0, 2]] <= config.image_width)
    assert np.all(gt.boxes_xyxy[:, [1, 3]] <= config.image_height)
    assert np.all(gt.ids >= 1)
    assert len(np.unique(gt.frames * 10**6 + gt.ids)) == len(gt)
    assert np.all((gt.visibility >= 0) & (gt.visibility <= 1))
    np.testing.assert_array_equal(gt.classes, 1)
    np.testing.assert_array_equal(gt.scores, 1.0)
    # Detections stay in the image; true detections name an object present in that frame.
    assert np.all(det.boxes_xyxy >= 0)
    assert np.all(det.boxes_xyxy[:, [0, 2]] <= config.image_width)
    assert np.all(det.boxes_xyxy[:, [1, 3]] <= config.image_height)
    assert np.all((det.scores >= 0.1) & (det.scores <= 1.0))
    true = det.ids >= 0
    gt_keys = set((gt.frames * 10**6 + gt.ids).tolist())
    assert set((det.frames[true] * 10**6 + det.ids[true]).tolist()) <= gt_keys
    assert np.all(det.ids[~true] == -1)
    assert scene.seqinfo == SeqInfo(
        name="synth-0", frame_rate=30.0, seq_length=300, im_width=1920, im_height=1080
    )
    assert scene.config == config


def test_every_frame_is_populated_and_people_come_and_go() -> None:
    scene = generate_scene(SceneConfig(num_frames=900), 5)
    counts = np.bincount(scene.gt.frames, minlength=901)[1:]
    assert counts.min() > 0
    first_frame = {i: scene.gt.frames[scene.gt.ids == i].min() for i in np.unique(scene.gt.ids)}
    assert sum(f > 1 for f in first_frame.values()) > 10  # births
    last_frame = {i: scene.gt.frames[scene.gt.ids == i].max() for i in np.unique(scene.gt.ids)}
    assert sum(f < 900 for f in last_frame.values()) > 10  # departures


@pytest.mark.parametrize("mean_objects", [5.0, 20.0, 50.0])
def test_density_sets_mean_objects_per_frame(mean_objects: float) -> None:
    config = SceneConfig(num_frames=1500, mean_objects=mean_objects)
    scene = generate_scene(config, 21)
    per_frame = len(scene.gt) / config.num_frames
    assert per_frame == pytest.approx(mean_objects, rel=0.25)


def test_density_knob_orders_crowds() -> None:
    means = [
        len(generate_scene(SceneConfig(num_frames=600, mean_objects=m), 4).gt) / 600
        for m in (5, 15, 40)
    ]
    assert means[0] < means[1] < means[2]


def test_walking_speed_in_body_heights_per_second() -> None:
    config = SceneConfig(
        num_frames=600, fast_prob=0.0, stop_rate_per_s=0.0, vertical_speed_scale=1.0
    )
    gt = generate_scene(config, 9).gt
    order = np.lexsort((gt.frames, gt.ids))
    frames, ids, boxes = gt.frames[order], gt.ids[order], gt.boxes_xyxy[order]
    # Consecutive rows of one id, away from the image borders (no clipping).
    inner = (boxes[:, 0] > 1) & (boxes[:, 2] < config.image_width - 1) & (boxes[:, 3] < 1079)
    pair = (ids[1:] == ids[:-1]) & (frames[1:] == frames[:-1] + 1) & inner[1:] & inner[:-1]
    bottom = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
    step = np.linalg.norm(bottom[1:] - bottom[:-1], axis=1)[pair]
    height = (boxes[:, 3] - boxes[:, 1])[:-1][pair]
    speed = step / height * config.frame_rate
    assert 0.5 < np.median(speed) < 1.2
    assert np.percentile(speed, 99) < 3.0


def test_camera_jitter_shifts_whole_frames() -> None:
    still = generate_scene(SceneConfig(num_frames=400), 13).gt
    shaken = generate_scene(SceneConfig(num_frames=400, camera_jitter=8.0), 13).gt
    shifts = []
    for frame in range(1, 401):
        a = still.select(still.frames == frame)
        b = shaken.select(shaken.frames == frame)
        _, ia, ib = np.intersect1d(a.ids, b.ids, return_indices=True)
        box_a, box_b = a.boxes_xyxy[ia], b.boxes_xyxy[ib]
        # Only boxes clear of the borders in both scenes are shifted without clipping.
        clear = (
            (box_a[:, 0] > 50) & (box_a[:, 2] < 1870) & (box_a[:, 1] > 50) & (box_a[:, 3] < 1030)
        )
        if clear.sum() >= 2:
            delta = box_b[clear] - box_a[clear]
            np.testing.assert_allclose(delta, np.broadcast_to(delta[0], delta.shape), atol=1e-6)
            shifts.append(delta[0, :2])
    shifts_arr = np.array(shifts)
    assert len(shifts_arr) > 300
    assert np.std(shifts_arr, axis=0) == pytest.approx([8.0, 8.0], rel=0.35)


# ---------------------------------------------------------------------------------------------
# Detector model inside scenes: statistics match the config
# ---------------------------------------------------------------------------------------------


def test_scene_miss_rate_matches_config() -> None:
    config = with_noise(SceneConfig(num_frames=2000), **PLAIN_MISSES, fp_per_frame=0.0)
    scene = generate_scene(config, 17)
    assert len(scene.gt) > 30_000
    assert np.all(scene.detections.ids >= 0)
    miss_rate = 1.0 - len(scene.detections) / len(scene.gt)
    assert miss_rate == pytest.approx(0.1, abs=0.01)


def test_scene_fp_rate_matches_config() -> None:
    config = with_noise(SceneConfig(num_frames=2000), fp_per_frame=2.5)
    det = generate_scene(config, 18).detections
    fp = det.ids == -1
    assert fp.sum() / config.num_frames == pytest.approx(2.5, abs=0.12)
    # False positives score lower on average than true detections.
    assert det.scores[fp].mean() < det.scores[~fp].mean() - 0.15


def test_occluded_objects_are_missed_more() -> None:
    config = with_noise(SceneConfig(num_frames=1500, mean_objects=40), burst_start_prob=0.0)
    scene = generate_scene(config, 19)
    gt, det = scene.gt, scene.detections
    detected = np.isin(gt.frames * 10**6 + gt.ids, det.frames * 10**6 + det.ids)
    hidden = gt.visibility <= config.noise.visibility_occluded
    visible = gt.visibility >= config.noise.visibility_full
    assert hidden.sum() > 1000
    assert 1 - detected[hidden].mean() == pytest.approx(config.noise.occluded_miss_prob, abs=0.03)
    assert 1 - detected[visible].mean() == pytest.approx(config.noise.miss_prob, abs=0.02)


def test_box_noise_scales_with_height() -> None:
    config = with_noise(
        SceneConfig(num_frames=500),
        **PLAIN_MISSES,
        fp_per_frame=0.0,
        box_noise_frac=0.05,
    )
    scene = generate_scene(config, 23)
    gt, det = scene.gt, scene.detections
    gt_row = {k: r for r, k in enumerate((gt.frames * 10**6 + gt.ids).tolist())}
    rows = np.array([gt_row[k] for k in (det.frames * 10**6 + det.ids).tolist()])
    true_boxes = gt.boxes_xyxy[rows]
    height = true_boxes[:, 3] - true_boxes[:, 1]
    # Edges inside the image are not clipped: their error / height has std box_noise_frac.
    inner = (true_boxes[:, 1] > 100) & (true_boxes[:, 3] < 980)
    relative = (det.boxes_xyxy[inner, 1] - true_boxes[inner, 1]) / height[inner]
    assert np.std(relative) == pytest.approx(0.05, rel=0.05)
    assert abs(np.mean(relative)) < 0.005


# ---------------------------------------------------------------------------------------------
# detections_from_gt and load_gt_objects on hand-made ground truth
# ---------------------------------------------------------------------------------------------


def small_gt() -> MotTable:
    """Three frames, two people (ids 3 and 8), visibility known for the first rows only."""
    return MotTable.from_arrays(
        frames=np.array([1, 1, 2, 2, 3]),
        ids=np.array([3, 8, 3, 8, 8]),
        boxes_xyxy=np.array(
            [
                [10.0, 20.0, 50.0, 120.0],
                [200.0, 40.0, 260.0, 190.0],
                [14.0, 21.0, 54.0, 121.0],
                [204.0, 40.0, 264.0, 190.0],
                [208.0, 41.0, 268.0, 191.0],
            ]
        ),
        scores=np.ones(5),
        classes=np.ones(5, dtype=np.int64),
        visibility=np.array([1.0, 0.9, -1.0, -1.0, -1.0]),
    )


def test_noiseless_detections_are_the_gt_boxes() -> None:
    gt = small_gt()
    det = detections_from_gt(gt, DetectionNoiseConfig.noiseless(), np.random.default_rng(0))
    np.testing.assert_array_equal(det.frames, gt.frames)
    np.testing.assert_array_equal(det.ids, gt.ids)
    np.testing.assert_array_equal(det.boxes_xyxy, gt.boxes_xyxy)
    assert np.all((det.scores >= 0.5) & (det.scores <= 1.0))
    np.testing.assert_array_equal(det.classes, -1)
    np.testing.assert_array_equal(det.visibility, -1.0)


def test_detections_from_small_gt() -> None:
    gt = small_gt()
    seqinfo = SeqInfo(name="tiny", frame_rate=10.0, seq_length=4, im_width=320, im_height=240)
    noise = DetectionNoiseConfig(fp_per_frame=3.0)
    for seed in range(20):
        det = detections_from_gt(gt, noise, np.random.default_rng(seed), seqinfo)
        assert_valid_boxes(det, 4)  # frame 4 has no gt but may have false positives
        assert np.all(det.boxes_xyxy >= 0)
        assert np.all(det.boxes_xyxy[:, [0, 2]] <= 320)
        assert np.all(det.boxes_xyxy[:, [1, 3]] <= 240)
        assert set(det.ids.tolist()) <= {-1, 3, 8}
        true = np.flatnonzero(det.ids >= 0)
        for row in true:
            match = (gt.frames == det.frames[row]) & (gt.ids == det.ids[row])
            assert match.sum() == 1
            true_box = gt.boxes_xyxy[match][0]
            height = true_box[3] - true_box[1]
            # 4 % of the height per edge: 6 sigma is 24 % of the height.
            assert np.all(np.abs(det.boxes_xyxy[row] - true_box) <= 0.24 * height)
        assert len(np.unique(det.frames[true] * 100 + det.ids[true])) == len(true)


def test_detections_from_gt_without_seqinfo_uses_gt_extent() -> None:
    gt = small_gt()
    noise = replace(DetectionNoiseConfig.noiseless(), fp_per_frame=5.0)
    det = detections_from_gt(gt, noise, 1)
    fp = det.ids == -1
    assert fp.sum() > 0
    assert det.frames.max() <= 3
    low, high = gt.boxes_xyxy[:, :2].min(axis=0), gt.boxes_xyxy[:, 2:].max(axis=0)
    assert np.all(det.boxes_xyxy[:, :2] >= low - 1e-9)
    assert np.all(det.boxes_xyxy[:, 2:] <= high + 1e-9)


def test_detections_from_empty_gt() -> None:
    empty = MotTable.from_arrays(frames=np.zeros(0, dtype=np.int64), boxes_xyxy=np.zeros((0, 4)))
    det = detections_from_gt(empty, DetectionNoiseConfig(), 0)
    assert len(det) == 0
    seqinfo = SeqInfo(name="e", frame_rate=30.0, seq_length=50, im_width=640, im_height=480)
    det = detections_from_gt(empty, DetectionNoiseConfig(fp_per_frame=2.0), 0, seqinfo)
    assert len(det) == 0  # no gt sizes to draw false positives from


def test_miss_rate_follows_visibility() -> None:
    noise = DetectionNoiseConfig(burst_start_prob=0.0, fp_per_frame=0.0)
    rates = {}
    for visibility in (-1.0, 1.0, 0.6, 0.1):
        gt = long_tracks_gt(10, 3000, visibility=visibility)
        det = detections_from_gt(gt, noise, np.random.default_rng(2))
        rates[visibility] = 1.0 - len(det) / len(gt)
    assert rates[-1.0] == pytest.approx(noise.miss_prob, abs=0.01)
    assert rates[1.0] == pytest.approx(noise.miss_prob, abs=0.01)
    assert rates[0.6] == pytest.approx((noise.miss_prob + noise.occluded_miss_prob) / 2, abs=0.02)
    assert rates[0.1] == pytest.approx(noise.occluded_miss_prob, abs=0.01)


def test_bursts_are_runs_of_consecutive_misses() -> None:
    noise = DetectionNoiseConfig(
        miss_prob=0.0, burst_start_prob=0.02, burst_mean_frames=8.0, fp_per_frame=0.0
    )
    gt = long_tracks_gt(20, 5000)
    det = detections_from_gt(gt, noise, np.random.default_rng(4))
    detected = np.isin(gt.frames * 100 + gt.ids, det.frames * 100 + det.ids)
    assert 1.0 - detected.mean() == pytest.approx(noise.burst_fraction(), rel=0.1)
    # Runs of misses per id: longer than single misses, geometric-like with mean >= 8.
    run_lengths = []
    for object_id in range(1, 21):
        missed = ~detected[gt.ids == object_id]
        edges = np.diff(np.concatenate([[0], missed.astype(np.int8), [0]]))
        run_lengths.extend(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    assert np.mean(run_lengths) == pytest.approx(8.0 / (1 - noise.burst_fraction()), rel=0.2)


def test_fp_rate_and_scores_from_gt() -> None:
    noise = DetectionNoiseConfig(fp_per_frame=1.5, fp_duplicate_frac=0.5)
    gt = long_tracks_gt(5, 4000)
    seqinfo = SeqInfo(name="s", frame_rate=25.0, seq_length=4000, im_width=640, im_height=480)
    det = detections_from_gt(gt, noise, np.random.default_rng(6), seqinfo)
    fp = det.ids == -1
    assert fp.sum() / 4000 == pytest.approx(1.5, abs=0.06)
    # Share of high (>= 0.5) scores: fp_high_score_prob for FPs, 1 - true_low_score_prob else.
    assert (det.scores[fp] >= 0.5).mean() == pytest.approx(noise.fp_high_score_prob, abs=0.03)
    assert (det.scores[~fp] >= 0.5).mean() == pytest.approx(1 - noise.true_low_score_prob, abs=0.02)
    # False positive sizes come from the gt (40 x 100), clipped at the border at most.
    sizes = det.boxes_xyxy[fp, 2:] - det.boxes_xyxy[fp, :2]
    plain = np.isclose(sizes, [40.0, 100.0]).all(axis=1)
    assert plain.mean() > 0.3


def test_rows_are_shuffled_within_frames() -> None:
    gt = long_tracks_gt(10, 50)
    det = detections_from_gt(gt, DetectionNoiseConfig(miss_prob=0.0, fp_per_frame=0.0), 0)
    frame_one = det.ids[det.frames == 1]
    assert not np.all(np.diff(frame_one) > 0) or not np.all(np.diff(det.ids[det.frames == 2]) > 0)
    unshuffled = DetectionNoiseConfig(miss_prob=0.0, fp_per_frame=0.0, shuffle_within_frame=False)
    det = detections_from_gt(gt, unshuffled, 0)
    assert np.all(np.diff(det.ids[det.frames == 1]) > 0)


def test_detections_from_gt_is_deterministic() -> None:
    gt = long_tracks_gt(5, 100, visibility=0.5)
    a = detections_from_gt(gt, DetectionNoiseConfig(), np.random.default_rng(8))
    b = detections_from_gt(gt, DetectionNoiseConfig(), np.random.default_rng(8))
    c = detections_from_gt(gt, DetectionNoiseConfig(), np.random.default_rng(9))
    assert_tables_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a.boxes_xyxy, c.boxes_xyxy)


def test_load_gt_objects_keeps_evaluable_pedestrians() -> None:
    gt = MotTable.from_arrays(
        frames=np.array([1, 1, 1, 1, 2, 2]),
        ids=np.array([1, 2, 3, 4, 5, 6]),
        boxes_xyxy=np.tile([0.0, 0.0, 10.0, 20.0], (6, 1)),
        scores=np.array([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]),
        classes=np.array([1, 7, 1, -1, 2, 1]),
        visibility=np.full(6, 0.5),
    )
    kept = load_gt_objects(gt)
    np.testing.assert_array_equal(kept.ids, [1, 4, 6])


@settings(max_examples=30, deadline=None)
@given(
    num_rows=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
    box_noise_frac=st.floats(0.0, 0.5),
    fp_per_frame=st.floats(0.0, 4.0),
)
def test_detections_from_random_gt_are_valid(
    num_rows: int, seed: int, box_noise_frac: float, fp_per_frame: float
) -> None:
    rng = np.random.default_rng(seed)
    top_left = rng.uniform(-20, 300, size=(num_rows, 2))
    size = rng.uniform(0.5, 80, size=(num_rows, 2))
    gt = MotTable.from_arrays(
        frames=rng.integers(1, 6, size=num_rows),
        ids=rng.integers(1, 4, size=num_rows),
        boxes_xyxy=np.concatenate([top_left, top_left + size], axis=1),
        visibility=rng.uniform(-1, 1, size=num_rows),
    )
    seqinfo = SeqInfo(name="r", frame_rate=30.0, seq_length=6, im_width=320, im_height=240)
    noise = DetectionNoiseConfig(box_noise_frac=box_noise_frac, fp_per_frame=fp_per_frame)
    det = detections_from_gt(gt, noise, rng, seqinfo)
    assert_valid_boxes(det, 6)
    assert np.all((det.scores >= 0.1) & (det.scores <= 1.0))


# ---------------------------------------------------------------------------------------------
# Configuration checks and training scenes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"num_frames": 0},
        {"frame_rate": 0.0},
        {"mean_objects": -1.0},
        {"image_width": 10.5},
        {"fast_prob": 1.5},
        {"speed_range_heights_per_s": (1.5, 0.3)},
        {"horizon_frac": 0.5, "ground_top_frac": 0.4},
        {"camera_jitter": float("nan")},
        {"noise": "loud"},
    ],
)
def test_scene_config_rejects_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(EmtrackInputError):
        SceneConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"miss_prob": -0.1},
        {"occluded_miss_prob": 1.1},
        {"box_noise_frac": -0.01},
        {"fp_per_frame": -1.0},
        {"burst_mean_frames": 0.5},
        {"visibility_full": 0.3, "visibility_occluded": 0.4},
        {"shuffle_within_frame": 1},
    ],
)
def test_noise_config_rejects_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(EmtrackInputError):
        DetectionNoiseConfig(**changes)  # type: ignore[arg-type]


def test_default_configs_are_valid() -> None:
    assert SceneConfig().noise == DetectionNoiseConfig()
    assert DetectionNoiseConfig().burst_fraction() == pytest.approx(0.058, abs=0.001)
    scene = generate_scene(SceneConfig(num_frames=30), 0)
    assert len(scene.gt) > 0


def test_default_training_scenes_vary_and_reproduce() -> None:
    scenes = default_training_scenes(12, np.random.default_rng(0), num_frames=120)
    assert len(scenes) == 12
    assert len({s.seqinfo.name for s in scenes}) == 12
    assert len({s.seqinfo.frame_rate for s in scenes}) > 2
    assert len({(s.seqinfo.im_width, s.seqinfo.im_height) for s in scenes}) > 2
    densities = [len(s.gt) / 120 for s in scenes]
    assert min(densities) < 15 < max(densities)
    for scene in scenes:
        assert scene.seqinfo.seq_length == 120
        assert_valid_boxes(scene.gt, 120)
        assert_valid_boxes(scene.detections, 120)
        assert 5 <= scene.config.mean_objects <= 60
        assert 7 <= scene.seqinfo.frame_rate <= 30
    # Reproducible: the same seed gives the same list; each scene from its config and name.
    again = default_training_scenes(12, np.random.default_rng(0), num_frames=120)
    for a, b in zip(scenes, again, strict=True):
        assert_scenes_equal(a, b)
    first = scenes[0]
    assert first.config is not None
    assert_scenes_equal(
        first, generate_scene(first.config, int(first.seqinfo.name.removeprefix("synth-")))
    )


# ---------------------------------------------------------------------------------------------
# Real MOT17 ground truth
# ---------------------------------------------------------------------------------------------


def test_mot17_gt_to_detections(shared_data: Path) -> None:
    sequence = shared_data / "MOT17" / "MOT17-04-FRCNN"
    gt = read_mot(sequence / "gt" / "gt.txt")
    seqinfo = read_seqinfo(sequence / "seqinfo.ini")
    objects = load_gt_objects(gt)
    assert 0 < len(objects) < len(gt)
    assert np.all(objects.classes == 1)
    assert np.all(objects.scores != 0)
    noise = DetectionNoiseConfig()
    det = detections_from_gt(objects, noise, np.random.default_rng(0), seqinfo)
    assert_valid_boxes(det, seqinfo.seq_length)
    true = det.ids >= 0
    assert set(np.unique(det.ids[true]).tolist()) <= set(np.unique(objects.ids).tolist())
    # MOT17-04 is crowded with many occlusions: recall well below 1 - miss_prob, above 0.3.
    recall = true.sum() / len(objects)
    assert 0.3 < recall < 1 - noise.miss_prob - noise.burst_fraction()
    assert (~true).sum() / seqinfo.seq_length == pytest.approx(noise.fp_per_frame, abs=0.1)
    # False positives lie in the image.
    fp_boxes = det.boxes_xyxy[~true]
    assert np.all(fp_boxes >= 0)
    assert np.all(fp_boxes[:, [0, 2]] <= seqinfo.im_width)
    assert np.all(fp_boxes[:, [1, 3]] <= seqinfo.im_height)
    # True detections overlap their gt box well (IoU > 0.5 for nearly all).
    gt_row = {k: r for r, k in enumerate((objects.frames * 10**6 + objects.ids).tolist())}
    rows = np.array([gt_row[k] for k in (det.frames[true] * 10**6 + det.ids[true]).tolist()])
    iou = box_iou(det.boxes_xyxy[true], objects.boxes_xyxy[rows])
    assert np.mean(iou > 0.5) > 0.95
    # Noiseless: the gt itself.
    exact = detections_from_gt(objects, DetectionNoiseConfig.noiseless(), 0, seqinfo)
    np.testing.assert_array_equal(exact.boxes_xyxy, objects.boxes_xyxy)
    np.testing.assert_array_equal(exact.ids, objects.ids)
    np.testing.assert_array_equal(exact.frames, objects.frames)

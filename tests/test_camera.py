"""Camera-motion compensation from the tracks themselves (``emtrack.track.camera``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emtrack.eval import EvalSequence, evaluate
from emtrack.io import MotTable, write_mot
from emtrack.track import Tracker, TrackerConfig, track_sequence
from emtrack.track.camera import MIN_TRACKS, CameraMotion
from test_tracker import _scene_tables


def _frames(rng, camera: np.ndarray, count: int = 8, noise: float = 2.0):
    """Innovations of ``count`` steady tracks per frame: the camera's shift plus noise."""
    for shift in camera:
        yield shift + rng.normal(0.0, noise, (count, 2)), np.full((count, 2), noise**2)


def test_a_static_camera_is_barely_shifted() -> None:
    rng = np.random.default_rng(0)
    motion = CameraMotion(frame_rate=25.0, time_constant_s=1.0)
    steady = np.ones(8, bool)
    shifts = [motion.shift(y, s, steady) for y, s in _frames(rng, np.zeros((500, 2)))]
    applied = np.array([np.zeros(2) if shift is None else shift for shift in shifts])
    # The learned shift variance hovers around 0, so whatever is shifted is a small fraction
    # of the noise of the mean of 8 innovations (2 / sqrt(8) = 0.7 px per coordinate).
    assert abs(motion.variance) < 0.5
    assert np.abs(applied).mean() < 0.1


def test_a_shaking_camera_is_followed() -> None:
    rng = np.random.default_rng(1)
    motion = CameraMotion(frame_rate=25.0, time_constant_s=1.0)
    camera = rng.normal(0.0, 10.0, (300, 2))  # 10 px of shake per frame, noise 2 px
    steady = np.ones(8, bool)
    shifts = [motion.shift(y, s, steady) for y, s in _frames(rng, camera)]
    late = np.array([np.zeros(2) if s is None else s for s in shifts[50:]])
    assert motion.variance == pytest.approx(100.0, rel=0.5)
    # Close to the camera's shift: the residual is about the noise of the mean (0.7 px).
    assert np.abs(late - camera[50:]).mean() < 1.0 < np.abs(camera[50:]).mean() / 5


def test_only_steady_tracks_count_and_two_are_needed() -> None:
    motion = CameraMotion(frame_rate=10.0, time_constant_s=1.0)
    y = np.array([[30.0, 0.0], [30.0, 0.0], [-500.0, 0.0]])
    s = np.ones((3, 2))
    assert MIN_TRACKS == 2
    assert motion.shift(y, s, np.array([True, False, False])) is None
    assert motion.variance == 0.0  # no estimate, no update
    for _ in range(30):  # the re-found track (not steady) never enters the mean
        shift = motion.shift(y, s, np.array([True, True, False]))
    assert shift is not None and shift[0] == pytest.approx(30.0, rel=0.05)
    assert shift[1] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="time_constant_s"):
        CameraMotion(frame_rate=10.0, time_constant_s=0.0)


def _shaken(seed: int, sigma: float) -> tuple[MotTable, MotTable, object]:
    """A synthetic scene filmed by a camera that shakes by ``sigma`` px per frame."""
    scene, dets = _scene_tables(seed)
    offset = np.random.default_rng(seed).normal(0.0, sigma, (scene.seqinfo.seq_length + 1, 2))
    gt = scene.gt
    shaken_gt = MotTable.from_arrays(
        gt.frames, gt.boxes_xyxy + np.tile(offset[gt.frames], 2), gt.scores, gt.ids
    )
    shaken = MotTable.from_arrays(
        dets.frames, dets.boxes_xyxy + np.tile(offset[dets.frames], 2), dets.scores
    )
    return shaken_gt, shaken, scene.seqinfo


def _scores(tmp_path: Path, sigma: float, config: TrackerConfig):
    sequences = []
    for seed in (3, 4):
        gt, dets, seqinfo = _shaken(seed, sigma)
        gt_path, result_path = tmp_path / f"gt{seed}.txt", tmp_path / f"r{seed}.txt"
        write_mot(gt_path, gt)
        write_mot(result_path, track_sequence(dets, seqinfo, config=config).result)
        sequences.append(EvalSequence(f"s{seed}", gt_path, result_path, seqinfo))
    return evaluate(sequences).combined


def test_compensation_keeps_identities_under_a_shaking_camera(tmp_path: Path) -> None:
    on = _scores(tmp_path, 12.0, TrackerConfig())
    off = _scores(tmp_path, 12.0, TrackerConfig(camera_motion_s=0))
    assert on.idsw < 0.8 * off.idsw
    assert on.idf1 > off.idf1 + 3 and on.hota > off.hota + 3


def test_a_static_camera_tracks_as_without_compensation() -> None:
    for seed in (3, 4):
        scene, dets = _scene_tables(seed)
        on = track_sequence(dets, scene.seqinfo).result
        off = track_sequence(dets, scene.seqinfo, config=TrackerConfig(camera_motion_s=0)).result
        np.testing.assert_array_equal(on.ids, off.ids)
        np.testing.assert_array_equal(on.boxes_xyxy, off.boxes_xyxy)


def test_config_and_reset() -> None:
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match=r"camera_motion_s|durations"):
            TrackerConfig(camera_motion_s=bad)
    tracker = Tracker(10.0)
    assert tracker._camera is not None and tracker._camera.variance == 0.0
    tracker._camera.variance = 5.0
    tracker.reset()
    assert tracker._camera.variance == 0.0
    assert Tracker(10.0, config=TrackerConfig(camera_motion_s=0))._camera is None


def _filmed(seed: int, camera: str) -> tuple[MotTable, MotTable, object]:
    """A synthetic scene filmed by a static camera, one panning at 6 px per frame, or one
    moving forward (every box scaled by 1.01 per frame about the image centre)."""
    scene, dets = _scene_tables(seed)
    info = scene.seqinfo
    centre = np.array([info.im_width / 2, info.im_height / 2] * 2)

    def move(table: MotTable, with_ids: bool) -> MotTable:
        t = table.frames[:, None].astype(float)
        boxes = table.boxes_xyxy
        if camera == "pan":
            boxes = boxes + np.array([6.0, 0.0, 6.0, 0.0]) * t
        elif camera == "forward":
            boxes = centre + (boxes - centre) * 1.01**t
        ids = table.ids if with_ids else None
        return MotTable.from_arrays(table.frames, boxes, table.scores, ids)

    return move(scene.gt, True), move(dets, False), info


@pytest.mark.parametrize("camera", ["static", "pan", "forward"])
def test_the_camera_model_chosen_per_input_is_never_worse_than_none(tmp_path, camera) -> None:
    """Whether to compensate is chosen per input by the likelihood of its tracks: a static,
    a panning and a forward-moving camera each track at least as well as without any
    compensation (and a static camera is left uncompensated)."""
    scores = {}
    for model in ("auto", "none"):
        sequences = []
        for seed in (3, 4):
            gt, dets, seqinfo = _filmed(seed, camera)
            gt_path, result_path = tmp_path / f"gt{seed}.txt", tmp_path / f"{model}{seed}.txt"
            write_mot(gt_path, gt)
            run = track_sequence(dets, seqinfo, config=TrackerConfig(camera_model=model))
            write_mot(result_path, run.result)
            sequences.append(EvalSequence(f"s{seed}", gt_path, result_path, seqinfo))
            if camera == "static" and model == "auto":
                assert run.fit.camera_motion is False
        scores[model] = evaluate(sequences).combined
    assert scores["auto"].hota >= scores["none"].hota - 0.2
    assert scores["auto"].idf1 >= scores["none"].idf1 - 0.5

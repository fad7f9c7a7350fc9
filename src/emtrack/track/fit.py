"""Fitting the tracker to each input, without labels: scores, noise and camera motion.

Whole-sequence tracking (:func:`~emtrack.track.track_sequence`, ``emtrack track``) first links
the input's detections with a score-agnostic pass (:func:`first_pass_track_ids`: every
detection counts, IoU association, no camera model), then fits to that pass, by likelihood:

* the score calibration, P(real object | score) (:mod:`emtrack.track.calibration`);
* the motion model's noise constants per box coordinate, from the tracks that the calibration
  judges real (:mod:`emtrack.track.noise_fit`);
* whether to compensate camera motion, from the same tracks (:mod:`emtrack.track.camera_fit`);

and then tracks with what was fitted (:class:`SequenceFit`). Every decision is reported by
:meth:`SequenceFit.describe` (``emtrack track -v``) and is the same from run to run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emtrack.io import MotTable, SeqInfo
from emtrack.track.calibration import (
    ScoreCalibration,
    constant_calibration,
    fit_score_calibration,
)
from emtrack.track.camera_fit import camera_log_likelihoods
from emtrack.track.config import TrackerConfig
from emtrack.track.motion import MotionNoise
from emtrack.track.noise_fit import fit_noise, score_noise_scale
from emtrack.track.tracker import Tracker
from emtrack.track.weights import AssociationWeights, model_noise

#: The first pass: IoU association (independent of the model), every detection confident
#: (it is fed scores of 1), no camera model, the same noise for every detection.
FIRST_PASS_CONFIG = TrackerConfig(
    association="iou", measurement_noise="constant", min_track_score_rank=0.0
)


@dataclass(frozen=True)
class SequenceFit:
    """What was fitted to one input.

    Attributes:
        calibration: the score calibration the thresholds compare (None: scores as given or
            ranked, by ``TrackerConfig.score_normalisation``).
        noise: the motion model's noise constants (None: the model's own).
        camera_motion: whether the camera-motion estimate is applied (None: as
            ``TrackerConfig.camera_model`` says without fitting).
        camera_log_likelihoods: ``(without, with)`` compensation, when it was chosen.
    """

    calibration: ScoreCalibration | None = None
    noise: MotionNoise | None = None
    camera_motion: bool | None = None
    camera_log_likelihoods: tuple[float, float] | None = None

    def describe(self) -> list[str]:
        """One line per fitted setting (for ``emtrack track -v``)."""
        lines = []
        if self.calibration is not None:
            lines.append(self.calibration.describe())
        if self.noise is not None:
            lines.append(self.noise.describe())
        if self.camera_log_likelihoods is not None:
            without, with_shift = self.camera_log_likelihoods
            verdict = "on" if self.camera_motion else "off"
            lines.append(
                f"camera-motion compensation {verdict} (log-likelihood of the tracks: "
                f"{with_shift:.1f} with, {without:.1f} without)"
            )
        return lines


def frame_offsets(index: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(order, starts)`` of a table's :meth:`~emtrack.io.MotTable.frame_index`: row ``r``
    of the array given to the tracker at frame ``f`` is the table's row
    ``order[starts[f - 1] + r]``."""
    order = np.concatenate([np.zeros(0, np.int64), *index])
    starts = np.cumsum([0] + [len(rows) for rows in index])
    return order, starts


def first_pass_track_ids(
    detections: MotTable,
    seqinfo: SeqInfo,
    weights: AssociationWeights,
    tracked_frames: np.ndarray | None = None,
    seconds: np.ndarray | None = None,
) -> np.ndarray:
    """The track of every detection in a score-agnostic pass (:data:`FIRST_PASS_CONFIG`).

    Args:
        detections: the input; seqinfo: its frame rate and length; weights: the model.
        tracked_frames: ``(K,)`` the frames to track (None: ``1 … seq_length``);
            ``seconds``: their times (None: at the frame rate), as in
            :func:`~emtrack.track.track_sequence`.

    Returns:
        ``(N,)`` int64, one id per track; a detection on no track gets an id of its own.
    """
    if tracked_frames is None:
        tracked_frames = np.arange(1, seqinfo.seq_length + 1)
    tracker = Tracker(seqinfo.frame_rate, weights, FIRST_PASS_CONFIG, keep_history=True)
    index = detections.frame_index(seqinfo.seq_length)
    updates = [index[frame - 1] for frame in tracked_frames.tolist()]
    dets = np.concatenate([detections.boxes_xyxy, np.ones((len(detections), 1))], 1)
    for k, rows in enumerate(updates):
        tracker.update(dets[rows], None if seconds is None else float(seconds[k]))
    # The history counts updates, and its rows are those of each update's array.
    order, starts = frame_offsets(updates)
    ids = np.full(len(detections), -1, np.int64)
    for history in tracker.history.values():
        ids[order[starts[history.frames - 1] + history.rows]] = history.track_id
    alone = ids < 0
    ids[alone] = -1 - np.arange(np.count_nonzero(alone))
    return ids


def fit_sequence(
    detections: MotTable,
    seqinfo: SeqInfo,
    weights: AssociationWeights,
    config: TrackerConfig,
    tracked_frames: np.ndarray | None = None,
    seconds: np.ndarray | None = None,
) -> SequenceFit:
    """Fit the settings ``config`` leaves to the data (see the module docstring).

    ``tracked_frames`` and ``seconds``: the frames the first pass tracks and their times (as
    :func:`first_pass_track_ids` takes them); the fits work on frame numbers.

    With ``score_normalisation="auto"`` the score calibration is fitted, and with
    ``noise="fit"`` the noise constants; the fixed choices fit nothing.
    """
    fit_scores = config.score_normalisation == "auto"
    fit_noise_constants = config.noise == "fit"
    choose_camera = config.camera_model == "auto" and config.camera_motion_s > 0
    if not (fit_scores or fit_noise_constants or choose_camera) or len(detections) == 0:
        return SequenceFit(calibration=constant_calibration() if fit_scores else None)
    track_ids = first_pass_track_ids(detections, seqinfo, weights, tracked_frames, seconds)
    calibration = fit_score_calibration(detections.scores, track_ids)
    probabilities = calibration(detections.scores)
    scale = (
        score_noise_scale(probabilities)
        if config.measurement_noise == "score"
        else np.ones(len(detections))
    )
    # The tracks the fits learn from: those whose detections are more likely real than not.
    real = [
        rows
        for rows in _track_rows(track_ids, detections.frames)
        if len(rows) >= 2 and probabilities[rows].mean() >= 0.5
    ]
    noise = None
    if fit_noise_constants:
        noise = fit_noise(
            [(detections.frames[rows], detections.boxes_xyxy[rows], scale[rows]) for rows in real],
            seqinfo.frame_rate,
            model_noise(weights),
        )
    camera = likelihoods = None
    if choose_camera and real:
        rows = np.concatenate(real)
        likelihoods = camera_log_likelihoods(
            detections.frames[rows],
            track_ids[rows],
            detections.boxes_xyxy[rows],
            scale[rows],
            seqinfo.frame_rate,
            noise or model_noise(weights),
            config.camera_motion_s,
        )
        camera = likelihoods[1] > likelihoods[0]
    return SequenceFit(
        calibration=calibration if fit_scores else None,
        noise=noise,
        camera_motion=camera,
        camera_log_likelihoods=likelihoods,
    )


def _track_rows(track_ids: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """The detection rows of each track, in frame order, tracks by id."""
    order = np.lexsort((frames, track_ids))
    ids = track_ids[order]
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return np.split(order, cuts)

"""Fitting the tracker to each input, without labels: scores, noise and camera motion.

Whole-sequence tracking (:func:`~emtrack.track.track_sequence`, ``emtrack track``) first links
the input's detections with a score-agnostic pass (:func:`first_pass_track_ids`: every
detection counts, IoU association, no camera model), then fits to that pass, by likelihood:

* the score calibration, P(real object | score) (:mod:`emtrack.track.calibration`);

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
from emtrack.track.config import TrackerConfig
from emtrack.track.tracker import Tracker
from emtrack.track.weights import AssociationWeights

#: The first pass: IoU association (independent of the model), every detection confident
#: (it is fed scores of 1), no camera model, the same noise for every detection.
FIRST_PASS_CONFIG = TrackerConfig(
    association="iou", camera_motion_s=0.0, measurement_noise="constant", min_track_score_rank=0.0
)


@dataclass(frozen=True)
class SequenceFit:
    """What was fitted to one input.

    Attributes:
        calibration: the score calibration the thresholds compare (None: scores as given or
            ranked, by ``TrackerConfig.score_normalisation``).
    """

    calibration: ScoreCalibration | None = None

    def describe(self) -> list[str]:
        """One line per fitted setting (for ``emtrack track -v``)."""
        lines = []
        if self.calibration is not None:
            lines.append(self.calibration.describe())
        return lines


def frame_offsets(index: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(order, starts)`` of a table's :meth:`~emtrack.io.MotTable.frame_index`: row ``r``
    of the array given to the tracker at frame ``f`` is the table's row
    ``order[starts[f - 1] + r]``."""
    order = np.concatenate([np.zeros(0, np.int64), *index])
    starts = np.cumsum([0] + [len(rows) for rows in index])
    return order, starts


def first_pass_track_ids(
    detections: MotTable, seqinfo: SeqInfo, weights: AssociationWeights
) -> np.ndarray:
    """The track of every detection in a score-agnostic pass (:data:`FIRST_PASS_CONFIG`).

    Returns:
        ``(N,)`` int64, one id per track; a detection on no track gets an id of its own.
    """
    num_frames = seqinfo.seq_length
    tracker = Tracker(seqinfo.frame_rate, weights, FIRST_PASS_CONFIG, keep_history=True)
    index = detections.frame_index(num_frames)
    dets = np.concatenate([detections.boxes_xyxy, np.ones((len(detections), 1))], 1)
    for frame in range(1, num_frames + 1):
        tracker.update(dets[index[frame - 1]])
    order, starts = frame_offsets(index)
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
) -> SequenceFit:
    """Fit the settings ``config`` leaves to the data (see the module docstring).

    With ``score_normalisation="auto"`` the score calibration is fitted; ``rank`` and ``none``
    keep their fixed rules and fit nothing.
    """
    if config.score_normalisation != "auto":
        return SequenceFit()
    if len(detections) == 0:
        return SequenceFit(calibration=constant_calibration())
    track_ids = first_pass_track_ids(detections, seqinfo, weights)
    return SequenceFit(calibration=fit_score_calibration(detections.scores, track_ids))

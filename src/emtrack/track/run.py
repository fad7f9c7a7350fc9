"""Tracking a whole sequence (online, or online then the offline pass)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo
from emtrack.track.offline import offline_tracks
from emtrack.track.tracker import Tracker, TrackerConfig
from emtrack.track.weights import AssociationWeights


@dataclass(frozen=True)
class TrackRun:
    """Result of :func:`track_sequence`.

    Attributes:
        result: reported boxes with track ids >= 1 (score column: the detection's score,
            0 for boxes filled in by the offline pass).
        update_seconds: time spent in ``Tracker.update`` calls only.
        num_frames: frames tracked.
    """

    result: MotTable
    update_seconds: float
    num_frames: int


def track_sequence(
    detections: MotTable,
    seqinfo: SeqInfo,
    model: str | Path | AssociationWeights | None = None,
    config: TrackerConfig | None = None,
    offline: bool = False,
) -> TrackRun:
    """Track every frame ``1 … seqinfo.seq_length``.

    Detections beyond ``seqLength`` are an error (the file and the sequence disagree).
    """
    num_frames = seqinfo.seq_length
    if len(detections) and int(detections.frames.max()) > num_frames:
        row = int(np.argmax(detections.frames))
        raise EmtrackInputError(
            f"detections in frame {int(detections.frames[row])} but seqLength is {num_frames}"
            + (f" ({seqinfo.path})" if seqinfo.path else ""),
            detections.path,
        )
    config = config or TrackerConfig()
    tracker = Tracker(seqinfo.frame_rate, model, config, keep_history=offline)
    index = detections.frame_index(num_frames)
    dets_all = np.concatenate([detections.boxes_xyxy, detections.scores[:, None]], 1)
    frames, ids, boxes, scores = [], [], [], []
    elapsed = 0.0
    for f in range(1, num_frames + 1):
        dets = dets_all[index[f - 1]]
        start = time.perf_counter()
        out = tracker.update(dets)
        elapsed += time.perf_counter() - start
        if len(out):
            frames.append(np.full(len(out), f))
            ids.append(out[:, 4].astype(np.int64))
            boxes.append(out[:, :4])
            scores.append(dets[tracker.last_rows, 4])
    if offline:
        result = offline_tracks(tracker.history, tracker.weights, tracker.frame_rate, config)
    elif frames:
        result = MotTable.from_arrays(
            np.concatenate(frames),
            np.concatenate(boxes),
            np.concatenate(scores),
            np.concatenate(ids),
        )
    else:
        result = MotTable.from_arrays(np.zeros(0, np.int64), np.zeros((0, 4)))
    return TrackRun(result, elapsed, num_frames)

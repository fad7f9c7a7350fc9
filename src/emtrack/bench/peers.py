"""Run peer trackers on a detection table, frame by frame.

Two sources of peers:

* :data:`PEERS`: roboflow's ``trackers`` package (SORT, ByteTrack, OC-SORT, BoT-SORT and
  C-BIoU). Each peer is built with its own defaults; only ``frame_rate`` is set, to the
  sequence's, so that lost-track buffers (given in 30 fps frames) scale the way the package
  intends. BoT-SORT runs without camera-motion compensation (``enable_cmc=False``): there are
  no images, and with ``frame=None`` the package would skip it anyway; ``CBIoUTracker`` has no
  camera-motion step. Needs the optional dependency ``trackers`` (``pip install
  emtrack[bench]``).
* :data:`~emtrack.bench.boxmot_peers.BOXMOT_PEERS`: the motion-only trackers of the optional
  ``boxmot`` package (AGPL-3.0, a benchmark peer only, never a dependency of emtrack); see
  :mod:`emtrack.bench.boxmot_peers`.

:func:`run_peer` runs either kind and returns the same :class:`PeerRun`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo

__all__ = [
    "PEERS",
    "PeerRun",
    "check_sequence_length",
    "make_peer",
    "run_peer",
    "timed_peer_run",
    "tracked_table",
]

PEERS: tuple[str, ...] = ("sort", "bytetrack", "ocsort", "botsort", "cbiou")
"""The ``trackers`` package's peers; :func:`run_peer` also accepts
:data:`~emtrack.bench.boxmot_peers.BOXMOT_PEERS`."""

_PEER_CLASSES: dict[str, str] = {
    "sort": "SORTTracker",
    "bytetrack": "ByteTrackTracker",
    "ocsort": "OCSORTTracker",
    "botsort": "BoTSORTTracker",
    "cbiou": "CBIoUTracker",
}
_PEER_OVERRIDES: dict[str, dict[str, Any]] = {"botsort": {"enable_cmc": False}}


@dataclass(frozen=True)
class PeerRun:
    """The output of one peer on one sequence.

    Attributes:
        name: The peer, one of :data:`PEERS` or
            :data:`~emtrack.bench.boxmot_peers.BOXMOT_PEERS`.
        result: Reported boxes: frame, track id (>= 1), ``boxes_xyxy`` and the detection
            score. Rows the peer did not assign an id (tracker_id -1, unconfirmed) are dropped.
        update_seconds: Wall time (``time.perf_counter``) summed over the per-frame
            ``tracker.update`` calls only: no file reading or table building.
        num_frames: Frames fed to the tracker (the sequence length).
    """

    name: str
    result: MotTable
    update_seconds: float
    num_frames: int

    @property
    def fps(self) -> float:
        """Frames per second of ``update`` time; ``inf`` when no time was measured."""
        return self.num_frames / self.update_seconds if self.update_seconds > 0 else float("inf")


def make_peer(name: str, frame_rate: float) -> Any:
    """Build a peer tracker with its own defaults and the sequence frame rate.

    Args:
        name: One of :data:`PEERS`.
        frame_rate: Frames per second of the sequence (> 0).

    Returns:
        A fresh ``trackers.BaseTracker`` instance.

    Raises:
        EmtrackInputError: Unknown ``name`` or a non-positive frame rate.
        ImportError: The ``trackers`` package is not installed.
    """
    if name not in _PEER_CLASSES:
        raise EmtrackInputError(f"unknown peer {name!r}; expected one of {PEERS}")
    if not np.isfinite(frame_rate) or frame_rate <= 0:
        raise EmtrackInputError(f"frame rate must be a positive number, got {frame_rate}")
    import trackers

    tracker_class = getattr(trackers, _PEER_CLASSES[name])
    return tracker_class(frame_rate=float(frame_rate), **_PEER_OVERRIDES.get(name, {}))


def check_sequence_length(detections: MotTable, seqinfo: SeqInfo) -> int:
    """The number of frames to feed a peer, ``seqinfo.seq_length``.

    Raises:
        EmtrackInputError: A detection lies past the sequence's last frame.
    """
    num_frames = int(seqinfo.seq_length)
    if len(detections) and int(detections.frames.max()) > num_frames:
        raise EmtrackInputError(
            f"detections reach frame {int(detections.frames.max())} but the sequence "
            f"{seqinfo.name!r} has {num_frames} frames",
            path=detections.path,
        )
    return num_frames


def run_peer(name: str, detections: MotTable, seqinfo: SeqInfo) -> PeerRun:
    """Track a sequence's detections with one peer, frame by frame.

    Frames ``1..seqinfo.seq_length`` are fed in order; a frame with no detection gets
    ``sv.Detections.empty()``, so tracks still age through it. Detections are passed as
    ``xyxy`` boxes, their scores as ``confidence`` (unchanged: the peers' thresholds assume
    scores in [0, 1]) and class 0. A ``boxmot-*`` name runs
    :func:`emtrack.bench.boxmot_peers.run_boxmot_peer` (the same contract).

    Args:
        name: One of :data:`PEERS` or :data:`~emtrack.bench.boxmot_peers.BOXMOT_PEERS`.
        detections: The detection table (ids are ignored).
        seqinfo: Gives ``frame_rate`` and ``seq_length``.

    Returns:
        The reported boxes, with ids starting at 1 (the package numbers tracks from 0), and
        the time spent in ``update``.

    Raises:
        EmtrackInputError: Unknown peer, bad frame rate, or detections past ``seq_length``.
        ImportError: The peer's package (``trackers`` or ``boxmot``) is not importable.
    """
    from emtrack.bench import boxmot_peers  # after this module: it imports PeerRun from here

    if name in boxmot_peers.BOXMOT_PEERS:
        return boxmot_peers.run_boxmot_peer(name, detections, seqinfo)

    import supervision as sv

    tracker = make_peer(name, seqinfo.frame_rate)

    def frame_input(rows: np.ndarray) -> Any:
        if not len(rows):
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=detections.boxes_xyxy[rows],
            confidence=detections.scores[rows],
            class_id=np.zeros(len(rows), dtype=int),
        )

    def frame_output(tracked: Any) -> FrameOutput | None:
        if len(tracked) == 0 or tracked.tracker_id is None:
            return None
        confidence = np.ones(len(tracked)) if tracked.confidence is None else tracked.confidence
        return (
            np.asarray(tracked.tracker_id, dtype=np.int64),
            np.asarray(tracked.xyxy, dtype=np.float64),
            np.asarray(confidence, dtype=np.float64),
        )

    return timed_peer_run(name, detections, seqinfo, frame_input, tracker.update, frame_output)


#: What a peer reported for one frame: track ids ``(n,)`` (negative: not a track), boxes
#: ``(n, 4)`` xyxy and scores ``(n,)``.
FrameOutput = tuple[np.ndarray, np.ndarray, np.ndarray]


def timed_peer_run(
    name: str,
    detections: MotTable,
    seqinfo: SeqInfo,
    frame_input: Callable[[np.ndarray], Any],
    update: Callable[[Any], Any],
    frame_output: Callable[[Any], FrameOutput | None],
) -> PeerRun:
    """Drive a peer over every frame of a sequence, timing only its ``update`` calls.

    Args:
        name: The peer's name (for the :class:`PeerRun`).
        detections: The sequence's detections; seqinfo: its length and frame rate.
        frame_input: builds the peer's input from the detection rows ``(n,)`` of a frame.
        update: the peer's per-frame call (timed).
        frame_output: what ``update`` returned as a :data:`FrameOutput`, or None when it
            reported nothing; rows with negative ids are dropped, the others get ids + 1.

    Raises:
        EmtrackInputError: detections past ``seq_length``.
    """
    num_frames = check_sequence_length(detections, seqinfo)
    frames: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    update_seconds = 0.0
    for frame, rows in enumerate(detections.frame_index(num_frames), start=1):
        peer_input = frame_input(rows)
        start = time.perf_counter()
        tracked = update(peer_input)
        update_seconds += time.perf_counter() - start

        output = frame_output(tracked)
        if output is None:
            continue
        tracker_ids, tracked_boxes, tracked_scores = output
        keep = tracker_ids >= 0
        if not np.any(keep):
            continue
        frames.append(np.full(int(keep.sum()), frame, dtype=np.int64))
        ids.append(tracker_ids[keep] + 1)
        boxes.append(tracked_boxes[keep])
        scores.append(tracked_scores[keep])
    result = tracked_table(frames, ids, boxes, scores)
    return PeerRun(name=name, result=result, update_seconds=update_seconds, num_frames=num_frames)


def tracked_table(
    frames: list[np.ndarray],
    ids: list[np.ndarray],
    boxes: list[np.ndarray],
    scores: list[np.ndarray],
) -> MotTable:
    """One table of a peer's per-frame outputs: ``frames``, ``ids`` and ``scores`` ``(n_k,)``
    and ``boxes`` ``(n_k, 4)`` xyxy per reported frame (an empty table when there are none)."""
    if frames:
        return MotTable.from_arrays(
            frames=np.concatenate(frames),
            boxes_xyxy=np.concatenate(boxes),
            scores=np.concatenate(scores),
            ids=np.concatenate(ids),
        )
    return MotTable.from_arrays(
        frames=np.zeros(0, dtype=np.int64),
        boxes_xyxy=np.zeros((0, 4)),
        scores=np.zeros(0),
        ids=np.zeros(0, dtype=np.int64),
    )

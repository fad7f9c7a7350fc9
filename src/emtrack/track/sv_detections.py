"""``supervision.Detections`` in and out of a tracker that takes ``(N, 5|6)`` arrays.

Contract (the same as ``trackers``' SORT): the output is a new ``Detections`` with **every
input row, in input order**, and everything the input carried (``class_id``, ``mask``,
``data``, ``metadata``) kept; ``tracker_id`` is the track id (>= 1) of the detections assigned
to a reported track and -1 for the others (tentative tracks, false positives, low scores, rows
of zero width or height). Keep the tracked rows with ``dets[dets.tracker_id >= 0]``. Boxes are
``xyxy``; a missing ``confidence`` counts as 1.0 for every row, as in ``trackers``.
``class_id`` is the class column of :meth:`emtrack.Tracker.update`: each class is tracked on
its own (track ids unique across classes), unless the tracker is ``class_agnostic``; without
``class_id`` all rows are one class.

This module knows the tracker only by the :class:`FrameTracker` protocol, so
:mod:`emtrack.track.tracker` imports it (``Tracker.update`` accepts ``Detections``) and
:mod:`emtrack.track.interop` builds on both: the imports point one way. supervision is
optional (``pip install supervision``); nothing here imports it until a ``Detections`` is built.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from emtrack.errors import EmtrackInputError

__all__ = ["FrameTracker", "is_supervision_detections", "update_detections"]


class FrameTracker(Protocol):
    """What :func:`update_detections` needs of a tracker (:class:`emtrack.Tracker` is one)."""

    #: Input rows of the detections the last :meth:`update` reported, ``(M,)``.
    last_rows: np.ndarray

    def update(
        self, dets: np.ndarray, timestamp: float | None = None, *, strict: bool | None = None
    ) -> np.ndarray:
        """Track one frame of ``(N, 5|6)`` rows; ``(M, 5|6)`` rows with the track id in
        column 4."""
        ...


def is_supervision_detections(value: object) -> bool:
    """Whether ``value`` is a ``supervision.Detections`` (checked without importing it)."""
    cls = type(value)
    return cls.__name__ == "Detections" and cls.__module__.split(".")[0] == "supervision"


def update_detections(
    tracker: FrameTracker,
    detections: Any,
    timestamp: float | None = None,
    *,
    strict: bool | None = None,
) -> Any:
    """Track one frame given as ``supervision.Detections`` (see the module docstring).

    Args:
        tracker: The tracker (its state advances by one frame).
        detections: ``sv.Detections`` with ``xyxy`` ``(N, 4)``, optional ``confidence``
            ``(N,)`` and optional ``class_id`` ``(N,)``.
        timestamp: The frame's time in seconds, as in :meth:`Tracker.update`.
        strict: As in :meth:`Tracker.update`.

    Returns:
        A new ``sv.Detections``: the input rows with ``tracker_id`` ``(N,)`` int set.

    Raises:
        EmtrackInputError: Boxes, confidences or class ids of the wrong shape, not finite,
            or with ``x2 < x1`` / ``y2 < y1`` (the row is named); a bad ``timestamp``.
    """
    xyxy = np.asarray(detections.xyxy, dtype=float)
    n = len(xyxy)
    if xyxy.size == 0:
        xyxy = xyxy.reshape(0, 4)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise EmtrackInputError(f"Detections.xyxy must have shape (N, 4), got {xyxy.shape}")
    if detections.confidence is None:
        confidence = np.ones(n)
    else:
        confidence = np.asarray(detections.confidence, dtype=float).reshape(-1)
        if confidence.shape != (n,):
            raise EmtrackInputError(
                f"Detections.confidence must have shape ({n},), got {confidence.shape}"
            )
    columns = [xyxy, confidence[:, None]]
    if detections.class_id is not None:
        class_id = np.asarray(detections.class_id).reshape(-1)
        if class_id.shape != (n,) or class_id.dtype.kind not in "iuf":
            raise EmtrackInputError(
                f"Detections.class_id must be ({n},) numbers, got shape {class_id.shape} "
                f"and dtype {class_id.dtype}"
            )
        columns.append(class_id[:, None].astype(float))
    tracked = tracker.update(np.concatenate(columns, 1), timestamp, strict=strict)
    tracker_id = np.full(n, -1, dtype=int)
    tracker_id[tracker.last_rows] = tracked[:, 4].astype(int)
    result = detections[np.arange(n)] if n else _empty_like(detections)
    result.tracker_id = tracker_id
    return result


def _empty_like(detections: Any) -> Any:
    import supervision as sv

    result = sv.Detections.empty()
    result.metadata = dict(getattr(detections, "metadata", {}) or {})
    return result

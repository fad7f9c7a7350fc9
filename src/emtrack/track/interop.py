"""emtrack in the supervision / ``trackers`` ecosystem.

* :meth:`emtrack.Tracker.update` also takes a ``supervision.Detections`` and then returns one
  (see :func:`update_detections`).
* :class:`EmtrackTracker` has the ``update(detections) -> sv.Detections`` / ``reset()`` shape of
  the ``trackers`` package's trackers (``SORTTracker``, ``ByteTrackTracker``, ...), so emtrack
  drops in where they are used.

Contract for ``supervision.Detections`` (the same as ``trackers``' SORT): the output is a new
``Detections`` with **every input row, in input order**, and everything the input carried
(``class_id``, ``mask``, ``data``, ``metadata``) kept; ``tracker_id`` is the track id (>= 1) of
the detections assigned to a reported track and -1 for the others (tentative tracks, false
positives, low scores, rows of zero width or height). Keep the tracked rows with
``dets[dets.tracker_id >= 0]``. Boxes are ``xyxy``; a missing ``confidence`` counts as 1.0 for
every row, as in ``trackers``. ``class_id`` is the class column of :meth:`Tracker.update`: each
class is tracked on its own (track ids unique across classes), unless the tracker is
``class_agnostic``; without ``class_id`` all rows are one class.

supervision is optional (``pip install supervision``); nothing here imports it until a
``Detections`` is built.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emtrack.errors import EmtrackInputError

if TYPE_CHECKING:
    from emtrack.track.config import TrackerConfig
    from emtrack.track.tracker import Tracker
    from emtrack.track.weights import AssociationWeights

__all__ = ["EmtrackTracker", "is_supervision_detections", "update_detections"]


def is_supervision_detections(value: object) -> bool:
    """Whether ``value`` is a ``supervision.Detections`` (checked without importing it)."""
    cls = type(value)
    return cls.__name__ == "Detections" and cls.__module__.split(".")[0] == "supervision"


def update_detections(
    tracker: Tracker,
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


class EmtrackTracker:
    """emtrack with the interface of the ``trackers`` package (``SORTTracker`` & co.).

    Args:
        frame_rate: Frames per second of the video (motion and lost-track timing use it).
        model: Weights (``.npz``, training checkpoint ``.pt``, loaded weights) or None for the
            shipped model.
        config: Tracker settings (default ``TrackerConfig()``; its scores thresholds assume
            confidences in 0-1).
        class_agnostic: Track all ``class_id`` values together (default: each on its own).

    Example:
        >>> import numpy as np, supervision as sv  # doctest: +SKIP
        >>> tracker = EmtrackTracker(frame_rate=30)  # doctest: +SKIP
        >>> dets = sv.Detections(xyxy=np.array([[10., 10, 50, 110]]), confidence=np.array([.9]))
        >>> tracker.update(dets).tracker_id  # doctest: +SKIP
        array([1])
    """

    #: Name, like the class attribute of the ``trackers`` package's trackers.
    tracker_id = "emtrack"

    def __init__(
        self,
        frame_rate: float = 30.0,
        model: str | Path | AssociationWeights | None = None,
        config: TrackerConfig | None = None,
        class_agnostic: bool = False,
    ) -> None:
        from emtrack.track.tracker import Tracker

        self.tracker = Tracker(
            frame_rate=frame_rate, model=model, config=config, class_agnostic=class_agnostic
        )
        self._warned: set[str] = set()

    def update(
        self, detections: Any, frame: np.ndarray | None = None, timestamp: float | None = None
    ) -> Any:
        """Track one frame.

        Args:
            detections: ``sv.Detections`` (``xyxy``, optional ``confidence``).
            frame: The image; ignored (emtrack uses no appearance), with a warning once.
            timestamp: The frame's time in seconds (see :meth:`Tracker.update`); None: one
                frame after the previous update.

        Returns:
            ``sv.Detections``: every input row, ``tracker_id`` set (-1 = not tracked).
        """
        if not is_supervision_detections(detections):
            raise EmtrackInputError(
                "EmtrackTracker.update expects supervision.Detections, got "
                f"{type(detections).__name__}; use emtrack.Tracker for (N, 5) arrays"
            )
        if frame is not None:
            self._warn_once("frame", "the frame is ignored (emtrack uses boxes only)")
        return update_detections(self.tracker, detections, timestamp)

    def reset(self) -> None:
        """Forget all tracks; ids start again at 1 (call it between videos)."""
        self.tracker.reset()
        self._warned.clear()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"EmtrackTracker: {message}", UserWarning, stacklevel=3)

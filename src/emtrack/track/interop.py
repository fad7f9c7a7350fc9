"""emtrack in the supervision / ``trackers`` ecosystem.

* :meth:`emtrack.Tracker.update` also takes a ``supervision.Detections`` and then returns one
  (see :func:`~emtrack.track.sv_detections.update_detections`, which also states the contract
  for ``Detections``: every input row, in input order, ``tracker_id`` -1 for the untracked).
* :class:`EmtrackTracker` has the ``update(detections) -> sv.Detections`` / ``reset()`` shape of
  the ``trackers`` package's trackers (``SORTTracker``, ``ByteTrackTracker``, ...), so emtrack
  drops in where they are used.

supervision is optional (``pip install supervision``); nothing here imports it until a
``Detections`` is built.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.track.config import TrackerConfig
from emtrack.track.sv_detections import is_supervision_detections, update_detections
from emtrack.track.tracker import Tracker
from emtrack.track.weights import AssociationWeights

__all__ = ["EmtrackTracker", "is_supervision_detections", "update_detections"]


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

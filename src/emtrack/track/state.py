"""The live tracks of a :class:`~emtrack.track.Tracker`: one row per track in every array."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: Track status (the death rule multiplies by it: a tentative track may miss no frame).
TENTATIVE, CONFIRMED = 0, 1


@dataclass
class TrackState:
    """Parallel arrays over the live tracks, kept in step by :meth:`keep` and :meth:`extend`.

    Attributes:
        mean: ``(K, 2, 4)`` Kalman means, position and velocity of
            ``[x_centre, y_bottom, width, height]`` (see :mod:`emtrack.track.motion`).
        cov: ``(K, 3, 4)`` their covariances ``[var_pos, cov_pos_vel, var_vel]``.
        ids: ``(K,)`` int64 track ids.
        status: ``(K,)`` int64 :data:`TENTATIVE` or :data:`CONFIRMED`.
        born: ``(K,)`` int64 update count of the track's first detection (a tentative track
            dies at its first miss, so it has been matched in every update since).
        lost: ``(K,)`` seconds since the track's last match (as of the last update).
    """

    mean: np.ndarray
    cov: np.ndarray
    ids: np.ndarray
    status: np.ndarray
    born: np.ndarray
    lost: np.ndarray

    @classmethod
    def empty(cls) -> TrackState:
        """No tracks."""
        return cls(
            np.zeros((0, 2, 4)),
            np.zeros((0, 3, 4)),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, mask: np.ndarray) -> None:
        """Keep the tracks where ``mask`` ``(K,)`` is True, in order."""
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name)[mask])

    def extend(self, new: TrackState) -> None:
        """Append the tracks of ``new`` after the live ones."""
        for item in fields(self):
            name = item.name
            setattr(self, name, np.concatenate([getattr(self, name), getattr(new, name)]))

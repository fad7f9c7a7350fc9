"""The online tracker: Kalman prediction + the learned association network + Hungarian."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from emtrack.errors import EmtrackInputError
from emtrack.track import motion
from emtrack.track.weights import AssociationWeights, load_model

_TENTATIVE, _CONFIRMED = 0, 1


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings (scores are compared as given: say so if your detector's are not 0–1).

    Attributes:
        high_score: detections at or above it take part in the first association stage and
            may start tracks.
        low_score: detections in ``[low_score, high_score)`` are only used to extend existing
            confirmed tracks (second stage, as ByteTrack does); below it they are ignored.
        new_track_score: minimum score to start a track.
        min_hits: consecutive matched frames before a track is reported.
        max_lost_s: seconds a lost track is kept for recovery.
        match_margin: a pair is matched when its logit beats the learned dustbin logit by this.
        low_match_margin: the same for the second (low-score) stage.
        max_gap_fill: offline mode: fill gaps of up to this many frames (interpolated boxes).
        relink_max_s: offline mode: re-link fragments separated by up to this many seconds.
        relink_margin: offline mode: logit margin over the dustbin needed to re-link.
        min_track_hits: offline mode: drop tracks with fewer detections than this.
    """

    high_score: float = 0.6
    low_score: float = 0.1
    new_track_score: float = 0.75
    min_hits: int = 2
    max_lost_s: float = 1.5
    match_margin: float = 5.0
    low_match_margin: float = 10.0
    max_gap_fill: int = 20
    relink_max_s: float = 3.0
    relink_margin: float = 5.0
    min_track_hits: int = 3

    def __post_init__(self) -> None:
        for name in (
            "high_score",
            "low_score",
            "new_track_score",
            "max_lost_s",
            "match_margin",
            "low_match_margin",
            "relink_max_s",
            "relink_margin",
        ):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"TrackerConfig.{name} must be finite")
        if self.low_score > self.high_score:
            raise ValueError("TrackerConfig.low_score must be <= high_score")
        if self.min_hits < 1 or self.min_track_hits < 1:
            raise ValueError("TrackerConfig.min_hits and min_track_hits must be >= 1")
        if self.max_lost_s < 0 or self.max_gap_fill < 0 or self.relink_max_s < 0:
            raise ValueError("TrackerConfig durations must be >= 0")


@dataclass
class TrackHistory:
    """Everything a track was matched to (kept for the offline pass)."""

    track_id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    confirmed: bool = False


class Tracker:
    """Online multi-object tracker driven by the learned association network.

    Args:
        frame_rate: frames per second of the stream (motion and lost-track timing use it).
        model: weights (``.npz`` path, training checkpoint ``.pt``, loaded weights) or None
            for the shipped default model.
        config: tracker settings.
        keep_history: record every track's matches (needed by the offline pass).

    Example:
        >>> import numpy as np
        >>> tracker = Tracker(frame_rate=30)
        >>> out = tracker.update(np.array([[10, 10, 50, 110, 0.9]]))
        >>> out.shape
        (1, 5)
    """

    def __init__(
        self,
        frame_rate: float = 30.0,
        model: str | Path | AssociationWeights | None = None,
        config: TrackerConfig | None = None,
        keep_history: bool = False,
    ) -> None:
        if not (
            isinstance(frame_rate, (int, float)) and math.isfinite(frame_rate) and frame_rate > 0
        ):
            raise EmtrackInputError(f"frame_rate must be a positive number, got {frame_rate!r}")
        self.frame_rate = float(frame_rate)
        self.weights = load_model(model)
        self.config = config or TrackerConfig()
        self.keep_history = keep_history
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids start again at 1."""
        self.frame_count = 0
        self.last_rows = np.zeros(0, np.int64)  # input rows of the last update's output
        self._next_id = 1
        self._mean = np.zeros((0, 2, 4))
        self._cov = np.zeros((0, 2, 2))
        self._ids = np.zeros(0, np.int64)
        self._status = np.zeros(0, np.int8)
        self._hits = np.zeros(0, np.int64)  # consecutive matched frames
        self._lost = np.zeros(0, np.int64)  # frames since last match
        self.history: dict[int, TrackHistory] = {}

    @property
    def num_tracks(self) -> int:
        return len(self._ids)

    def _validate(self, dets: np.ndarray) -> np.ndarray:
        if not isinstance(dets, np.ndarray):
            try:
                dets = np.asarray(dets, dtype=float)
            except (TypeError, ValueError) as exc:
                raise EmtrackInputError(f"dets must be an (N, 5) numeric array ({exc})") from exc
        if dets.size == 0:
            return np.zeros((0, 5))
        if dets.ndim != 2 or dets.shape[1] != 5:
            raise EmtrackInputError(
                f"dets must have shape (N, 5) [x1, y1, x2, y2, score], got {dets.shape}"
            )
        if not np.issubdtype(dets.dtype, np.number) or np.issubdtype(
            dets.dtype, np.complexfloating
        ):
            raise EmtrackInputError(f"dets must be a real numeric array, got dtype {dets.dtype}")
        dets = dets.astype(float, copy=False)
        if not np.isfinite(dets).all():
            row = int(np.flatnonzero(~np.isfinite(dets).all(1))[0])
            raise EmtrackInputError(f"dets row {row} is not finite: {dets[row].tolist()}")
        bad = (dets[:, 2] <= dets[:, 0]) | (dets[:, 3] <= dets[:, 1])
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise EmtrackInputError(
                f"dets row {row} has x2 <= x1 or y2 <= y1: {dets[row, :4].tolist()}"
            )
        return dets

    def _match(
        self, track_rows: np.ndarray, det_boxes: np.ndarray, margin: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hungarian on (logit - dustbin) between tracks and detections; gains must be > margin."""
        if len(track_rows) == 0 or len(det_boxes) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pred_boxes = motion.state_to_boxes(self._mean[track_rows, 0])
        gap_s = (self._lost[track_rows] + 1)[None, :] / self.frame_rate
        gain = self.weights.logits(pred_boxes, det_boxes, gap_s) - self.weights.dustbin_logit
        gain -= margin
        det_idx, trk_idx = linear_sum_assignment(-np.maximum(gain, -1e3))
        ok = gain[det_idx, trk_idx] > 0
        return det_idx[ok], track_rows[trk_idx[ok]]

    def update(self, dets: np.ndarray) -> np.ndarray:
        """Track one frame.

        Args:
            dets: ``(N, 5)`` ``[x1, y1, x2, y2, score]``; ``N = 0`` is valid.

        Returns:
            ``(M, 5)`` ``[x1, y1, x2, y2, track_id]`` for the detections assigned to reported
            tracks, in the input order (the boxes are the detections').
        """
        dets = self._validate(dets)
        cfg = self.config
        self.frame_count += 1
        dt = 1.0 / self.frame_rate
        self._mean, self._cov = motion.predict(self._mean, self._cov, dt, self.weights.noise_q)

        scores = dets[:, 4]
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        all_tracks = np.arange(self.num_tracks)

        # Stage 1: every live track against confident detections.
        d1, t1 = self._match(all_tracks, dets[high, :4], cfg.match_margin)
        matched_det = high[d1]
        matched_trk = t1
        # Stage 2: confirmed tracks left over against low-score detections.
        left = np.setdiff1d(all_tracks, t1, assume_unique=True)
        left = left[self._status[left] == _CONFIRMED]
        d2, t2 = self._match(left, dets[low, :4], cfg.low_match_margin)
        matched_det = np.concatenate([matched_det, low[d2]])
        matched_trk = np.concatenate([matched_trk, t2])

        # Update matched tracks.
        if len(matched_trk):
            m, c = motion.update(
                self._mean[matched_trk],
                self._cov[matched_trk],
                dets[matched_det, :4],
                self.weights.noise_r,
            )
            self._mean[matched_trk], self._cov[matched_trk] = m, c
        unmatched = np.ones(self.num_tracks, bool)
        unmatched[matched_trk] = False
        self._lost[unmatched] += 1
        self._hits[unmatched] = 0
        self._lost[matched_trk] = 0
        self._hits[matched_trk] += 1
        promote = (self._hits >= cfg.min_hits) | (self.frame_count <= cfg.min_hits)
        promote &= ~unmatched
        self._status[promote] = _CONFIRMED

        # Births from unmatched confident detections.
        free = np.ones(len(dets), bool)
        free[matched_det] = False
        births = np.flatnonzero(free & (scores >= cfg.new_track_score))
        if len(births):
            m, c = motion.initial_state(
                dets[births, :4], self.weights.noise_r, self.weights.noise_p_vel
            )
            new_ids = np.arange(self._next_id, self._next_id + len(births))
            self._next_id += len(births)
            status = np.full(len(births), _TENTATIVE, np.int8)
            if self.frame_count <= cfg.min_hits or cfg.min_hits <= 1:
                status[:] = _CONFIRMED
            self._mean = np.concatenate([self._mean, m])
            self._cov = np.concatenate([self._cov, c])
            self._ids = np.concatenate([self._ids, new_ids])
            self._status = np.concatenate([self._status, status])
            self._hits = np.concatenate([self._hits, np.ones(len(births), np.int64)])
            self._lost = np.concatenate([self._lost, np.zeros(len(births), np.int64)])
            matched_det = np.concatenate([matched_det, births])
            matched_trk = np.concatenate([matched_trk, np.arange(len(m)) + len(unmatched)])

        if self.keep_history:
            self._record(dets, matched_det, matched_trk)

        # Output before pruning: confirmed tracks with a detection this frame, input order.
        reported = self._status[matched_trk] == _CONFIRMED
        rows, trks = matched_det[reported], matched_trk[reported]
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), 5))
        out[:, :4] = dets[rows[order], :4]
        out[:, 4] = self._ids[trks[order]]
        self.last_rows = rows[order]

        # Deaths: tentative tracks that missed, and tracks lost for too long.
        max_lost = max(1, round(cfg.max_lost_s * self.frame_rate))
        dead = ((self._status == _TENTATIVE) & (self._lost > 0)) | (self._lost > max_lost)
        if dead.any():
            keep = ~dead
            self._mean, self._cov = self._mean[keep], self._cov[keep]
            self._ids, self._status = self._ids[keep], self._status[keep]
            self._hits, self._lost = self._hits[keep], self._lost[keep]
        return out

    def _record(self, dets: np.ndarray, det_rows: np.ndarray, trk_rows: np.ndarray) -> None:
        for d, t in zip(det_rows.tolist(), trk_rows.tolist(), strict=True):
            track_id = int(self._ids[t])
            hist = self.history.get(track_id)
            if hist is None:
                hist = self.history[track_id] = TrackHistory(track_id)
            hist.frames.append(self.frame_count)
            hist.boxes.append(dets[d, :4].copy())
            hist.scores.append(float(dets[d, 4]))
            hist.confirmed = hist.confirmed or bool(self._status[t] == _CONFIRMED)

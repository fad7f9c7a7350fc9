"""The online tracker: Kalman prediction + the learned association network + Hungarian."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:
    from supervision import Detections

from emtrack.errors import EmtrackInputError, EmtrackInputWarning
from emtrack.model.features import GAP_CLAMP_S
from emtrack.track import camera, motion
from emtrack.track.config import (
    MIN_NOISE_SCORE,
    OUTPUT_BOXES,
    SCORE_NORMALISATIONS,
    TrackerConfig,
)
from emtrack.track.iou import IOU_SCORER
from emtrack.track.logit_grid import NO_ROWS, LogitGrid
from emtrack.track.state import CONFIRMED, TENTATIVE, TrackState
from emtrack.track.sv_detections import is_supervision_detections, update_detections
from emtrack.track.weights import AssociationWeights, load_model, model_noise

__all__ = ["OUTPUT_BOXES", "SCORE_NORMALISATIONS", "TrackHistory", "Tracker", "TrackerConfig"]


@dataclass
class TrackHistory:
    """Everything a track was matched to (kept for the offline pass).

    Attributes:
        track_id: The track's id.
        frames: ``(L,)`` int64 frame numbers of its detections, increasing.
        boxes: ``(L, 4)`` the detections' boxes (xyxy).
        scores: ``(L,)`` the detections' scores.
        confirmed: Whether the track was reported (confirmed) at one of these frames.
        rows: ``(L,)`` int64 the detections' rows in the arrays given to
            :meth:`Tracker.update` at their frames.
        class_id: The class of its detections (per-class tracking), None without classes.
    """

    track_id: int
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    confirmed: bool = False
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    class_id: float | None = None


class Tracker:
    """Online multi-object tracker driven by the learned association network.

    Args:
        frame_rate: frames per second of the stream: the time between two updates when
            ``update`` is given no ``timestamp``, and the unit of ``max_lost_s`` (rounded to
            whole frames).
        model: weights (``.npz`` path, training checkpoint ``.pt``, loaded weights) or None
            for the shipped default model.
        config: tracker settings.
        keep_history: record every track's matches (needed by the offline pass).
        noise: the motion model's noise constants per coordinate (e.g. fitted to the input
            by :func:`~emtrack.track.fit.fit_sequence`); None: the model's own, the same for
            every coordinate.
        camera_motion: whether to apply the camera-motion estimate (e.g. as chosen for the
            input by :func:`~emtrack.track.fit.fit_sequence`); None: unless
            ``config.camera_model`` is ``none`` (or ``camera_motion_s`` 0).
        output_boxes: ``filtered`` or ``detections`` (e.g. as chosen for the input by
            :func:`~emtrack.track.fit.fit_sequence`); None: ``config.output_boxes`` (``auto``:
            filtered until the online fit chooses).
        online_fit: fit to the stream what ``config`` leaves to fitting (the score
            calibration, noise constants, camera model) while tracking, from the frames seen
            so far (:class:`~emtrack.track.fit.OnlineFit`: after 1 s of stream, then at
            doubling intervals); False compares scores as given, with the ``noise`` and
            ``camera_motion`` given here (whole-sequence tracking fits once, beforehand).
        class_agnostic: with a class column (``(N, 6)`` rows), track all classes together;
            by default each class is tracked on its own (see :meth:`update`).
        strict: degenerate rows (zero width or height) are an error instead of being dropped
            with a warning.

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
        *,
        noise: motion.MotionNoise | None = None,
        camera_motion: bool | None = None,
        output_boxes: str | None = None,
        online_fit: bool = True,
        class_agnostic: bool = False,
        strict: bool = False,
    ) -> None:
        if not (
            isinstance(frame_rate, numbers.Real)
            and not isinstance(frame_rate, bool)
            and math.isfinite(frame_rate)
            and frame_rate > 0
        ):
            raise EmtrackInputError(f"frame_rate must be a positive number, got {frame_rate!r}")
        self.frame_rate = float(frame_rate)
        self.weights = load_model(model)
        self.noise = noise or model_noise(self.weights)
        self.config = config or TrackerConfig()
        if camera_motion is None:
            camera_motion = self.config.camera_model != "none"
        self._camera_motion = camera_motion and self.config.camera_motion_s > 0
        if output_boxes is None:
            output_boxes = self.config.output_boxes
        self._output_filtered = output_boxes != "detections"  # auto: filtered until chosen
        self.keep_history = keep_history
        self.online_fit = bool(online_fit)
        self.class_agnostic = bool(class_agnostic)
        self.strict = bool(strict)
        # Fixed per tracker: the gap feature's cap (the trained range, never beyond the
        # features' own clamp, so it is never clamped again: grid_logits(gap_in_range=True)),
        # the frames a confirmed track may miss before it dies (max_lost_s, at least 1), and
        # the largest gap the network is asked about (for the far-pair bound).
        self._gap_cap_s = min(self.weights.max_gap_s, GAP_CLAMP_S)
        self._max_lost = max(1, round(self.config.max_lost_s * self.frame_rate))
        self._gap_max_s = min((self._max_lost + 1) / self.frame_rate, self._gap_cap_s)
        # Lost-track timing is in seconds (updates may be any time apart): a confirmed track
        # dies once unmatched for longer than max_lost frames; the thousandth of a frame
        # absorbs the rounding of summed time steps.
        self._frame_s = 1.0 / self.frame_rate
        self._max_lost_s = (self._max_lost + 1e-3) / self.frame_rate
        self._dt = self._frame_s  # seconds since the previous update (set by update)
        # What scores the pairs, and the gain over its dustbin score each stage requires.
        cfg = self.config
        if cfg.association == "iou":
            self.scorer = IOU_SCORER
            self._margins = (cfg.iou_gate, cfg.low_iou_gate)
        else:
            self.scorer = self.weights
            self._margins = (cfg.match_margin, cfg.low_match_margin)
        # What the online fit may change, as given here (reset goes back to it).
        self._given = (self.noise, self._camera_motion, self._output_filtered)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and what the online fit learned; ids start again at 1."""
        self.noise, self._camera_motion, self._output_filtered = self._given
        self.frame_count = 0
        self.time: float | None = None  # seconds of the last update (None before the first)
        self.dropped_rows = 0  # degenerate input rows dropped so far (see strict)
        # Per-class tracking: one tracker per class value, all drawing ids from this one.
        self._class_trackers: dict[float, Tracker] = {}
        self._online = None
        if self.online_fit:
            from emtrack.track.fit import OnlineFit, asks_for_fitting  # (fit imports this)

            if asks_for_fitting(self.config):
                self._online = OnlineFit(self.frame_rate, self.weights, self.config)
        self.last_rows = np.zeros(0, np.int64)  # input rows of the last update's output
        self._next_id = 1
        self.tracks = TrackState.empty()  # the live tracks
        self._camera = (
            camera.CameraMotion(self.frame_rate, self.config.camera_motion_s)
            if self._camera_motion
            else None
        )
        self._score_noise = self.config.measurement_noise == "score"
        # keep_history: one (frame, ids, boxes, scores, confirmed, rows) entry per update with
        # matches.
        self._log: list[_LogEntry] = []
        self._history: dict[int, TrackHistory] = {}
        self._history_entries = 0  # len(self._log) when self._history was built

    @property
    def history(self) -> dict[int, TrackHistory]:
        """Every track's matches so far, by track id (empty unless ``keep_history``)."""
        if self._history_entries != len(self._log):
            self._history = _build_history(self._log)
            self._history_entries = len(self._log)
        if not self._class_trackers:
            return self._history
        merged = dict(self._history)
        for class_id, sub in self._class_trackers.items():
            for track_id, track in sub.history.items():
                merged[track_id] = replace(track, class_id=class_id)
        return dict(sorted(merged.items()))

    def forget_history(self, before: int) -> None:
        """Drop the matches of the updates before update number ``before`` (counting from 1,
        as :attr:`TrackHistory.frames` does) from :attr:`history`, e.g. to keep a long
        stream's history to a window; tracks left without matches leave it."""
        dropped = 0  # (the log is in update order)
        while dropped < len(self._log) and self._log[dropped][0] < before:
            dropped += 1
        if dropped:
            del self._log[:dropped]
            self._history_entries = -1  # rebuild
        for sub in self._class_trackers.values():
            sub.forget_history(before)

    @property
    def output_filtered(self) -> bool:
        """Whether :meth:`update` reports the filtered boxes (else the detections')."""
        return self._output_filtered

    @property
    def num_tracks(self) -> int:
        return len(self.tracks) + sum(sub.num_tracks for sub in self._class_trackers.values())

    def _measurement_noise(self, scores: np.ndarray) -> np.ndarray:
        """Position noise per squared height of detections with ``scores`` ``(K,)``.

        ``r`` ``(4,)`` (per coordinate), or with ``measurement_noise="score"`` ``r / s``
        ``(K, 4)``, each score clipped to ``[MIN_NOISE_SCORE, 1]`` (ufuncs: ``np.clip`` costs
        several times more on a few rows).
        """
        if not self._score_noise:
            return self.noise.r
        factor = np.maximum(scores, MIN_NOISE_SCORE)
        np.minimum(factor, 1.0, out=factor)
        return np.divide(self.noise.r, factor[:, None])

    def _validate(self, dets: np.ndarray, strict: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``dets`` as a float64 ``(N, 5)`` or ``(N, 6)`` array, or a clear error.

        Accepts any real numeric dtype (ints, float32, …) and sequences of rows; ``(0, 5)``,
        ``(0, 6)``, ``(0,)`` and ``[]`` mean no detections. Rejects other shapes (also empty
        ones such as ``(0, 4)``), bool/complex/object/string dtypes, NaN/Inf and boxes with
        ``x2 < x1`` or ``y2 < y1``, naming the first bad row. Rows with ``x2 == x1`` or
        ``y2 == y1`` (degenerate, e.g. clipped at the image border) are dropped, with a
        warning the first time (``strict``: an error). Scores may be any finite number.

        Returns:
            ``(dets, kept)``: the valid rows, and ``kept`` ``(N',)`` their input rows when
            some were dropped (else None).
        """
        if not isinstance(dets, np.ndarray):
            try:
                dets = np.asarray(dets, dtype=float)
            except (TypeError, ValueError) as exc:
                raise EmtrackInputError(
                    f"dets must be an (N, 5) or (N, 6) numeric array ({exc})"
                ) from exc
        if dets.size == 0 and dets.shape in ((0,), (0, 5), (0, 6)):
            return np.zeros((0, 6 if dets.shape == (0, 6) else 5)), None
        if dets.ndim != 2 or not 5 <= dets.shape[1] <= 6:
            raise EmtrackInputError(
                "dets must have shape (N, 5) [x1, y1, x2, y2, score] or (N, 6) "
                f"[x1, y1, x2, y2, score, class], got {dets.shape}"
            )
        if dets.dtype != np.float64:  # float64, the usual case, needs no dtype checks
            if not np.issubdtype(dets.dtype, np.number) or np.issubdtype(
                dets.dtype, np.complexfloating
            ):
                raise EmtrackInputError(
                    f"dets must be a real numeric array, got dtype {dets.dtype}"
                )
            dets = dets.astype(float)
        # (count_nonzero is the cheapest test of a mask: several times faster than all/any)
        if np.count_nonzero(np.isfinite(dets)) < dets.size:
            row = int(np.flatnonzero(~np.isfinite(dets).all(1))[0])
            raise EmtrackInputError(f"dets row {row} is not finite: {dets[row].tolist()}")
        if np.count_nonzero(dets[:, 2:4] <= dets[:, 0:2]):
            return self._drop_degenerate(dets, strict)
        return dets, None

    def _drop_degenerate(self, dets: np.ndarray, strict: bool) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_validate` for rows with ``x2 <= x1`` or ``y2 <= y1`` (rare, so not inlined)."""
        negative = (dets[:, 2:4] < dets[:, 0:2]).any(1)
        degenerate = (dets[:, 2:4] == dets[:, 0:2]).any(1)
        bad = negative | degenerate if strict else negative
        if np.count_nonzero(bad):
            row = int(np.flatnonzero(bad)[0])
            box = dets[row, :4].tolist()
            if negative[row]:
                raise EmtrackInputError(
                    f"dets row {row} has x2 < x1 or y2 < y1: {box} (boxes are "
                    "[x1, y1, x2, y2]; [x, y, w, h] boxes need x2 = x + w, y2 = y + h)"
                )
            raise EmtrackInputError(
                f"dets row {row} has x2 <= x1 or y2 <= y1: {box} (zero width or height; "
                "strict=True makes such degenerate rows an error)"
            )
        kept = np.flatnonzero(~degenerate)
        count = len(dets) - len(kept)
        if self.dropped_rows == 0:
            row = int(np.flatnonzero(degenerate)[0])
            warnings.warn(
                f"Tracker.update: dropped {count} degenerate row(s) with zero width or height "
                f"(x2 == x1 or y2 == y1; the first: row {row}, {dets[row, :4].tolist()}); "
                "later ones are dropped without a warning (Tracker.dropped_rows counts them; "
                "strict=True makes them an error)",
                EmtrackInputWarning,
                stacklevel=4,
            )
        self.dropped_rows += count
        return dets[kept], kept

    def _associate(self, dets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both association stages: ``(det rows, track rows)`` of the matched pairs.

        Stage 1 matches the confident detections to the confirmed tracks, then those left to
        the tentative tracks (as ByteTrack does: a track born a frame ago, often from a false
        positive, cannot take a detection that a confirmed track wants); stage 2 the
        confirmed tracks left over against the low-score ones (Hungarian on
        ``logit - dustbin logit``; a pair is kept when that beats the stage's margin).
        """
        cfg = self.config
        tracks = self.tracks
        num_tracks = len(tracks)
        scores = dets[:, 4]
        rows = (scores >= cfg.low_score).nonzero()[0]
        if num_tracks == 0 or len(rows) == 0:
            return NO_ROWS, NO_ROWS
        high = scores[rows] >= cfg.high_score
        track_boxes = motion.predicted_boxes(tracks.mean)
        # Never a longer gap than the network was trained on (see AssociationWeights.max_gap_s).
        gap_s = np.minimum(tracks.lost + self._dt, self._gap_cap_s)
        gap_max_s = self._gap_max_s
        has_low = np.count_nonzero(high) < len(high)
        # A small frame gets one network pass for both stages (fewer, larger array operations).
        merged = has_low and len(rows) * num_tracks <= _MERGE_MAX_PAIRS
        confirmed = tracks.status == CONFIRMED
        if merged:
            grid = LogitGrid(self.scorer, track_boxes, gap_s, gap_max_s, dets.take(rows, 0)[:, :4])
            high_pos = high.nonzero()[0]
            d1, t1 = self._confirmed_first(grid, high_pos, confirmed)
            matched_det = rows[d1]
        else:
            high_rows = rows[high] if has_low else rows
            grid = LogitGrid(
                self.scorer, track_boxes, gap_s, gap_max_s, dets.take(high_rows, 0)[:, :4]
            )
            d1, t1 = self._confirmed_first(grid, None, confirmed)
            matched_det = high_rows[d1]
        if not has_low:
            return matched_det, t1
        left = confirmed.copy()
        left[t1] = False
        left_tracks = left.nonzero()[0]
        if len(left_tracks) == 0:
            return matched_det, t1
        if merged:
            low_pos = (~high).nonzero()[0]
            d2, t2 = grid.match(low_pos, left_tracks, self._margins[1])
            d2 = rows[low_pos[d2]]
        else:
            low_rows = rows[~high]
            grid = LogitGrid(
                self.scorer,
                track_boxes[left_tracks],
                gap_s[left_tracks],
                gap_max_s,
                dets.take(low_rows, 0)[:, :4],
            )
            d2, t2 = grid.match(None, None, self._margins[1])
            d2, t2 = low_rows[d2], left_tracks[t2]
        if len(d2) == 0:
            return matched_det, t1
        return np.concatenate([matched_det, d2]), np.concatenate([t1, t2])

    def _confirmed_first(
        self, grid: LogitGrid, det_pos: np.ndarray | None, confirmed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1: grid rows ``det_pos`` (None: all) to the confirmed tracks, the rest to the
        tentative ones; ``(grid rows, track indices)`` of the matches."""
        margin = self._margins[0]
        num_confirmed = np.count_nonzero(confirmed)
        if num_confirmed in (0, len(confirmed)):
            pos, trk = grid.match(det_pos, None, margin)
            return (pos if det_pos is None else det_pos[pos]), trk
        pos, trk = grid.match(det_pos, confirmed.nonzero()[0], margin)
        left = np.ones(grid.logits.shape[0] if det_pos is None else len(det_pos), bool)
        left[pos] = False  # (a mask: np.delete costs several times more)
        if det_pos is not None:
            pos = det_pos[pos]
            rest = det_pos[left]
        else:
            rest = left.nonzero()[0]
        pos2, trk2 = grid.match(rest, (~confirmed).nonzero()[0], margin)
        return np.concatenate([pos, rest[pos2]]), np.concatenate([trk, trk2])

    @overload
    def update(
        self, dets: np.ndarray, timestamp: float | None = None, *, strict: bool | None = None
    ) -> np.ndarray: ...

    @overload
    def update(
        self, dets: Detections, timestamp: float | None = None, *, strict: bool | None = None
    ) -> Detections: ...

    def update(
        self, dets: Any, timestamp: float | None = None, *, strict: bool | None = None
    ) -> Any:
        """Track one frame.

        Args:
            dets: ``(N, 5)`` ``[x1, y1, x2, y2, score]``, or ``(N, 6)`` with a class column
                ``[..., class]``; ``N = 0`` is valid. With a class column each class is
                tracked on its own (as if its rows were the only input; track ids stay unique
                across classes), unless the tracker is ``class_agnostic``. Rows of zero width
                or height are dropped, with a warning the first time.
            timestamp: the frame's time in seconds. Tracks are predicted over the time since
                the previous update, and a track is lost once that long unmatched; frames
                the caller skips (dropped frames) are simply not given, and do not count as
                frames without detections. Must increase from update to update. None: one
                frame (``1 / frame_rate``) after the previous update.
            strict: degenerate rows are an error (None: the tracker's ``strict``).

        Returns:
            ``(M, 5)`` ``[x1, y1, x2, y2, track_id]``, one row per detection assigned to a
            reported track, in the input order (:attr:`last_rows` holds those detections'
            input rows); the boxes are the tracks' Kalman estimates after this frame
            (``config.output_boxes="detections"``: the detections' own boxes). With a class
            column, ``(M, 6)``: the detection's class appended. Given a
            ``supervision.Detections``, returns one with ``tracker_id`` set instead (every
            input row, -1 = not tracked, boxes unchanged; its ``class_id`` is the class
            column; see :mod:`emtrack.track.sv_detections`).

        Raises:
            EmtrackInputError: bad ``dets`` or ``timestamp``; the tracker is left unchanged.
        """
        if not isinstance(dets, np.ndarray) and is_supervision_detections(dets):
            return update_detections(self, dets, timestamp, strict=strict)
        dets, kept = self._validate(dets, self.strict if strict is None else strict)
        if timestamp is None:
            dt = self._frame_s
            self.time = 0.0 if self.time is None else self.time + dt
        else:
            dt = self._elapsed(timestamp)
            self.time = float(timestamp)
        if self._class_trackers or (dets.shape[1] == 6 and not self.class_agnostic):
            out = self._update_classes(dets, dt)
        elif dets.shape[1] == 6:
            out = self._update_frame(dets[:, :5], dt)
            out = np.concatenate([out, dets[self.last_rows, 5:]], 1)
        else:
            out = self._update_frame(dets, dt)
        if kept is not None:
            self.last_rows = kept[self.last_rows]
        return out

    def _apply_fit(self, fit: Any) -> None:
        """Track on with a new fit (:class:`~emtrack.track.fit.SequenceFit`): its noise for
        every prediction from now on and its camera model (the score calibration is applied
        to each frame's scores as they come)."""
        if fit.noise is not None:
            self.noise = fit.noise
        if fit.output_boxes is not None:
            self._output_filtered = fit.output_boxes == "filtered"
        if fit.camera_motion is not None and fit.camera_motion != self._camera_motion:
            self._camera_motion = fit.camera_motion and self.config.camera_motion_s > 0
            self._camera = (
                camera.CameraMotion(self.frame_rate, self.config.camera_motion_s)
                if self._camera_motion
                else None
            )

    def _expire(self, dt: float) -> None:
        """Before a step longer than one frame (``dt`` s): remove the tracks that updates one
        frame apart over the same time would have removed, i.e. those unmatched for more than
        ``max_lost`` frames by the frame before this one (a tentative track is not: skipped
        frames are no misses)."""
        dead = self.tracks.lost + dt > self._max_lost_s + self._frame_s
        if np.count_nonzero(dead):
            self.tracks.keep(~dead)

    def _elapsed(self, timestamp: float) -> float:
        """Seconds from the previous update to ``timestamp`` (checked; state unchanged)."""
        if not (
            isinstance(timestamp, numbers.Real)
            and not isinstance(timestamp, bool)
            and math.isfinite(timestamp)
        ):
            raise EmtrackInputError(f"timestamp must be a finite number, got {timestamp!r}")
        if self.time is None:
            return self._frame_s  # no track to predict yet
        if not timestamp > self.time:
            raise EmtrackInputError(
                f"timestamp {float(timestamp)!r} is not after the previous frame's "
                f"{self.time!r}: timestamps must increase"
            )
        return float(timestamp) - self.time

    def _update_classes(self, dets: np.ndarray, dt: float) -> np.ndarray:
        """:meth:`update` per class: each class value has its own tracker (made at its first
        row), every one advanced every frame, all drawing ids from this tracker's counter;
        rows without a class (``(N, 5)`` input) are tracked by this tracker's own state.

        Returns ``(M, 6)`` for ``(N, 6)`` input, else ``(M, 5)``; sets :attr:`last_rows`.
        """
        has_class = dets.shape[1] == 6
        previous_frames = self.frame_count
        parts_out = [self._update_frame(dets[:0, :5] if has_class else dets, dt)]
        parts_rows = [self.last_rows]
        if has_class:
            parts_out[0] = np.zeros((0, 6))
            values, inverse = np.unique(dets[:, 5], return_inverse=True)
            rows_of = {
                value: np.flatnonzero(inverse == k) for k, value in enumerate(values.tolist())
            }
        else:
            rows_of = {}
        for value in sorted(set(rows_of) | set(self._class_trackers)):
            sub = self._class_trackers.get(value)
            if sub is None:
                sub = Tracker(
                    self.frame_rate,
                    self.weights,
                    self.config,
                    self.keep_history,
                    noise=self.noise,
                    camera_motion=self._camera_motion,
                    output_boxes="filtered" if self._output_filtered else "detections",
                    online_fit=False,
                )
                # The class's own online fit, as if it had seen this tracker's frames (none
                # of its rows among them) from the start.
                sub._online = None if self._online is None else self._online.copy_before_last()
                # A tracker without tracks only counts the updates it is given, so starting
                # it at this frame's count is the same as running it from the first frame.
                sub.frame_count = previous_frames
                self._class_trackers[value] = sub
            rows = rows_of.get(value, NO_ROWS)
            sub._next_id = self._next_id
            sub.time = self.time
            out = sub._update_frame(dets.take(rows, 0)[:, :5], dt)
            self._next_id = sub._next_id
            if has_class:
                out = np.concatenate([out, np.full((len(out), 1), value)], 1)
            parts_out.append(out)
            parts_rows.append(rows[sub.last_rows])
        rows = np.concatenate(parts_rows)
        order = rows.argsort()
        self.last_rows = rows[order]
        return np.concatenate(parts_out).take(order, 0)

    def _update_frame(self, dets: np.ndarray, dt: float) -> np.ndarray:
        """:meth:`update` of valid ``(N, 5)`` rows, ``dt`` seconds after the previous one."""
        if self._online is not None:
            fit = self._online.observe(dets, self.time)
            if fit is not None:
                self._apply_fit(fit)
            dets = dets.copy()
            dets[:, 4] = self._online.scores(dets[:, 4])
        self._dt = dt
        tracks = self.tracks
        if dt > self._frame_s and len(tracks):
            self._expire(dt)
        cfg = self.config
        self.frame_count += 1
        num_tracks = len(tracks)
        if num_tracks == 0 and len(dets) == 0:
            self.last_rows = np.zeros(0, np.int64)
            return np.zeros((0, 5))
        if num_tracks:
            motion.predict_tracks(tracks.mean, tracks.cov, dt, self.noise.q)
        matched_det, matched_trk = self._associate(dets)

        # Update matched tracks; unmatched ones age.
        if num_tracks:
            if len(matched_trk):
                # (take: several times faster than fancy indexing on small arrays)
                mean = tracks.mean.take(matched_trk, 0)
                cov = tracks.cov.take(matched_trk, 0)
                matched = dets.take(matched_det, 0)
                innovation, variance = motion.innovations(
                    mean, cov, matched[:, :4], self._measurement_noise(matched[:, 4])
                )
                shift = None
                if self._camera is not None:
                    # The camera moved every object: take its motion out of the innovations
                    # here and add it to every track's position below. It is learned from the
                    # tracks matched in the previous frame too (_lost is advanced below).
                    steady = tracks.lost.take(matched_trk) == 0
                    shift = self._camera.shift(innovation[:, :2], variance[:, :2], steady)
                    if shift is not None:
                        innovation[:, :2] -= shift
                tracks.mean[matched_trk], tracks.cov[matched_trk] = motion.correct_tracks(
                    mean, cov, innovation, variance
                )
                if shift is not None:
                    tracks.mean[:, 0, :2] += shift
                if self.frame_count > cfg.min_hits:
                    born_by = self.frame_count + 1 - cfg.min_hits
                    tracks.status[matched_trk[tracks.born[matched_trk] <= born_by]] = CONFIRMED
                else:
                    tracks.status[matched_trk] = CONFIRMED
            tracks.lost += dt
            tracks.lost[matched_trk] = 0

        # Births from unmatched confident detections.
        free = dets[:, 4] >= cfg.new_track_score
        free[matched_det] = False
        births = free.nonzero()[0]
        if len(births):
            born = dets.take(births, 0)
            mean, cov = motion.initial_tracks(
                born[:, :4], self._measurement_noise(born[:, 4]), self.noise.p_vel
            )
            new_ids = np.arange(self._next_id, self._next_id + len(births))
            self._next_id += len(births)
            confirmed = self.frame_count <= cfg.min_hits or cfg.min_hits <= 1
            status = np.full(len(births), CONFIRMED if confirmed else TENTATIVE, np.int64)
            born_at = np.full(len(births), self.frame_count)
            tracks.extend(TrackState(mean, cov, new_ids, status, born_at, np.zeros(len(births))))
            matched_det = np.concatenate([matched_det, births])
            matched_trk = np.concatenate([matched_trk, np.arange(num_tracks, len(tracks))])

        # Output before pruning: confirmed tracks with a detection this frame, input order.
        confirmed_now = tracks.status.take(matched_trk) == CONFIRMED
        if self.keep_history and len(matched_det):
            self._log.append(
                (
                    self.frame_count,
                    tracks.ids[matched_trk],
                    dets[matched_det, :4],
                    dets[matched_det, 4],
                    confirmed_now,
                    matched_det,
                )
            )
        rows, trks = matched_det[confirmed_now], matched_trk[confirmed_now]
        order = rows.argsort()
        rows = rows[order]
        out = dets.take(rows, 0)
        trks = trks[order]
        out[:, 4] = tracks.ids[trks]
        if self._output_filtered:
            out[:, :4] = motion.position_boxes(tracks.mean[:, 0].take(trks, 0))
        self.last_rows = rows

        # Deaths: tentative tracks that missed, and tracks lost for too long.
        if num_tracks:
            # Time unmatched allowed: none for tentative tracks, max_lost frames for confirmed.
            dead = tracks.lost > tracks.status * self._max_lost_s
            if np.count_nonzero(dead):
                tracks.keep(~dead)
        return out


#: Frames with at most this many (detection, track) pairs score both stages in one pass.
_MERGE_MAX_PAIRS = 512


#: One update's matches in the keep_history log: frame, track ids, boxes, scores, confirmed,
#: input rows.
_LogEntry = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _build_history(log: list[_LogEntry]) -> dict[int, TrackHistory]:
    """Per-track histories from the tracker's per-frame log, by track id (increasing)."""
    if not log:
        return {}
    ids = np.concatenate([entry[1] for entry in log])
    frames = np.concatenate([np.full(len(entry[1]), entry[0], np.int64) for entry in log])
    order = np.argsort(ids, kind="stable")  # frames stay increasing within a track
    ids, frames = ids[order], frames[order]
    boxes, scores, confirmed, rows = (
        np.concatenate([entry[k] for entry in log])[order] for k in (2, 3, 4, 5)
    )
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    return {
        int(ids[a]): TrackHistory(
            int(ids[a]),
            frames[a:b],
            boxes[a:b],
            scores[a:b],
            bool(confirmed[a:b].any()),
            rows[a:b],
        )
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    }

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

import copy
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
from emtrack.track.noise_fit import (
    detections_estimate_better,
    extrapolation_errors,
    fit_noise,
    pack_tracks,
    score_noise_scale,
)
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
        output_boxes: ``filtered`` or ``detections``, when chosen for the input (None: as
            ``TrackerConfig.output_boxes`` says).
        extrapolation_errors: ``(from filtered, from detections)`` when it was chosen.
    """

    calibration: ScoreCalibration | None = None
    noise: MotionNoise | None = None
    camera_motion: bool | None = None
    camera_log_likelihoods: tuple[float, float] | None = None
    output_boxes: str | None = None
    extrapolation_errors: tuple[float, float] | None = None

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
        if self.extrapolation_errors is not None:
            filtered, raw = self.extrapolation_errors
            lines.append(
                f"output boxes: {self.output_boxes} (mean squared error of the next detection, "
                f"in heights²: {filtered:.3g} from filtered, {raw:.3g} from detections; the "
                "detections are chosen only when significantly better)"
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
    tracker = _first_pass_tracker(seqinfo.frame_rate, weights)
    index = detections.frame_index(seqinfo.seq_length)
    updates = [index[frame - 1] for frame in tracked_frames.tolist()]
    dets = _every_detection_confident(detections.boxes_xyxy)
    for k, rows in enumerate(updates):
        tracker.update(dets[rows], None if seconds is None else float(seconds[k]))
    return _history_track_ids(tracker, *frame_offsets(updates))


def _first_pass_tracker(frame_rate: float, weights: AssociationWeights) -> Tracker:
    """A tracker for the first pass (:data:`FIRST_PASS_CONFIG`, keeping its history)."""
    return Tracker(frame_rate, weights, FIRST_PASS_CONFIG, keep_history=True, online_fit=False)


def _history_track_ids(
    tracker: Tracker, order: np.ndarray, starts: np.ndarray, first_update: int = 1
) -> np.ndarray:
    """The track of every row of a first pass's updates from ``first_update`` on.

    Row ``r`` of the array given at update ``first_update + k`` is row ``order[starts[k] +
    r]`` of the table (:func:`frame_offsets`); a row on no track gets an id of its own
    (negative).

    Returns:
        ``(starts[-1],)`` int64 track ids.
    """
    ids = np.full(int(starts[-1]), -1, np.int64)
    for history in tracker.history.values():
        on = history.frames >= first_update
        ids[order[starts[history.frames[on] - first_update] + history.rows[on]]] = history.track_id
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
    track_ids: np.ndarray | None = None,
) -> SequenceFit:
    """Fit the settings ``config`` leaves to the data (see the module docstring).

    ``tracked_frames`` and ``seconds``: the frames the first pass tracks and their times (as
    :func:`first_pass_track_ids` takes them); the fits work on frame numbers.
    ``track_ids``: ``(N,)`` the first pass's track of every detection when already known
    (as :func:`first_pass_track_ids` returns them; :class:`OnlineFit` keeps its first pass
    running), else None to run it here.

    With ``score_normalisation="auto"`` the score calibration is fitted, and with
    ``noise="fit"`` the noise constants; the fixed choices fit nothing.
    """
    fit_scores = config.score_normalisation == "auto"
    fit_noise_constants = config.noise == "fit"
    choose_camera = config.camera_model == "auto" and config.camera_motion_s > 0
    choose_boxes = config.output_boxes == "auto"
    if not fits_anything(config) or len(detections) < 2:
        return SequenceFit(calibration=constant_calibration() if fit_scores else None)
    if track_ids is None:
        track_ids = first_pass_track_ids(detections, seqinfo, weights, tracked_frames, seconds)
    elif track_ids.shape != (len(detections),):
        raise ValueError(
            f"track_ids must have one id per detection, ({len(detections)},), got {track_ids.shape}"
        )
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
        camera = bool(likelihoods[1] > likelihoods[0])
    boxes = errors = None
    if choose_boxes:
        batch = pack_tracks(
            [(detections.frames[rows], detections.boxes_xyxy[rows], scale[rows]) for rows in real]
        )
        if batch is not None:
            per_track = extrapolation_errors(
                batch, seqinfo.frame_rate, noise or model_noise(weights)
            )
            boxes = "detections" if detections_estimate_better(per_track) else "filtered"
            errors = tuple(float(e) for e in np.nanmean(per_track, 0))
    return SequenceFit(
        calibration=calibration if fit_scores else None,
        noise=noise,
        camera_motion=camera,
        camera_log_likelihoods=likelihoods,
        output_boxes=boxes,
        extrapolation_errors=errors,
    )


def _track_rows(track_ids: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """The detection rows of each track, in frame order, tracks by id."""
    order = np.lexsort((frames, track_ids))
    ids = track_ids[order]
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return np.split(order, cuts)


#: The online fit's first refit (seconds of stream) and the longest wait between refits; the
#: waits double in between. It fits on at most the last ``ONLINE_WINDOW_S`` seconds.
ONLINE_FIRST_FIT_S = 1.0
ONLINE_MAX_INTERVAL_S = 32.0
ONLINE_WINDOW_S = 64.0


class OnlineFit:
    """The running version of :func:`fit_sequence`, for :meth:`Tracker.update` one frame at
    a time.

    It keeps the frames seen so far (the last :data:`ONLINE_WINDOW_S` seconds) and fits to
    them, as to a whole file, after :data:`ONLINE_FIRST_FIT_S` seconds of stream and then
    at doubling intervals (at most :data:`ONLINE_MAX_INTERVAL_S` apart). Until the first
    fit, a score counts as its rank among the scores seen so far (the fraction of them at
    most as high), which any score scale allows.

    The first pass that each fit learns from (:func:`first_pass_track_ids`) runs along with
    the stream, one update per frame, and each fit takes its tracks over the window, rather
    than tracking the window again from its start: the same tracks while the stream is
    shorter than the window, and after that tracks that may have begun before it.

    Args:
        frame_rate: the stream's frame rate; weights: the model; config: what to fit (as
            :func:`fit_sequence` reads it).
    """

    def __init__(self, frame_rate: float, weights: AssociationWeights, config: TrackerConfig):
        self.frame_rate = frame_rate
        self.weights = weights
        self.config = config
        self.fit: SequenceFit | None = None  # the latest fit
        self._times: list[float] = []
        self._frames: list[np.ndarray] = []  # (N, 5) raw rows per frame
        self._seen = np.zeros(0)  # sorted scores seen before the first fit
        self._start: float | None = None  # the first frame's time
        self._next_fit_s = ONLINE_FIRST_FIT_S
        self._interval_s = ONLINE_FIRST_FIT_S
        self._before: tuple = (self._next_fit_s, self._interval_s, None, self._seen)
        # The running first pass (None when nothing is fitted), its frames' times relative
        # to the first frame's, as in _times.
        self._first_pass = (
            _first_pass_tracker(frame_rate, weights) if fits_anything(config) else None
        )

    def copy_before_last(self) -> OnlineFit:
        """An independent copy as it was before the last :meth:`observe` (the same earlier
        frames, schedule and fit), to go on with other rows for that frame.

        Its first pass is run again over those earlier frames (the window's: the copy's
        fits see the same tracks as a fresh stream starting there)."""
        twin = copy.copy(self)
        twin._times, twin._frames = list(self._times[:-1]), list(self._frames[:-1])
        twin._next_fit_s, twin._interval_s, twin.fit, twin._seen = self._before
        if self._first_pass is not None:
            twin._first_pass = _first_pass_tracker(self.frame_rate, self.weights)
            for time, dets in zip(twin._times, twin._frames, strict=True):
                twin._first_pass.update(_every_detection_confident(dets[:, :4]), time)
        return twin

    def observe(self, dets: np.ndarray, time: float) -> SequenceFit | None:
        """Record a frame's ``(N, 5)`` raw rows at ``time`` (seconds; the schedule counts
        from the first frame's); returns a new fit when one was made now, else None."""
        self._before = (self._next_fit_s, self._interval_s, self.fit, self._seen)
        if self._start is None:
            self._start = time
        time -= self._start
        self._times.append(time)
        self._frames.append(dets)
        if self._first_pass is not None:
            self._first_pass.update(_every_detection_confident(dets[:, :4]), time)
        mode = self.config.score_normalisation
        if mode == "rank" or (mode == "auto" and self.fit is None):
            self._seen = np.sort(np.concatenate([self._seen, dets[:, 4]]))
        while self._times and self._times[0] < time - ONLINE_WINDOW_S:
            self._times.pop(0)
            self._frames.pop(0)
        if time + 1e-9 < self._next_fit_s:
            return None
        self._interval_s = min(2 * self._interval_s, ONLINE_MAX_INTERVAL_S)
        self._next_fit_s = time + self._interval_s
        counts = [len(frame) for frame in self._frames]
        rows = np.concatenate(self._frames)
        table = MotTable.from_arrays(
            np.repeat(np.arange(1, len(counts) + 1), counts), rows[:, :4], rows[:, 4]
        )
        seqinfo = SeqInfo("stream", self.frame_rate, len(counts))
        seconds = np.asarray(self._times) - self._times[0]
        track_ids = None
        if self._first_pass is not None:
            # The window's frames are the first pass's last len(counts) updates.
            first_update = self._first_pass.frame_count - len(counts) + 1
            self._first_pass.forget_history(first_update)
            starts = np.cumsum([0, *counts])
            track_ids = _history_track_ids(
                self._first_pass, np.arange(starts[-1]), starts, first_update
            )
        self.fit = fit_sequence(
            table,
            seqinfo,
            self.weights,
            self.config,
            np.arange(1, len(counts) + 1),
            seconds,
            track_ids,
        )
        return self.fit

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """What the thresholds compare for raw scores ``(N,)`` (``score_normalisation``):
        ``auto``, the latest fit's calibration, or before the first fit the scores' ranks
        among those seen so far; ``rank``, those ranks; ``none``, the scores as given."""
        mode = self.config.score_normalisation
        if mode == "auto" and self.fit is not None and self.fit.calibration is not None:
            return self.fit.calibration(raw)
        if mode == "none" or len(self._seen) == 0:
            return raw
        return np.searchsorted(self._seen, raw, side="right") / len(self._seen)


def _every_detection_confident(boxes_xyxy: np.ndarray) -> np.ndarray:
    """``(N, 5)`` rows of boxes ``(N, 4)`` with every score 1, as the first pass takes them."""
    return np.concatenate([boxes_xyxy, np.ones((len(boxes_xyxy), 1))], 1)


def fits_anything(config: TrackerConfig) -> bool:
    """Whether :func:`fit_sequence` fits anything for ``config`` (and so needs a first pass)."""
    return (
        config.score_normalisation == "auto"
        or config.noise == "fit"
        or (config.camera_model == "auto" and config.camera_motion_s > 0)
        or config.output_boxes == "auto"
    )


def asks_for_fitting(config: TrackerConfig) -> bool:
    """Whether ``config`` leaves anything to fit to the input (or ranks scores)."""
    return fits_anything(config) or config.score_normalisation == "rank"

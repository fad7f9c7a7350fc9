"""Tracker settings (:class:`TrackerConfig`) and the choices of its string fields."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Values of :attr:`TrackerConfig.score_normalisation`.
SCORE_NORMALISATIONS: tuple[str, ...] = ("auto", "rank", "none")
#: Values of :attr:`TrackerConfig.output_boxes`.
OUTPUT_BOXES: tuple[str, ...] = ("auto", "filtered", "detections")
#: Values of :attr:`TrackerConfig.measurement_noise`.
MEASUREMENT_NOISES: tuple[str, ...] = ("score", "constant")
#: Values of :attr:`TrackerConfig.camera_model`.
CAMERA_MODELS: tuple[str, ...] = ("auto", "shift", "none")
#: Values of :attr:`TrackerConfig.noise`.
NOISES: tuple[str, ...] = ("fit", "model")
#: Values of :attr:`TrackerConfig.association`.
ASSOCIATIONS: tuple[str, ...] = ("learned", "iou")
#: Scores are clipped to [MIN_NOISE_SCORE, 1] before they divide the measurement variance
#: (``measurement_noise="score"``), so no detection counts as more than 10x noisier than a sure
#: one (and raw scores above 1, compared as given, count as 1).
MIN_NOISE_SCORE = 0.1


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings.

    The score thresholds (``high_score``, ``low_score``, ``new_track_score``) compare what
    ``score_normalisation`` says: by default, in whole-sequence tracking, the fitted
    probability that a detection is a real object.

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
        max_gap_fill_s: offline mode: fill gaps of up to this many seconds with boxes
            interpolated along the smoothed trajectory (seconds, like the other durations,
            so that the same physical gap is filled at every frame rate).
        max_gap_fill: offline mode: the same limit in frames; when given it replaces
            ``max_gap_fill_s`` (``None``: use the seconds).
        relink_max_s: offline mode: re-link fragments separated by up to this many seconds.
        relink_margin: offline mode: logit margin over the dustbin needed to re-link.
        min_track_hits: offline mode: drop tracks with fewer detections than this.
        min_track_score_rank: offline mode: drop trajectories of clutter (0 keeps all). With
            the score calibration fitted to the input (``score_normalisation="auto"``), a
            trajectory is dropped when the calibration's two-class mixture, from its
            detections' scores and its length, judges clutter the likelier class; with ranked
            or given scores, when its detections' mean score rank is below this (a
            detection's rank is the fraction of the sequence's detections scoring at most as
            high, so the cut follows each detector's own score distribution).
        score_normalisation: what the score thresholds above compare in whole-sequence
            tracking (:func:`~emtrack.track.track_sequence`, the CLI). ``auto`` (default): the
            probability that a detection is a real object, fitted to each input without
            labels (:mod:`emtrack.track.calibration`: a score-agnostic first pass links the
            detections, and a two-class mixture of long-lived objects and short-lived clutter
            gives P(real | score), monotone in the score), so that probabilities, logits, raw
            detector values, a few distinct values (0/1), one value for all, or scores cut at
            some threshold all work without a flag. ``rank``: each score replaced by its rank
            in the file (the fraction of its detections scoring at most as high); ``none``:
            scores as given. Result files keep the file's own scores. :meth:`Tracker.update`
            fits the same calibration to the frames seen so far
            (:class:`~emtrack.track.fit.OnlineFit`; until its first fit a score counts as its
            rank among those seen).
        output_boxes: the boxes :meth:`Tracker.update` (and so the online result file)
            reports: ``filtered`` the track's Kalman estimate after this frame's detection, as
            SORT reports it (the detection averaged with the motion prediction: less detector
            jitter), or ``detections`` the matched detections' own boxes (better for a precise
            detector of erratically moving objects). ``auto`` (default) chooses per input in
            whole-sequence tracking (and once the online fit has run, in
            :meth:`Tracker.update`; filtered until then): the estimate from which the next
            frame's detection is better predicted over the input's tracks
            (:func:`~emtrack.track.noise_fit.extrapolation_errors`). Either way a track is
            reported only in frames where it has a detection (:attr:`Tracker.last_rows` names
            it), and the offline mode reports its own smoothed boxes.
        camera_motion_s: camera-motion compensation from the tracks themselves
            (:mod:`emtrack.track.camera`): every frame, the shift that the steadily tracked
            objects share beyond their predicted motion is estimated and applied to every
            track, so that tracks lost under a panning or shaking camera are found again. The
            value is the time constant (seconds) of the running estimate of how much the camera
            moves; a static camera is recognised as such and nothing is shifted. 0 turns it off.
        camera_model: whether the camera-motion estimate is applied: ``auto`` (default)
            decides per input in whole-sequence tracking, by the marginal likelihood of the
            first pass's tracks with and without it (:mod:`emtrack.track.camera_fit`: a
            camera walking or driving forward moves objects apart, which a shared shift
            cannot follow), and applies it in :meth:`Tracker.update`; ``shift`` always
            applies it, ``none`` never.
        measurement_noise: the position variance of a detection in the online Kalman filter
            (the update of its track, or the start of a new one). ``score`` (default):
            ``r h² / s``, ``s`` the detection's score (as the thresholds compare it) clipped to
            ``[0.1, 1]`` — a detection its detector is unsure of (partly occluded, cut by the
            image border, a second-stage match) moves its track less and leans more on the
            motion prediction; ``constant``: ``r h²`` for every detection (``r`` the model's
            learned measurement noise, as in training and in the offline smoother).
        noise: the motion model's noise constants in whole-sequence tracking: ``fit``
            (default) fits ``q`` and ``r`` of every box coordinate to the input by the
            innovations likelihood of its tracks (:mod:`emtrack.track.noise_fit`), so that a
            precise detector's boxes are trusted and a jittery one's smoothed; ``model``
            keeps the model's own constants (the same for every coordinate).
            :meth:`Tracker.update` uses the ``noise`` it is given, else the model's.
        association: how (detection, track) pairs are scored, online and when the offline pass
            re-links: ``learned`` (default) by the association network against its dustbin
            score with the ``*_margin`` settings; ``iou`` by the IoU of the track's predicted
            box and the detection, matched when it beats ``iou_gate`` (first stage, re-linking)
            or ``low_iou_gate`` (second stage), everything else unchanged — the baseline
            that shows what the learned association adds.
        iou_gate: ``association="iou"``: least IoU of a first-stage or re-linked pair
            (SORT's 0.3).
        low_iou_gate: ``association="iou"``: least IoU of a second-stage (low-score) pair
            (ByteTrack's 0.5).
    """

    high_score: float = 0.6
    low_score: float = 0.1
    new_track_score: float = 0.75
    min_hits: int = 2
    max_lost_s: float = 1.5
    match_margin: float = 5.0
    low_match_margin: float = 10.0
    max_gap_fill_s: float = 1.0
    max_gap_fill: int | None = None
    relink_max_s: float = 3.0
    relink_margin: float = 5.0
    min_track_hits: int = 3
    min_track_score_rank: float = 0.3
    score_normalisation: str = "auto"
    output_boxes: str = "auto"
    camera_motion_s: float = 1.0
    camera_model: str = "auto"
    measurement_noise: str = "score"
    noise: str = "fit"
    association: str = "learned"
    iou_gate: float = 0.3
    low_iou_gate: float = 0.5

    def __post_init__(self) -> None:
        for name, choices in (
            ("score_normalisation", SCORE_NORMALISATIONS),
            ("output_boxes", OUTPUT_BOXES),
            ("measurement_noise", MEASUREMENT_NOISES),
            ("association", ASSOCIATIONS),
            ("noise", NOISES),
            ("camera_model", CAMERA_MODELS),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"TrackerConfig.{name} must be one of {choices}, got {getattr(self, name)!r}"
                )
        for name in (
            "high_score",
            "low_score",
            "new_track_score",
            "max_lost_s",
            "match_margin",
            "low_match_margin",
            "relink_max_s",
            "relink_margin",
            "max_gap_fill_s",
            "min_track_score_rank",
            "camera_motion_s",
            "iou_gate",
            "low_iou_gate",
        ):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"TrackerConfig.{name} must be finite")
        if not 0.0 <= self.min_track_score_rank <= 1.0:
            raise ValueError("TrackerConfig.min_track_score_rank must lie in [0, 1]")
        if not (0.0 <= self.iou_gate < 1.0 and 0.0 <= self.low_iou_gate < 1.0):
            raise ValueError("TrackerConfig.iou_gate and low_iou_gate must lie in [0, 1)")
        if self.low_score > self.high_score:
            raise ValueError("TrackerConfig.low_score must be <= high_score")
        if self.min_hits < 1 or self.min_track_hits < 1:
            raise ValueError("TrackerConfig.min_hits and min_track_hits must be >= 1")
        if (
            self.max_lost_s < 0
            or self.max_gap_fill_s < 0
            or (self.max_gap_fill is not None and self.max_gap_fill < 0)
            or self.relink_max_s < 0
            or self.camera_motion_s < 0
        ):
            raise ValueError("TrackerConfig durations must be >= 0")

"""Whether to compensate camera motion, chosen per input by marginal likelihood.

The online estimate of :mod:`emtrack.track.camera` (one shift shared by every object) follows
pans and shakes, but a camera walking or driving forward makes objects move apart from a point
rather than together, and a shared shift then only adds noise. So whole-sequence tracking asks
the data: given tracks of the input (the first pass's, judged real by the score calibration),
it replays the Kalman filter over them frame by frame twice — once without compensation, once
with the shared-shift estimate applied as the tracker applies it — and keeps the model whose
innovations are more likely. Under the shift model the innovations of a frame are jointly
Gaussian, ``y = c 1 + e`` with the camera's shift ``c ~ N(0, σ²)`` (``σ²`` the estimator's
running value before that frame) and ``e ~ N(0, diag(s))``; its density comes from the
matrix determinant lemma. Both models score the same detections, so the two log-likelihoods
compare directly.
"""

from __future__ import annotations

import math

import numpy as np

from emtrack.track import motion
from emtrack.track.camera import CameraMotion


def camera_log_likelihoods(
    frames: np.ndarray,
    track_ids: np.ndarray,
    boxes_xyxy: np.ndarray,
    noise_scale: np.ndarray,
    fps: float,
    noise: motion.MotionNoise,
    time_constant_s: float,
) -> tuple[float, float]:
    """``(without compensation, with the shared-shift estimate)`` innovations log-likelihoods.

    Args:
        frames: ``(N,)`` frame of each detection; ``track_ids``: ``(N,)`` its track.
        boxes_xyxy: ``(N, 4)``.
        noise_scale: ``(N,)`` each detection's measurement variance over ``r h²``.
        fps: frames per second.
        noise: the motion model's constants.
        time_constant_s: the camera estimate's time constant (``TrackerConfig.camera_motion_s``).

    The filter replays the tracks frame by frame without and with the shift, in one loop:
    its state holds every track twice, rows
    ``0 … T-1`` without compensation and ``T … 2T-1`` with it, so each frame's prediction,
    innovations and correction are one array operation for both.
    """
    camera = CameraMotion(fps, time_constant_s)
    _, track = np.unique(track_ids, return_inverse=True)
    count = int(track.max()) + 1 if len(track) else 0
    first = np.full(count, np.iinfo(np.int64).max)
    last = np.full(count, -1)
    np.minimum.at(first, track, frames)
    np.maximum.at(last, track, frames)
    mean = np.zeros((2 * count, 2, 4))
    cov = np.zeros((2 * count, 3, 4))
    seen_before = np.full(count, -1)  # frame of each track's latest detection
    order = np.argsort(frames, kind="stable")
    cuts = np.flatnonzero(np.diff(frames[order])) + 1
    dt = 1.0 / fps
    total_without = total_with = 0.0
    previous = None
    for rows in np.split(order, cuts):
        frame = int(frames[rows[0]])
        if previous is not None:
            alive_idx = ((first < frame) & (last >= frame)).nonzero()[0]
            both = np.concatenate([alive_idx, alive_idx + count])
            m, c = mean[both], cov[both]
            for _ in range(frame - previous):
                motion.predict_tracks(m, c, dt, noise.q)
            mean[both], cov[both] = m, c
        previous = frame
        trk = track[rows]
        known = seen_before[trk] >= 0
        num_known = int(np.count_nonzero(known))
        if num_known:
            t_known, r_known = trk[known], rows[known]
            both = np.concatenate([t_known, t_known + count])
            m, c = mean[both], cov[both]
            r = noise.r * noise_scale[r_known, None]
            boxes = boxes_xyxy[r_known]
            innovation, variance = motion.innovations(
                m, c, np.concatenate([boxes, boxes]), np.concatenate([r, r])
            )
            alone, shifted = slice(0, num_known), slice(num_known, None)
            # (each sum as the separate replays took it: the same float rounding)
            total_without += _gaussian(innovation[alone, 2:], variance[alone, 2:])
            total_without += _gaussian(innovation[alone, :2], variance[alone, :2])
            total_with += _gaussian(innovation[shifted, 2:], variance[shifted, 2:])
            shift = None
            if num_known < 2:
                total_with += _gaussian(innovation[shifted, :2], variance[shifted, :2])
            else:
                total_with += _shared_shift(
                    innovation[shifted, :2], variance[shifted, :2], camera.variance
                )
                steady = seen_before[t_known] == frame - 1
                shift = camera.shift(innovation[shifted, :2], variance[shifted, :2], steady)
                if shift is not None:
                    innovation[shifted, :2] -= shift
            mean[both], cov[both] = motion.correct_tracks(m, c, innovation, variance)
            if shift is not None:  # every live track moves with the camera, as online
                live = (first <= frame) & (last >= frame) & (seen_before >= 0)
                mean[count + live.nonzero()[0], 0, :2] += shift
        new = ~known
        if np.any(new):
            r = noise.r * noise_scale[rows[new], None]
            m, c = motion.initial_tracks(boxes_xyxy[rows[new]], r, noise.p_vel)
            mean[trk[new]], cov[trk[new]] = m, c
            mean[trk[new] + count], cov[trk[new] + count] = m, c
        seen_before[trk] = frame
    return float(total_without), float(total_with)


def _gaussian(innovation: np.ndarray, variance: np.ndarray) -> float:
    """``Σ log N(y; 0, s)`` over independent entries."""
    return float(-0.5 * np.sum(np.log(2 * math.pi * variance) + innovation**2 / variance))


def _shared_shift(innovation: np.ndarray, variance: np.ndarray, shift_variance: float) -> float:
    """``Σ_coordinates log N(y; 0, diag(s) + σ² 1 1ᵀ)`` for ``(K, 2)`` innovations."""
    if shift_variance <= 0.0:
        return _gaussian(innovation, variance)
    precision = 1.0 / variance  # (K, 2)
    total = 0.0
    for j in range(innovation.shape[1]):
        p, y = precision[:, j], innovation[:, j]
        inflation = 1.0 + shift_variance * p.sum()
        weighted = float(p @ y)
        quadratic = float(y @ (p * y)) - shift_variance * weighted * weighted / inflation
        log_det = float(np.sum(np.log(variance[:, j]))) + math.log(inflation)
        total += -0.5 * (len(y) * math.log(2 * math.pi) + log_det + quadratic)
    return total

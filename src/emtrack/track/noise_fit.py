"""Noise constants fitted to an input by the innovations likelihood of its tracks.

A detector's precision, and how its objects move, differ from input to input (per box
coordinate by a factor of 50 on the data seen so far), so the motion model's constants
(:class:`~emtrack.track.motion.MotionNoise`: ``q`` and ``r`` of each coordinate) are fitted to
each input: given tracks (the detections of one object each, from a first pass), the exact
marginal likelihood of their detections under the constant-velocity Kalman filter — the
product of the innovations' densities — is maximised over ``q`` and ``r``, coordinate by
coordinate (they are independent given the tracks). The tracker predicts a track one frame
ahead and, after misses, several: the likelihood is a composite of both horizons, each track
also entering as its every-:data:`FIT_HORIZONS`-th detection (a one-frame fit alone reads
occlusion jitter as motion, and the velocities it gives overshoot across gaps). The search
is a coarse-to-fine grid in log space around the model's own constants, evaluated for all
candidates and coordinates in one vectorised filter pass per round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emtrack.track.config import MIN_NOISE_SCORE
from emtrack.track.motion import MIN_SIDE, MotionNoise, boxes_to_state

#: Prediction horizons (frames) of the composite likelihood: every detection after the one
#: before, and every fourth after the fourth before.
FIT_HORIZONS: tuple[int, ...] = (1, 4)
#: Tracks shorter than this (detections) are not used: they say little about motion.
MIN_FIT_LENGTH = 10
#: At most this many tracks (the longest) and detections per track enter the fit.
MAX_FIT_TRACKS = 150
MAX_FIT_LENGTH = 150
#: Grid rounds: (factor between neighbouring candidates, candidates per side of the centre).
_GRID_ROUNDS: tuple[tuple[float, int], ...] = ((8.0, 2), (8.0**0.5, 1), (2.0**0.5, 1))
#: Bounds of the fitted constants (those training allows, see ``model.network.NoiseModel``).
Q_BOUNDS = (1e-4, 1e2)
R_BOUNDS = (1e-6, 1.0)


@dataclass(frozen=True)
class TrackBatch:
    """Tracks padded to a common length, for the vectorised filter.

    Attributes:
        observations: ``(N, L, 4)`` ``[x_centre, y_bottom, width, height]`` of each detection.
        steps: ``(N, L)`` frames since the track's previous detection (0 at the first).
        observed: ``(N, L)`` bool, True up to each track's end (tracks longest first).
        heights: ``(N, L)`` detection heights (floored at 1 px).
        noise_scale: ``(N, L)`` each detection's measurement variance over ``r h²`` (1, or
            ``1 / score`` for score-scaled noise).
    """

    observations: np.ndarray
    steps: np.ndarray
    observed: np.ndarray
    heights: np.ndarray
    noise_scale: np.ndarray


def pack_tracks(
    tracks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    max_tracks: int = MAX_FIT_TRACKS,
    max_length: int = MAX_FIT_LENGTH,
) -> TrackBatch | None:
    """A :class:`TrackBatch` of the longest ``max_tracks`` tracks of at least
    :data:`MIN_FIT_LENGTH` detections, each cut to its first ``max_length`` (None if none).

    Args:
        tracks: per track ``(frames (L,), boxes_xyxy (L, 4), noise_scale (L,))``, frames
            increasing.
    """
    usable = [t for t in tracks if len(t[0]) >= MIN_FIT_LENGTH]
    if not usable:
        return None
    usable.sort(key=lambda t: (-len(t[0]), int(t[0][0])))
    usable = usable[:max_tracks]
    length = min(max_length, len(usable[0][0]))
    count = len(usable)
    observations = np.zeros((count, length, 4))
    steps = np.zeros((count, length))
    observed = np.zeros((count, length), bool)
    scale = np.ones((count, length))
    for n, (frames, boxes, noise_scale) in enumerate(usable):
        k = min(length, len(frames))
        observations[n, :k] = boxes_to_state(boxes[:k])
        steps[n, 1:k] = np.diff(frames[:k])
        observed[n, :k] = True
        scale[n, :k] = noise_scale[:k]
    heights = np.maximum(observations[..., 3], MIN_SIDE)
    return TrackBatch(observations, steps, observed, heights, scale)


#: The arrays of a :class:`TrackBatch`, in order.
TRACK_BATCH_FIELDS = ("observations", "steps", "observed", "heights", "noise_scale")


def _stack(batches: list[TrackBatch]) -> TrackBatch:
    """The tracks of several batches in one, padded to the longest (unobserved padding)."""
    length = max(b.observations.shape[1] for b in batches)

    def pad(values: np.ndarray, fill: float) -> np.ndarray:
        extra = length - values.shape[1]
        widths = [(0, 0), (0, extra)] + [(0, 0)] * (values.ndim - 2)
        return np.pad(values, widths, constant_values=fill)

    stacked = TrackBatch(
        *(
            np.concatenate([pad(getattr(b, name), fill) for b in batches])
            for name, fill in (
                ("observations", 0.0),
                ("steps", 0.0),
                ("observed", False),
                ("heights", 1.0),
                ("noise_scale", 1.0),
            )
        )
    )
    order = np.argsort(-np.count_nonzero(stacked.observed, 1), kind="stable")  # longest first
    return TrackBatch(*(getattr(stacked, name)[order] for name in TRACK_BATCH_FIELDS))


def innovations_loglik(
    batch: TrackBatch, fps: float, q: np.ndarray, r: np.ndarray, p_vel: np.ndarray
) -> np.ndarray:
    """Log-likelihood of the tracks' detections (after the first of each) per candidate.

    Args:
        batch: the tracks.
        fps: frames per second.
        q: ``(G, 4)`` candidate process noises; ``r``: ``(G, 4)`` measurement noises.
        p_vel: ``(4,)`` a new track's velocity variance (per squared height).

    Returns:
        ``(G, 4)``: for each candidate and coordinate, the sum over detections of
        ``log N(y; 0, s)``, ``y`` the innovation and ``s`` its variance.
    """
    h2 = np.square(batch.heights)  # (N, L)
    first = batch.observations[:, 0]  # (N, 4)
    count = len(q)
    pos = np.broadcast_to(first, (count, *first.shape)).copy()  # (G, N, 4)
    vel = np.zeros_like(pos)
    start = h2[None, :, 0, None] * batch.noise_scale[None, :, 0, None]
    var_pos = r[:, None, :] * start
    cov_pv = np.zeros_like(pos)
    var_vel = np.broadcast_to(p_vel * h2[:, 0, None], pos.shape).copy()
    total = np.zeros((count, 4))
    # Tracks are longest first and observed up to their end, so those still going at step k
    # are the first ``alive[k]`` rows: every step works on that prefix only.
    alive = np.count_nonzero(batch.observed, 0)
    q_rows, r_rows = q[:, None, :], r[:, None, :]
    for k in range(1, batch.observations.shape[1]):
        n = int(alive[k])
        if n == 0:
            break
        dt = (batch.steps[:n, k] / fps)[None, :, None]  # (1, n, 1)
        qh = q_rows * h2[None, :n, k - 1, None]
        p, v = pos[:, :n], vel[:, :n]
        a, b, d = var_pos[:, :n], cov_pv[:, :n], var_vel[:, :n]
        # Predict (constant velocity, white-noise acceleration).
        pred_pos = p + dt * v
        pred_var_pos = a + 2 * dt * b + dt * dt * d + qh * dt**3 / 3
        pred_cov_pv = b + dt * d + qh * dt**2 / 2
        pred_var_vel = d + qh * dt
        # Innovation and its variance.
        innovation = batch.observations[None, :n, k] - pred_pos
        noise = r_rows * (h2[None, :n, k, None] * batch.noise_scale[None, :n, k, None])
        variance = pred_var_pos + noise
        loglik = np.log(2 * np.pi * variance) + innovation * innovation / variance
        total -= 0.5 * loglik.sum(1)
        # Update.
        gain_pos, gain_vel = pred_var_pos / variance, pred_cov_pv / variance
        pos[:, :n] = pred_pos + gain_pos * innovation
        vel[:, :n] = v + gain_vel * innovation
        var_pos[:, :n] = pred_var_pos - gain_pos * pred_var_pos
        cov_pv[:, :n] = pred_cov_pv - gain_pos * pred_cov_pv
        var_vel[:, :n] = pred_var_vel - gain_vel * pred_cov_pv
    return total


def fit_noise(
    tracks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], fps: float, prior: MotionNoise
) -> MotionNoise | None:
    """The ``q`` and ``r`` of every coordinate that maximise the composite likelihood.

    Args:
        tracks: per track ``(frames (L,), boxes_xyxy (L, 4), noise_scale (L,))`` (see
            :func:`pack_tracks`).
        fps: frames per second.
        prior: the model's constants: the grid's first centre; ``p_vel`` is kept.

    Returns:
        The fitted constants, or None when no track is long enough to fit.

    The sum of :func:`innovations_loglik` over the horizons of :data:`FIT_HORIZONS` is
    maximised on a coarse-to-fine grid in log space, centred on ``prior`` and then on each
    round's best.
    """
    batches = []
    for horizon in FIT_HORIZONS:
        pieces = [
            (frames[k::horizon], boxes[k::horizon], scale[k::horizon])
            for frames, boxes, scale in tracks
            for k in range(horizon)
        ]
        batch = pack_tracks(pieces)
        if batch is not None:
            batches.append(batch)
    if not batches:
        return None
    batch = _stack(batches)  # one filter pass per grid round for every horizon
    best_q, best_r = prior.q.copy(), prior.r.copy()
    columns = np.arange(4)
    for factor, side in _GRID_ROUNDS:
        steps = factor ** np.arange(-side, side + 1)
        q_steps, r_steps = (grid.reshape(-1, 1) for grid in np.meshgrid(steps, steps))
        q = np.clip(best_q * q_steps, *Q_BOUNDS)
        r = np.clip(best_r * r_steps, *R_BOUNDS)
        loglik = innovations_loglik(batch, fps, q, r, prior.p_vel)
        pick = loglik.argmax(0)
        best_q, best_r = q[pick, columns], r[pick, columns]
    return MotionNoise(q=best_q, r=best_r, p_vel=prior.p_vel)


def extrapolation_errors(batch: TrackBatch, fps: float, noise: MotionNoise) -> np.ndarray:
    """How well the filtered positions and the detections themselves estimate the objects.

    Over the tracks' consecutive detections, the filter (with ``noise``) extrapolates each
    object one frame with its velocity from either its filtered position or its latest
    detection; the next detection, whose noise neither has seen, scores both.

    Returns:
        ``(N, 2)``: per track, the mean squared error (over its detections and the four
        coordinates, in squared box heights) from the filtered positions and from the
        detections; NaN for a track with no consecutive detections.
    """
    h2 = np.square(batch.heights)
    pos = batch.observations[:, 0].copy()
    vel = np.zeros_like(pos)
    var_pos = noise.r * h2[:, 0, None] * batch.noise_scale[:, 0, None]
    cov_pv = np.zeros_like(pos)
    var_vel = noise.p_vel * h2[:, 0, None]
    last = batch.observations[:, 0].copy()
    sums = np.zeros((len(pos), 2))
    counts = np.zeros(len(pos))
    for k in range(1, batch.observations.shape[1]):
        seen = batch.observed[:, k]
        if not seen.any():
            break
        dt = (batch.steps[:, k] / fps)[:, None]
        qh = noise.q * h2[:, k - 1, None]
        observation = batch.observations[:, k]
        step = dt * vel
        next_frame = seen & (batch.steps[:, k] == 1)
        scale = h2[:, k, None]
        sums[:, 0] += np.sum(np.square(observation - pos - step) / scale, 1) * next_frame
        sums[:, 1] += np.sum(np.square(observation - last - step) / scale, 1) * next_frame
        counts += 4 * next_frame
        pred_pos = pos + step
        pred_var_pos = var_pos + 2 * dt * cov_pv + dt * dt * var_vel + qh * dt**3 / 3
        pred_cov_pv = cov_pv + dt * var_vel + qh * dt**2 / 2
        pred_var_vel = var_vel + qh * dt
        variance = pred_var_pos + noise.r * h2[:, k, None] * batch.noise_scale[:, k, None]
        innovation = observation - pred_pos
        gain_pos, gain_vel = pred_var_pos / variance, pred_cov_pv / variance
        mask = seen[:, None]
        pos = np.where(mask, pred_pos + gain_pos * innovation, pos)
        vel = np.where(mask, vel + gain_vel * innovation, vel)
        var_pos = np.where(mask, pred_var_pos - gain_pos * pred_var_pos, var_pos)
        cov_pv = np.where(mask, pred_cov_pv - gain_pos * pred_cov_pv, cov_pv)
        var_vel = np.where(mask, pred_var_vel - gain_vel * pred_cov_pv, var_vel)
        last = np.where(mask, observation, last)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def detections_estimate_better(errors: np.ndarray) -> bool:
    """Whether the detections beat the filter significantly, per :func:`extrapolation_errors`:
    the tracks' paired differences (filtered minus detections) have a t statistic above
    :data:`SIGNIFICANT_T` (the model's own estimate is kept unless the data clearly say
    otherwise; tracks are the independent units, their detections are not)."""
    difference = errors[:, 0] - errors[:, 1]
    difference = difference[np.isfinite(difference)]
    if len(difference) < 2:
        return False
    spread = float(np.std(difference, ddof=1))
    if spread == 0.0:
        return bool(np.mean(difference) > 0)
    return float(np.mean(difference)) / (spread / np.sqrt(len(difference))) > SIGNIFICANT_T


#: One-sided t threshold of :func:`detections_estimate_better` (about 2.5 % by chance).
SIGNIFICANT_T = 2.0


def score_noise_scale(probabilities: np.ndarray) -> np.ndarray:
    """A detection's measurement variance over ``r h²`` under score-scaled noise: ``1 / p``,
    ``p`` clipped to ``[MIN_NOISE_SCORE, 1]`` (as :class:`~emtrack.track.Tracker` does)."""
    return 1.0 / np.clip(probabilities, MIN_NOISE_SCORE, 1.0)

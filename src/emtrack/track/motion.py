"""Batched constant-velocity Kalman filter for tracks, in numpy (no torch per frame).

Each track has D = 4 coordinates ``[x_centre, y_bottom, width, height]``, each with a position
and a velocity, moving independently. The noise constants (:class:`MotionNoise`) are per
coordinate and per squared box height, so the model is scale-invariant: means are
``(K, 2, D)`` (position, velocity), covariances ``(K, 3, D)``, the distinct entries
``[var_pos, cov_pos_vel, var_vel]`` of each coordinate's ``2 x 2`` matrix, so that a step is a
few whole-array operations. The online tracker and the offline pass share these functions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

MIN_SIDE = 1.0

#: The state's coordinates, in order (the last axis of means and covariances).
COORDINATES: tuple[str, ...] = ("x_centre", "y_bottom", "width", "height")


@dataclass(frozen=True)
class MotionNoise:
    """Noise constants of the constant-velocity model, one per coordinate (:data:`COORDINATES`).

    All are per squared box height (px² / h²), so the same constants serve near and far objects.

    Attributes:
        q: ``(4,)`` white-noise acceleration intensity (per second³): how fast velocities change.
        r: ``(4,)`` detection noise: a detection's variance is ``r h²``.
        p_vel: ``(4,)`` velocity variance of a new track (per second²).
    """

    q: np.ndarray
    r: np.ndarray
    p_vel: np.ndarray

    def __post_init__(self) -> None:
        for name in ("q", "r", "p_vel"):
            value = np.array(np.broadcast_to(np.asarray(getattr(self, name), float), (4,)))
            if not (np.isfinite(value).all() and (value > 0).all()):
                raise ValueError(f"MotionNoise.{name} must be 4 finite numbers > 0, got {value}")
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def describe(self) -> str:
        """One line: each constant per coordinate, e.g. for ``emtrack track -v``."""
        parts = []
        for name in ("q", "r"):
            values = ", ".join(f"{v:.3g}" for v in getattr(self, name))
            parts.append(f"{name} [{values}]")
        return "noise per coordinate (x, y, w, h): " + "; ".join(parts)


def boxes_to_state(boxes_xyxy: np.ndarray) -> np.ndarray:
    """``(K, 4)`` xyxy -> ``(K, 4)`` ``[x_centre, y_bottom, width, height]``."""
    return np.asarray(boxes_xyxy, dtype=float) @ _TO_STATE


# ``boxes_to_state`` and ``state_to_boxes`` as matrix products. Every coefficient is 0, ±1 or
# 0.5, so each product is exact and a sum rounds once: the same result as ``(x1 + x2) * 0.5``,
# ``x2 - x1``, ``xc - 0.5 * w`` computed one by one.
_TO_STATE = np.array(
    [[0.5, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, -1.0], [0.5, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
)
_TO_BOXES = np.array(
    [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [-0.5, 0.0, 0.5, 0.0], [0.0, -1.0, 0.0, 0.0]]
)
_TO_STATE.flags.writeable = _TO_BOXES.flags.writeable = False


def state_to_boxes(obs: np.ndarray) -> np.ndarray:
    """``(..., 4)`` ``[x_centre, y_bottom, width, height]`` -> xyxy (sides floored at 1 px)."""
    w = np.maximum(obs[..., 2], MIN_SIDE)
    h = np.maximum(obs[..., 3], MIN_SIDE)
    return np.stack(
        [obs[..., 0] - 0.5 * w, obs[..., 1] - h, obs[..., 0] + 0.5 * w, obs[..., 1]], -1
    )


def smooth_track(
    frames: np.ndarray,
    boxes_xyxy: np.ndarray,
    fps: float,
    noise: MotionNoise,
    max_gap: int,
) -> tuple[np.ndarray, np.ndarray]:
    """RTS-smoothed boxes of one trajectory, with gaps of up to ``max_gap`` frames filled.

    Args:
        frames: ``(L,)`` increasing frame numbers of the track's detections.
        boxes_xyxy: ``(L, 4)``.
        fps: frames per second.
        noise: the motion model's constants.
        max_gap: longest gap (frames) to fill.

    Returns:
        ``(frames_out, boxes_out)``: every frame from first to last except inside gaps longer
        than ``max_gap`` (those stay empty), with smoothed boxes.
    """
    first, last = int(frames[0]), int(frames[-1])
    span = last - first + 1
    observed = np.zeros(span, bool)
    observed[frames - first] = True
    obs = np.zeros((span, 4))
    obs[frames - first] = boxes_to_state(boxes_xyxy)
    dt = 1.0 / fps
    mean, cov = initial_tracks(boxes_xyxy[:1], noise.r, noise.p_vel)
    f_means = np.zeros((span, 2, 4))
    f_covs = np.zeros((span, 3, 4))
    p_covs = np.zeros((span, 3, 4))
    p_means = np.zeros((span, 2, 4))
    f_means[0], f_covs[0] = mean[0], cov[0]
    for k in range(1, span):
        predict_tracks(mean, cov, dt, noise.q)
        p_means[k], p_covs[k] = mean[0], cov[0]
        if observed[k]:
            mean, cov = update_tracks(mean, cov, state_to_boxes(obs[k : k + 1]), noise.r)
        f_means[k], f_covs[k] = mean[0], cov[0]
    s_mean = f_means.copy()
    for k in range(span - 2, -1, -1):
        # Gain C_f Fᵀ P⁻¹ of each coordinate's 2 x 2 blocks (F = [[1, dt], [0, 1]]).
        a, b, d = f_covs[k]
        pa, pb, pd = p_covs[k + 1]
        cross = np.array([[a + dt * b, b], [b + dt * d, d]])  # C_f Fᵀ, (2, 2, 4)
        det = pa * pd - pb * pb
        inverse = np.array([[pd, -pb], [-pb, pa]]) / det
        gain = np.einsum("ijc,jkc->ikc", cross, inverse)
        s_mean[k] = f_means[k] + np.einsum("ijc,jc->ic", gain, s_mean[k + 1] - p_means[k + 1])
    # Keep frames inside short gaps only.
    keep = observed.copy()
    gap_start = None
    for k in range(span):
        if not observed[k] and gap_start is None:
            gap_start = k
        elif observed[k] and gap_start is not None:
            if k - gap_start <= max_gap:
                keep[gap_start:k] = True
            gap_start = None
    out_frames = np.arange(first, last + 1)[keep]
    return out_frames, state_to_boxes(s_mean[keep, 0])


def covariance_matrix(cov: np.ndarray) -> np.ndarray:
    """``(..., 3, D)`` ``[var_pos, cov_pos_vel, var_vel]`` -> the ``(..., D, 2, 2)`` matrices."""
    moved = np.moveaxis(cov, -2, -1)
    return moved[..., (0, 1, 1, 2)].reshape(*moved.shape[:-1], 2, 2)


def initial_tracks(
    boxes_xyxy: np.ndarray, r: np.ndarray, p_vel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """New tracks at detections ``(K, 4)``: means ``(K, 2, 4)`` (zero velocity), covariances
    ``(K, 3, 4)`` ``[r h², 0, p_vel h²]`` (``r`` ``(4,)`` for all or ``(K, 4)``; ``p_vel``
    ``(4,)``)."""
    mean = np.zeros((len(boxes_xyxy), 2, 4))
    obs = np.matmul(boxes_xyxy, _TO_STATE, out=mean[:, 0])
    h2 = np.maximum(obs[:, 3], MIN_SIDE)
    np.square(h2, out=h2)
    cov = np.zeros((len(boxes_xyxy), 3, 4))
    np.multiply(r, h2[:, None], out=cov[:, 0])
    np.multiply(p_vel, h2[:, None], out=cov[:, 2])
    return mean, cov


def predict_tracks(mean: np.ndarray, cov: np.ndarray, dt: float, q: np.ndarray) -> None:
    """Constant-velocity step of ``dt`` seconds for every track, in place.

    ``mean += [dt * velocity, 0]``; each coordinate's ``cov`` becomes ``F C Fᵀ + Q`` with the
    per-second white-noise acceleration ``Q = q h² [[dt³/3, dt²/2], [dt²/2, dt]]`` (``q``
    ``(4,)``, ``h`` the track's height).
    """
    qh = np.maximum(mean[:, 0, 3], MIN_SIDE)
    np.square(qh, out=qh)
    step, dt2, powers = _step_constants(dt)
    mean[:, 0] += dt * mean[:, 1]
    cov_step = cov[:, 1:3] * step  # [2 dt b, dt d]
    cov[:, 0:2] += cov_step
    cov[:, 0] += dt2 * cov[:, 2]
    noise = np.multiply(qh[:, None], q)[:, None] * powers  # (K, 3, 4)
    noise /= _NOISE_DIVISORS
    cov += noise


_NOISE_DIVISORS = np.array([3.0, 2.0, 1.0])[:, None]
_NOISE_DIVISORS.flags.writeable = False


@functools.lru_cache(maxsize=16)
def _step_constants(dt: float) -> tuple[np.ndarray, float, np.ndarray]:
    """``([[2 dt], [dt]], dt**2, [[dt**3], [dt**2], [dt]])`` (``dt**3`` as numpy's array
    power)."""
    cube = float(np.power(np.array([dt]), 3)[0])
    step = np.array([[2 * dt], [dt]])
    powers = np.array([[cube], [dt * dt], [dt]])
    step.flags.writeable = powers.flags.writeable = False
    return step, dt * dt, powers


def update_tracks(
    mean: np.ndarray, cov: np.ndarray, boxes_xyxy: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kalman update of tracks ``(K, 2, 4)`` / ``(K, 3, 4)`` with one detection each ``(K, 4)``.

    Only positions are observed, with variance ``r h²`` (``h`` the detection's height).
    """
    return correct_tracks(mean, cov, *innovations(mean, cov, boxes_xyxy, r))


def innovations(
    mean: np.ndarray, cov: np.ndarray, boxes_xyxy: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Innovations of tracks ``(K, 2, 4)`` / ``(K, 3, 4)`` with one detection each ``(K, 4)``.

    ``r`` is the measurement noise per squared height, ``(4,)`` for all detections or
    ``(K, 4)``.

    Returns:
        ``(y, s)``: ``y`` ``(K, 4)`` the detection's ``[x_centre, y_bottom, width, height]``
        minus the track's, ``s`` ``(K, 4)`` its variance per coordinate: the track's
        position variance plus the detection's ``r h²``.
    """
    obs = boxes_xyxy @ _TO_STATE
    h2 = np.maximum(obs[:, 3], MIN_SIDE)
    np.square(h2, out=h2)
    s = np.multiply(r, h2[:, None])
    s += cov[:, 0]
    obs -= mean[:, 0]
    return obs, s


def correct_tracks(
    mean: np.ndarray, cov: np.ndarray, innovation: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The Kalman update of :func:`update_tracks` from :func:`innovations`' ``(y, s)``."""
    gain = cov[:, 0:2] / s[:, None]  # (K, 2, 4)
    new_mean = gain * innovation[:, None]
    new_mean += mean
    new_cov = np.empty_like(cov)
    np.multiply(cov[:, 0:2], cov[:, 0:1], out=new_cov[:, 0:2])  # [a a, b a]
    np.multiply(cov[:, 1], cov[:, 1], out=new_cov[:, 2])  # b b
    new_cov /= s[:, None]
    np.subtract(cov, new_cov, out=new_cov)
    return new_mean, new_cov


def predicted_boxes(mean: np.ndarray) -> np.ndarray:
    """:func:`state_to_boxes` of the positions of means ``(K, 2, 4)`` -> ``(K, 4)`` xyxy."""
    return position_boxes(mean[:, 0].copy())


def position_boxes(positions: np.ndarray) -> np.ndarray:
    """:func:`state_to_boxes` of ``(K, 4)`` positions, which it overwrites (sides floored)."""
    np.maximum(positions[:, 2:4], MIN_SIDE, out=positions[:, 2:4])
    return positions @ _TO_BOXES

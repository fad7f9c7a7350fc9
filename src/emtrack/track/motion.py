"""Batched constant-velocity Kalman filter for tracks, in numpy (no torch per frame).

Each track has D = 4 coordinates ``[x_centre, y_bottom, width, height]``, each with a position
and a velocity. The model and noise are the same for all coordinates (scaled by the track's
height), so one ``(2, 2)`` covariance per track serves all four: means are ``(K, 2, D)``,
covariances ``(K, 2, 2)`` — the same structure as the training filter.
"""

from __future__ import annotations

import numpy as np

MIN_SIDE = 1.0


def boxes_to_state(boxes_xyxy: np.ndarray) -> np.ndarray:
    """``(K, 4)`` xyxy -> ``(K, 4)`` ``[x_centre, y_bottom, width, height]``."""
    out = np.empty_like(boxes_xyxy, dtype=float)
    out[:, 0] = (boxes_xyxy[:, 0] + boxes_xyxy[:, 2]) * 0.5
    out[:, 1] = boxes_xyxy[:, 3]
    out[:, 2] = boxes_xyxy[:, 2] - boxes_xyxy[:, 0]
    out[:, 3] = boxes_xyxy[:, 3] - boxes_xyxy[:, 1]
    return out


def state_to_boxes(obs: np.ndarray) -> np.ndarray:
    """``(..., 4)`` ``[x_centre, y_bottom, width, height]`` -> xyxy (sides floored at 1 px)."""
    w = np.maximum(obs[..., 2], MIN_SIDE)
    h = np.maximum(obs[..., 3], MIN_SIDE)
    return np.stack(
        [obs[..., 0] - 0.5 * w, obs[..., 1] - h, obs[..., 0] + 0.5 * w, obs[..., 1]], -1
    )


def initial_state(boxes_xyxy: np.ndarray, r: float, p_vel: float) -> tuple[np.ndarray, np.ndarray]:
    """New tracks at detections: means ``(K, 2, 4)`` (zero velocity), covariances ``(K, 2, 2)``."""
    obs = boxes_to_state(boxes_xyxy)
    mean = np.zeros((len(obs), 2, 4))
    mean[:, 0] = obs
    h2 = np.maximum(obs[:, 3], MIN_SIDE) ** 2
    cov = np.zeros((len(obs), 2, 2))
    cov[:, 0, 0] = r * h2
    cov[:, 1, 1] = p_vel * h2
    return mean, cov


def predict(
    mean: np.ndarray, cov: np.ndarray, dt: float | np.ndarray, q: float
) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity step of ``dt`` seconds (scalar or ``(K,)``) for every track."""
    dt = np.broadcast_to(np.asarray(dt, float), (len(mean),))
    h2 = np.maximum(mean[:, 0, 3], MIN_SIDE) ** 2
    new_mean = mean.copy()
    new_mean[:, 0] += dt[:, None] * mean[:, 1]
    a, b, d = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    qh = q * h2
    new_cov = np.empty_like(cov)
    new_cov[:, 0, 0] = a + 2 * dt * b + dt * dt * d + qh * dt**3 / 3
    new_cov[:, 0, 1] = new_cov[:, 1, 0] = b + dt * d + qh * dt**2 / 2
    new_cov[:, 1, 1] = d + qh * dt
    return new_mean, new_cov


def update(
    mean: np.ndarray, cov: np.ndarray, boxes_xyxy: np.ndarray, r: float
) -> tuple[np.ndarray, np.ndarray]:
    """Kalman update of tracks ``(K, …)`` with one detection each ``(K, 4)``."""
    obs = boxes_to_state(boxes_xyxy)
    s = cov[:, 0, 0] + r * np.maximum(obs[:, 3], MIN_SIDE) ** 2
    gain = cov[:, :, 0] / s[:, None]  # (K, 2)
    new_mean = mean + gain[:, :, None] * (obs - mean[:, 0])[:, None, :]
    a, b, d = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    new_cov = np.empty_like(cov)
    new_cov[:, 0, 0] = a - a * a / s
    new_cov[:, 0, 1] = new_cov[:, 1, 0] = b - a * b / s
    new_cov[:, 1, 1] = d - b * b / s
    return new_mean, new_cov


def smooth_track(
    frames: np.ndarray,
    boxes_xyxy: np.ndarray,
    fps: float,
    q: float,
    r: float,
    p_vel: float,
    max_gap: int,
) -> tuple[np.ndarray, np.ndarray]:
    """RTS-smoothed boxes of one trajectory, with gaps of up to ``max_gap`` frames filled.

    Args:
        frames: ``(L,)`` increasing frame numbers of the track's detections.
        boxes_xyxy: ``(L, 4)``.

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
    mean, cov = initial_state(boxes_xyxy[:1], r, p_vel)
    f_means = np.zeros((span, 2, 4))
    f_covs = np.zeros((span, 2, 2))
    p_covs = np.zeros((span, 2, 2))
    p_means = np.zeros((span, 2, 4))
    f_means[0], f_covs[0] = mean[0], cov[0]
    for k in range(1, span):
        mean, cov = predict(mean, cov, dt, q)
        p_means[k], p_covs[k] = mean[0], cov[0]
        if observed[k]:
            mean, cov = update(mean, cov, state_to_boxes(obs[k : k + 1]), r)
        f_means[k], f_covs[k] = mean[0], cov[0]
    s_mean = f_means.copy()
    transition = np.array([[1.0, dt], [0.0, 1.0]])
    for k in range(span - 2, -1, -1):
        gain = f_covs[k] @ transition.T @ np.linalg.inv(p_covs[k + 1])
        s_mean[k] = f_means[k] + gain @ (s_mean[k + 1] - p_means[k + 1])
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

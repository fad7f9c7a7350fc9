"""Noise constants fitted to an input (``emtrack.track.noise_fit``)."""

from __future__ import annotations

import numpy as np
import pytest

from emtrack.track.motion import MotionNoise
from emtrack.track.noise_fit import fit_noise, innovations_loglik, pack_tracks

HEIGHT = 100.0


def _simulate(
    rng: np.random.Generator, q: np.ndarray, r: np.ndarray, count: int, length: int, fps: float
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Tracks of the constant-velocity model itself: white-noise acceleration ``q h²`` and
    detection noise ``r h²`` per coordinate, boxes about ``HEIGHT`` tall (``q`` of the sizes
    small enough that they stay so)."""
    dt = 1.0 / fps
    cov = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    chol = np.linalg.cholesky(cov)
    tracks = []
    for _ in range(count):
        start = np.array([rng.uniform(200, 1700), rng.uniform(400, 1000), 41.0, HEIGHT])
        position, velocity = start.copy(), rng.normal(0.0, 0.3 * HEIGHT, 4) * [1, 0.3, 0.05, 0.05]
        states = []
        for _ in range(length):
            states.append(position.copy())
            noise = (chol @ rng.normal(size=(2, 4))) * np.sqrt(q) * HEIGHT
            position = position + dt * velocity + noise[0]
            velocity = velocity + noise[1]
        observed = np.array(states) + rng.normal(size=(length, 4)) * np.sqrt(r) * HEIGHT
        x, y, w, h = observed.T
        boxes = np.stack([x - w / 2, y - h, x + w / 2, y], 1)
        tracks.append((np.arange(1, length + 1), boxes, np.ones(length)))
    return tracks


def test_fitted_noise_recovers_the_generating_noise() -> None:
    """On tracks drawn from the model, the fitted ``q`` and ``r`` of every coordinate are
    within a factor 1.6 of the generating ones (the grid's finest step is sqrt(2)), starting
    from a prior 10x off."""
    rng = np.random.default_rng(0)
    q = np.array([0.5, 0.2, 0.01, 0.005])
    r = np.array([4e-4, 1e-3, 2e-4, 3e-3])
    tracks = _simulate(rng, q, r, count=80, length=80, fps=25.0)
    prior = MotionNoise(q=q * 10, r=r / 10, p_vel=np.ones(4))
    fitted = fit_noise(tracks, 25.0, prior)
    assert fitted is not None
    np.testing.assert_array_less(np.abs(np.log(fitted.q / q)), np.log(1.6))
    np.testing.assert_array_less(np.abs(np.log(fitted.r / r)), np.log(1.6))
    short = [(frames[:3], boxes[:3], scale[:3]) for frames, boxes, scale in tracks]
    assert fit_noise(short, 25.0, prior) is None


def test_innovations_likelihood_equals_the_joint_gaussian() -> None:
    """The filter's prediction-error decomposition equals the brute-force joint density, for
    tracks with gaps and of different lengths, several candidates at once."""
    rng = np.random.default_rng(1)
    q0 = np.array([0.5, 0.2, 0.05, 0.1])
    r0 = np.array([4e-4, 1e-3, 2e-4, 3e-3])
    tracks = _simulate(rng, q0, r0, count=3, length=14, fps=10.0)
    # Gaps: drop some detections (the filter predicts across them), and keep heights exact.
    keep = [np.array([0, 1, 2, 4, 5, 9, 10, 11, 12, 13]), np.arange(12), np.arange(10)]
    tracks = [(f[k], b[k], s[k]) for (f, b, s), k in zip(tracks, keep, strict=True)]
    for _, boxes, _ in tracks:
        boxes[:, 1] = boxes[:, 3] - HEIGHT  # heights exactly HEIGHT, so h² is the brute's
    batch = pack_tracks(tracks, max_length=100)
    assert batch is not None
    candidates_q = np.stack([q0, 2 * q0])
    candidates_r = np.stack([r0, r0 / 3])
    p_vel = np.array([1.0, 0.5, 0.1, 0.1])
    fast = innovations_loglik(batch, 10.0, candidates_q, candidates_r, p_vel)
    for g in range(2):
        for c in range(4):
            expected = 0.0
            for frames, boxes, _ in tracks:
                q, r = candidates_q[g, c], candidates_r[g, c]
                expected += _gapped_joint(frames, boxes, 10.0, q, r, p_vel[c], c)
            assert fast[g, c] == pytest.approx(expected, rel=1e-9)


def _gapped_joint(frames, boxes, fps, q, r, p_vel, c) -> float:
    """Brute force: the log-density of a track's later detections (coordinate ``c``) as one
    joint Gaussian of the frame-by-frame model restricted to the observed frames, the state
    starting at the first detection (variance ``r h²``, velocity 0 with variance
    ``p_vel h²``)."""
    from emtrack.track.motion import boxes_to_state

    z = boxes_to_state(boxes)[:, c]
    span = int(frames[-1] - frames[0]) + 1
    h2 = HEIGHT**2
    dt = 1.0 / fps
    f = np.array([[1.0, dt], [0.0, 1.0]])
    qm = q * h2 * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    p0 = np.diag([r * h2, p_vel * h2])
    steps = [np.linalg.matrix_power(f, k) for k in range(span)]
    offsets = (frames - frames[0]).astype(int)[1:]
    n = len(offsets)
    mean = np.array([steps[k][0] @ np.array([z[0], 0.0]) for k in offsets])
    cov = np.zeros((n, n))
    for i, a in enumerate(offsets):
        for j, b in enumerate(offsets):
            value = steps[a][0] @ p0 @ steps[b][0]
            for m in range(1, min(a, b) + 1):
                value += steps[a - m][0] @ qm @ steps[b - m][0]
            cov[i, j] = value
    cov += r * h2 * np.eye(n)
    residual = z[1:] - mean
    _, log_det = np.linalg.slogdet(cov)
    return float(
        -0.5 * (n * np.log(2 * np.pi) + log_det + residual @ np.linalg.solve(cov, residual))
    )

"""Batched Kalman filter and Rauch–Tung–Striebel smoother in the structured form.

Every object (slot) has a position and a velocity in each of ``d`` image coordinates. The motion
model, the noise and the (soft) observation matrix are identical for all coordinates, so one
``(2N, 2N)`` covariance serves them all while the means are ``(2N, d)`` matrices — instead of the
naive ``(2dN, 2dN)`` joint state (kept in :mod:`emtrack.model.dense` as the test oracle).

State order inside one coordinate: ``[pos_1 … pos_N, vel_1 … vel_N]``.

Noise model (continuous white-noise acceleration, scaled by object size so that one set of
constants fits every resolution and frame rate):

* process: ``Q_i = q h_i² [[dt³/3, dt²/2], [dt²/2, dt]]`` (``q`` in heights²/s³),
* observation: ``R_j = r h_j²`` (``r`` in heights²),
* initial velocity variance ``p_vel h_i²`` (heights²/s²); the initial position is the slot's
  frame-0 detection with variance ``R``.

``h`` is the box height in pixels and ``dt`` the time between frames in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class NoiseParams:
    """Noise constants (scalar tensors, may carry gradients)."""

    q: torch.Tensor
    r: torch.Tensor
    p_vel: torch.Tensor

    def detach(self) -> NoiseParams:
        return NoiseParams(self.q.detach(), self.r.detach(), self.p_vel.detach())


@dataclass(frozen=True)
class ObservationModel:
    """Per-frame soft observation model of a clip (see :func:`observation_model`).

    Attributes:
        matrix: ``(B, T, N, N)`` maps slot positions to (weighted) detections, rows = detections.
        variance: ``(B, T, N)`` observation noise variance per detection (1 for padding).
        values: ``(B, T, N, d)`` weighted observations (0 for padding).
        weight: ``(B, T, N)`` slot mass ``m_j`` of each detection (0 for padding).
        mask: ``(B, T, N)`` real detections.
    """

    matrix: torch.Tensor
    variance: torch.Tensor
    values: torch.Tensor
    weight: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class FilterResult:
    """Output of :func:`kalman_filter` (index t = frame of the clip).

    Attributes:
        filtered_mean: ``(B, T, 2N, d)``; filtered_cov: ``(B, T, 2N, 2N)``.
        predicted_mean: ``(B, T, 2N, d)``; predicted_cov: ``(B, T, 2N, 2N)``
            (index 0 holds the initial state).
    """

    filtered_mean: torch.Tensor
    filtered_cov: torch.Tensor
    predicted_mean: torch.Tensor
    predicted_cov: torch.Tensor


def symmetrise(cov: torch.Tensor) -> torch.Tensor:
    return 0.5 * (cov + cov.transpose(-1, -2))


def safe_cholesky(matrix: torch.Tensor) -> torch.Tensor:
    """Cholesky factor, retrying with growing diagonal jitter where a matrix is not PD."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    if not bool((info > 0).any()):
        return factor
    scale = matrix.diagonal(dim1=-2, dim2=-1).abs().mean(-1).clamp_min(1e-12)
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    for rel in (1e-6, 1e-4, 1e-2, 1.0):
        jittered = matrix + (rel * scale)[..., None, None] * eye
        factor, info = torch.linalg.cholesky_ex(jittered)
        if not bool((info > 0).any()):
            return factor
    raise FloatingPointError("covariance is not positive definite even with jitter")


def observation_model(
    assignment_products: torch.Tensor,
    positions: torch.Tensor,
    heights: torch.Tensor,
    mask: torch.Tensor,
    r: torch.Tensor,
    eps: float = 1e-6,
) -> ObservationModel:
    """Soft observation model ``H_t`` from the association products ``P_t``.

    Detection ``j`` is explained by a slot with mass ``m_j = Σ_i P_t[j, i]`` and by clutter with
    mass ``1 - m_j``. Its Gaussian term is tempered by ``m_j`` (``R / m_j``), which is written as
    rows and observations scaled by ``√m_j`` so that ``m_j = 0`` is exact (the row is inert).

    Args:
        assignment_products: ``(B, T, N, N)`` ``P_t[j, i]``, detection j of frame t is slot i.
        positions: ``(B, T, N, d)`` observed positions.
        heights: ``(B, T, N)`` box heights (scale of the observation noise).
        mask: ``(B, T, N)`` real detections.
        r: observation variance in heights² (scalar tensor).
        eps: floor of ``m_j`` inside the square roots (keeps gradients finite).
    """
    maskf = mask.to(positions.dtype)
    weight = assignment_products.sum(-1) * maskf
    root = weight.clamp_min(eps).sqrt()
    matrix = assignment_products * (maskf / root)[..., None]
    values = positions * (weight / root)[..., None]
    variance = torch.where(mask, r * heights.square(), torch.ones_like(heights))
    return ObservationModel(matrix, variance, values, weight, mask)


def predict(
    mean: torch.Tensor,
    cov: torch.Tensor,
    dt: torch.Tensor,
    slot_heights: torch.Tensor,
    q: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One constant-velocity prediction step.

    Args:
        mean: ``(B, 2N, d)``; cov: ``(B, 2N, 2N)``; dt: ``(B,)`` seconds;
        slot_heights: ``(B, N)``; q: scalar tensor.

    Returns:
        Predicted ``(mean, cov)`` with the same shapes.
    """
    n = slot_heights.shape[-1]
    step = dt[:, None, None]
    pos, vel = mean[:, :n], mean[:, n:]
    new_mean = torch.cat([pos + step * vel, vel], 1)
    a, b, d_ = cov[:, :n, :n], cov[:, :n, n:], cov[:, n:, n:]
    a2 = a + step * (b + b.transpose(-1, -2)) + step.square() * d_
    b2 = b + step * d_
    qs = q * slot_heights.square()  # (B, N)
    dt1 = dt[:, None]
    q_pp = torch.diag_embed(qs * dt1**3 / 3.0)
    q_pv = torch.diag_embed(qs * dt1**2 / 2.0)
    q_vv = torch.diag_embed(qs * dt1)
    top = torch.cat([a2 + q_pp, b2 + q_pv], -1)
    bottom = torch.cat([b2.transpose(-1, -2) + q_pv, d_ + q_vv], -1)
    return new_mean, symmetrise(torch.cat([top, bottom], -2))


def initial_state(
    positions0: torch.Tensor, slot_heights: torch.Tensor, noise: NoiseParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior after frame 0: position = the frame-0 detection (variance R), velocity 0.

    Args:
        positions0: ``(B, N, d)``; slot_heights: ``(B, N)``.

    Returns:
        mean ``(B, 2N, d)``, cov ``(B, 2N, 2N)``.
    """
    h2 = slot_heights.square()
    mean = torch.cat([positions0, torch.zeros_like(positions0)], 1)
    cov = torch.diag_embed(torch.cat([noise.r * h2, noise.p_vel * h2], -1))
    return mean, cov


def gaussian_loglik(
    matrix: torch.Tensor,
    variance: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    pos_mean: torch.Tensor,
    pos_cov: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log N(values; H μ, H Σ Hᵀ + R)`` summed over coordinates, padding excluded.

    Args:
        matrix: ``(B, M, N)`` H (positions only); variance: ``(B, M)``; values: ``(B, M, d)``;
        mask: ``(B, M)``; pos_mean: ``(B, N, d)``; pos_cov: ``(B, N, N)``.

    Returns:
        ``(loglik (B,), cholesky of S (B, M, M), residual (B, M, d), H Σ (B, M, N))``.
    """
    d = values.shape[-1]
    h_cov = matrix @ pos_cov  # (B, M, N)
    innovation_cov = symmetrise(h_cov @ matrix.transpose(-1, -2)) + torch.diag_embed(variance)
    chol = safe_cholesky(innovation_cov)
    residual = values - matrix @ pos_mean
    whitened = torch.linalg.solve_triangular(chol, residual, upper=False)
    log_det = 2.0 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # padding rows add log 1 = 0
    count = mask.to(values.dtype).sum(-1)
    loglik = -0.5 * (whitened.square().sum((-2, -1)) + d * log_det + d * count * _LOG_2PI)
    return loglik, chol, residual, h_cov


def kalman_filter(
    obs: ObservationModel,
    positions0: torch.Tensor,
    slot_heights: torch.Tensor,
    dt: torch.Tensor,
    noise: NoiseParams,
) -> tuple[FilterResult, torch.Tensor]:
    """Forward pass over the clip, frames 1 … T-1 (frame 0 initialises the slots).

    Args:
        obs: observation model of the clip (frame 0 is not used).
        positions0: ``(B, N, d)`` frame-0 detections (the slots).
        slot_heights: ``(B, N)`` frame-0 box heights.
        dt: ``(B,)`` seconds between consecutive clip frames.
        noise: noise constants.

    Returns:
        The filter result and the innovations log-likelihood ``(B,)``,
        ``log p(z_1 … z_{T-1} | z_0)`` of the (tempered) observations.
    """
    n = slot_heights.shape[-1]
    mean, cov = initial_state(positions0, slot_heights, noise)
    f_means, f_covs, p_means, p_covs = [mean], [cov], [mean], [cov]
    loglik = torch.zeros(mean.shape[0], dtype=mean.dtype, device=mean.device)
    steps = obs.matrix.shape[1]
    for t in range(1, steps):
        mean, cov = predict(mean, cov, dt, slot_heights, noise.q)
        p_means.append(mean)
        p_covs.append(cov)
        matrix = obs.matrix[:, t]
        ll, chol, residual, h_cov = gaussian_loglik(
            matrix,
            obs.variance[:, t],
            obs.values[:, t],
            obs.mask[:, t],
            mean[:, :n],
            cov[:, :n, :n],
        )
        loglik = loglik + ll
        # Gain K = C Hᵀ S⁻¹ with C Hᵀ = [C_pp; C_vp] Hᵀ.
        cross = cov[:, :, :n] @ matrix.transpose(-1, -2)  # (B, 2N, M)
        gain = torch.cholesky_solve(cross.transpose(-1, -2), chol).transpose(-1, -2)
        mean = mean + gain @ residual
        cov = symmetrise(cov - gain @ cross.transpose(-1, -2))
        f_means.append(mean)
        f_covs.append(cov)
    result = FilterResult(
        torch.stack(f_means, 1),
        torch.stack(f_covs, 1),
        torch.stack(p_means, 1),
        torch.stack(p_covs, 1),
    )
    return result, loglik


def rts_smoother(filtered: FilterResult, dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Textbook Rauch–Tung–Striebel smoother.

    ``G_t = C_t Fᵀ (C⁻_{t+1})⁻¹``, ``m^s_t = m_t + G_t (m^s_{t+1} - m⁻_{t+1})``,
    ``C^s_t = C_t + G_t (C^s_{t+1} - C⁻_{t+1}) G_tᵀ``.

    Returns:
        smoothed mean ``(B, T, 2N, d)`` and covariance ``(B, T, 2N, 2N)``.
    """
    steps = filtered.filtered_mean.shape[1]
    n = filtered.filtered_mean.shape[2] // 2
    step = dt[:, None, None]
    mean_s = filtered.filtered_mean[:, -1]
    cov_s = filtered.filtered_cov[:, -1]
    means, covs = [mean_s], [cov_s]
    for t in range(steps - 2, -1, -1):
        cov_f = filtered.filtered_cov[:, t]
        pred_cov = filtered.predicted_cov[:, t + 1]
        # F C (C⁻)⁻¹ solved as C⁻ Gᵀ = F C.
        f_cov = torch.cat([cov_f[:, :n] + step * cov_f[:, n:], cov_f[:, n:]], 1)
        chol = safe_cholesky(pred_cov)
        gain = torch.cholesky_solve(f_cov, chol).transpose(-1, -2)  # (B, 2N, 2N)
        mean_s = filtered.filtered_mean[:, t] + gain @ (mean_s - filtered.predicted_mean[:, t + 1])
        cov_s = symmetrise(cov_f + gain @ (cov_s - pred_cov) @ gain.transpose(-1, -2))
        means.append(mean_s)
        covs.append(cov_s)
    means.reverse()
    covs.reverse()
    return torch.stack(means, 1), torch.stack(covs, 1)


def clutter_correction(obs: ObservationModel, log_clutter_density: torch.Tensor) -> torch.Tensor:
    """Terms that complete the tempered likelihood, frames 1 … T-1.

    For each detection ``(1 - m_j) [d/2 log(2π R_j) + log c]``: the part of a tempered Gaussian
    that the √m scaling leaves out, plus clutter/birth with density ``c`` (1 / image area).

    Args:
        obs: observation model; log_clutter_density: ``(B,)``.

    Returns:
        ``(B,)``.
    """
    d = obs.values.shape[-1]
    unexplained = (1.0 - obs.weight[:, 1:]) * obs.mask[:, 1:].to(obs.weight.dtype)
    per_det = 0.5 * d * (_LOG_2PI + obs.variance[:, 1:].log()) + log_clutter_density[:, None, None]
    return (unexplained * per_det).sum((-2, -1))


def posterior_loglik(
    obs: ObservationModel, means: torch.Tensor, covs: torch.Tensor
) -> torch.Tensor:
    """``Σ_{t≥1} log N(z̃_t; H_t m_t, H_t C_t H_tᵀ + R_t)`` for given posteriors (the paper's loss).

    Args:
        obs: observation model; means: ``(B, T, 2N, d)``; covs: ``(B, T, 2N, 2N)``.

    Returns:
        ``(B,)``.
    """
    n = means.shape[2] // 2
    b, steps = means.shape[:2]
    flat = lambda x: x[:, 1:].reshape(b * (steps - 1), *x.shape[2:])  # noqa: E731
    ll, *_ = gaussian_loglik(
        flat(obs.matrix),
        flat(obs.variance),
        flat(obs.values),
        flat(obs.mask),
        flat(means)[:, :n],
        flat(covs)[:, :n, :n],
    )
    return ll.reshape(b, steps - 1).sum(-1)

"""Batched Kalman filter and RTS-smoothed posterior in the structured form.

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

Speed (this is the training hot path; see ``emtrack bench train``): the covariance is kept as
its three ``(N, N)`` blocks ``C_pp, C_pv, C_vv``; each frame factors its innovation covariance
``S`` once (:func:`spd_inverse`: Cholesky, then ``S⁻¹`` and ``log |S|`` from the same factor,
with a matmul-only backward). The smoothed posterior is the Rauch–Tung–Striebel one:
:func:`rts_smoother` is the textbook recursion (Cholesky solves with the predicted covariance,
symmetrised); the loss gets the same posterior through the modified Bryson–Frazier recursion
(:func:`bryson_frazier_smoother`, :func:`smoothed_loglik`), which reuses the filter's ``S⁻¹``
and gains, needs no inverse of the ``(2N, 2N)`` predicted covariance, and yields ``H C Hᵀ`` in
closed form. Tests check both against the dense oracle and brute-force conditioning.
Loops run over frames only, never over clips or detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
class FilterStep:
    """What the filter keeps of a frame ``t ≥ 1`` for the smoother and the posterior likelihoods.

    With ``C⁻`` the predicted covariance, ``S = H C⁻_pp Hᵀ + R`` the innovation covariance and
    ``y = z̃ − H m⁻_p`` the innovation (``H`` acts on positions only).

    Attributes:
        matrix: ``(B, M, N)`` H.
        variance: ``(B, M)`` the diagonal of R.
        count: ``(B,)`` real detections of the frame.
        precision: ``(B, M, M)`` ``S⁻¹``.
        gain_t: ``(B, M, 2N)`` ``Kᵀ = S⁻¹ H C⁻[:N, :]``, the transposed Kalman gain.
        precision_residual: ``(B, M, d)`` ``S⁻¹ y``.
    """

    matrix: torch.Tensor
    variance: torch.Tensor
    count: torch.Tensor
    precision: torch.Tensor
    gain_t: torch.Tensor
    precision_residual: torch.Tensor


Moments = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class FilterResult:
    """Output of :func:`kalman_filter`, kept per frame (the training path never stacks it).

    Attributes:
        means: per frame ``(position, velocity)`` filtered means, ``(B, N, d)`` each.
        covs: per frame ``(C_pp, C_pv, C_vv)`` filtered covariance blocks, ``(B, N, N)`` each.
        steps: per frame ``t ≥ 1`` (index ``t − 1``) the :class:`FilterStep`.
        predicted: per frame ``t ≥ 1`` (index ``t − 1``) the predicted moments
            ``((m⁻_p, m⁻_v), (C⁻_pp, C⁻_pv, C⁻_vv))`` (kept for the textbook RTS smoother).
    """

    means: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    covs: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]
    steps: tuple[FilterStep, ...]
    predicted: tuple[Moments, ...]

    @property
    def filtered_mean(self) -> torch.Tensor:
        """``(B, T, 2N, d)``."""
        return torch.stack([torch.cat(mean, 1) for mean in self.means], 1)

    @property
    def filtered_cov(self) -> torch.Tensor:
        """``(B, T, 2N, 2N)``."""
        return torch.stack([join_blocks(*cov) for cov in self.covs], 1)


def symmetrise(cov: torch.Tensor) -> torch.Tensor:
    return 0.5 * (cov + cov.transpose(-1, -2))


def join_blocks(pp: torch.Tensor, pv: torch.Tensor, vv: torch.Tensor) -> torch.Tensor:
    """``[[pp, pv], [pvᵀ, vv]]``: ``(..., N, N)`` blocks -> ``(..., 2N, 2N)``."""
    top = torch.cat([pp, pv], -1)
    return torch.cat([top, torch.cat([pv.transpose(-1, -2), vv], -1)], -2)


def safe_cholesky(matrix: torch.Tensor) -> torch.Tensor:
    """Cholesky factor, retrying with growing diagonal jitter where a matrix is not PD.

    Only the matrices of the batch that fail get jitter (so a clip's result never depends on
    the other clips it is batched with): ``1e-6, 1e-4, 1e-2, 1`` times the mean ``|diagonal|``,
    then, as a last resort, the largest absolute row sum plus that mean, which makes any finite
    symmetric matrix strictly diagonally dominant and so positive definite. (In float32, ``H C Hᵀ``
    can lose far more than rounding-level definiteness when ``C`` has huge, strongly correlated
    entries; see docs/DECISIONS.md.) The jitter is a constant for autograd.

    Args:
        matrix: ``(..., M, M)`` symmetric.

    Returns:
        ``(..., M, M)`` lower-triangular factor of ``matrix`` (plus the jitter where needed).

    Raises:
        FloatingPointError: a matrix that Cholesky rejects has NaN or Inf entries.
    """
    factor, info = torch.linalg.cholesky_ex(matrix)
    failed = info > 0
    if not bool(failed.any()):
        return factor
    with torch.no_grad():
        if not bool(torch.isfinite(matrix).all()):
            raise FloatingPointError("covariance has NaN or Inf entries")
        scale = matrix.diagonal(dim1=-2, dim2=-1).abs().mean(-1).clamp_min(1e-12)
        dominant = matrix.abs().sum(-1).amax(-1) + scale
        jitter = torch.zeros_like(scale)
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    for level in (1e-6 * scale, 1e-4 * scale, 1e-2 * scale, scale, dominant):
        jitter = torch.where(failed, level, jitter)
        factor, info = torch.linalg.cholesky_ex(matrix + jitter[..., None, None] * eye)
        failed = info > 0
        if not bool(failed.any()):
            return factor
    raise FloatingPointError("covariance is not positive definite even with jitter")


class _SpdInverse(torch.autograd.Function):
    """``(S⁻¹, log |S|)`` from one Cholesky factorisation; matmul-only backward."""

    @staticmethod
    def forward(ctx: Any, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        factor = safe_cholesky(matrix)
        inverse = torch.cholesky_inverse(factor)
        log_det = 2.0 * factor.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        ctx.save_for_backward(inverse)
        return inverse, log_det

    @staticmethod
    def backward(
        ctx: Any, grad_inverse: torch.Tensor | None, grad_log_det: torch.Tensor | None
    ) -> torch.Tensor:
        (inverse,) = ctx.saved_tensors
        grad = torch.zeros_like(inverse)
        if grad_log_det is not None:
            grad = grad + grad_log_det[..., None, None] * inverse  # d log|S| = tr(S⁻¹ dS)
        if grad_inverse is not None:
            grad = grad - inverse @ grad_inverse @ inverse  # d S⁻¹ = −S⁻¹ dS S⁻¹
        return grad


def spd_inverse(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse and log-determinant of symmetric positive definite matrices.

    One Cholesky factorisation (:func:`safe_cholesky`, so jitter where a matrix is not PD)
    gives both; the backward uses ``S⁻¹`` only (two matmuls), which on CPU is several times
    cheaper than differentiating through the factorisation and triangular solves.

    Args:
        matrix: ``(..., M, M)`` symmetric positive definite.

    Returns:
        ``(inverse (..., M, M), log_det (...))``.
    """
    inverse, log_det = _SpdInverse.apply(matrix)
    return inverse, log_det


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


def process_noise(
    dt: torch.Tensor, slot_heights: torch.Tensor, q: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The blocks ``(Q_pp, Q_pv, Q_vv)`` of the process noise, ``(B, N, N)`` each (diagonal).

    Args:
        dt: ``(B,)`` seconds; slot_heights: ``(B, N)``; q: scalar tensor.
    """
    qs = q * slot_heights.square()  # (B, N)
    dt1 = dt[:, None]
    return (
        torch.diag_embed(qs * dt1**3 / 3.0),
        torch.diag_embed(qs * dt1**2 / 2.0),
        torch.diag_embed(qs * dt1),
    )


def predict(
    mean: tuple[torch.Tensor, torch.Tensor],
    cov: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    step: torch.Tensor,
    noise_blocks: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> Moments:
    """One constant-velocity prediction step ``F m``, ``F C Fᵀ + Q`` on the blocks.

    Args:
        mean: ``(position, velocity)``, ``(B, N, d)`` each.
        cov: ``(C_pp, C_pv, C_vv)``, ``(B, N, N)`` each (symmetric ``C``).
        step: ``(B, 1, 1)`` seconds.
        noise_blocks: from :func:`process_noise`.

    Returns:
        The predicted ``(mean, cov)`` blocks (exactly symmetric when ``C`` is).
    """
    pos, vel = mean
    pp, pv, vv = cov
    q_pp, q_pv, q_vv = noise_blocks
    pp = pp + step * (pv + pv.transpose(-1, -2)) + step.square() * vv + q_pp
    return (pos + step * vel, vel), (pp, pv + step * vv + q_pv, vv + q_vv)


def initial_state(
    positions0: torch.Tensor, slot_heights: torch.Tensor, noise: NoiseParams
) -> Moments:
    """Posterior after frame 0: position = the frame-0 detection (variance R), velocity 0.

    Args:
        positions0: ``(B, N, d)``; slot_heights: ``(B, N)``.

    Returns:
        ``((position, velocity), (C_pp, C_pv, C_vv))`` as in :func:`predict`.
    """
    h2 = slot_heights.square()
    pp = torch.diag_embed(noise.r * h2)
    return (positions0, torch.zeros_like(positions0)), (
        pp,
        torch.zeros_like(pp),
        torch.diag_embed(noise.p_vel * h2),
    )


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


def kalman_update(
    prior: Moments,
    matrix: torch.Tensor,
    variance: torch.Tensor,
    observation_noise: torch.Tensor,
    values: torch.Tensor,
    count: torch.Tensor,
) -> tuple[Moments, FilterStep, torch.Tensor]:
    """One measurement update on the covariance blocks (see :func:`kalman_filter`).

    Args:
        prior: the predicted moments of :func:`predict`.
        matrix: ``(B, M, N)`` H; variance: ``(B, M)`` the diagonal of R;
        observation_noise: ``(B, M, M)`` R; values: ``(B, M, d)``; count: ``(B,)`` real rows.

    Returns:
        The filtered moments, the :class:`FilterStep` and the frame's innovation
        log-likelihood ``(B,)``.
    """
    (pos, vel), (pp, pv, vv) = prior
    n = pos.shape[-2]
    d = pos.shape[-1]
    cross = matrix @ torch.cat([pp, pv], -1)  # H C⁻[:N, :], (B, M, 2N)
    cross_p, cross_v = cross.split(n, -1)
    innovation_cov = torch.baddbmm(observation_noise, cross_p, matrix.transpose(-1, -2))
    precision, log_det = spd_inverse(innovation_cov)
    residual = values - matrix @ pos
    solved = precision @ torch.cat([cross, residual], -1)
    gain_t, precision_residual = solved.split([2 * n, d], -1)
    quadratic = (residual * precision_residual).sum((-2, -1))
    loglik = -0.5 * (quadratic + d * log_det + (d * _LOG_2PI) * count)
    d_pos, d_vel = (cross.transpose(-1, -2) @ precision_residual).split(n, 1)
    update_pp, update_pv = (cross_p.transpose(-1, -2) @ gain_t).split(n, -1)
    update_vv = cross_v.transpose(-1, -2) @ gain_t[..., n:]
    mean = (pos + d_pos, vel + d_vel)
    cov = (symmetrise(pp - update_pp), pv - update_pv, symmetrise(vv - update_vv))
    step = FilterStep(matrix, variance, count, precision, gain_t, precision_residual)
    return (mean, cov), step, loglik


def kalman_filter(
    obs: ObservationModel,
    positions0: torch.Tensor,
    slot_heights: torch.Tensor,
    dt: torch.Tensor,
    noise: NoiseParams,
) -> tuple[FilterResult, torch.Tensor]:
    """Forward pass over the clip, frames 1 … T-1 (frame 0 initialises the slots).

    Per frame: ``S = H C⁻_pp Hᵀ + R`` is factored once (:func:`spd_inverse`),
    ``Kᵀ = S⁻¹ H C⁻[:N, :]``, ``m = m⁻ + K y`` and ``C = C⁻ − (H C⁻[:N, :])ᵀ Kᵀ``.

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
    step = dt[:, None, None]
    noise_blocks = process_noise(dt, slot_heights, noise.q)
    mean, cov = initial_state(positions0, slot_heights, noise)
    means, covs, steps, predicted = [mean], [cov], [], []
    loglik = positions0.new_zeros(positions0.shape[0])
    # Per-frame views through unbind: one backward node per input, not a gradient per frame.
    matrices = obs.matrix.unbind(1)
    variances = obs.variance.unbind(1)
    observation_noise = torch.diag_embed(obs.variance).unbind(1)
    values = obs.values.unbind(1)
    counts = obs.mask.to(positions0.dtype).sum(-1).unbind(1)
    for t in range(1, len(matrices)):
        prior = predict(mean, cov, step, noise_blocks)
        predicted.append(prior)
        (mean, cov), filter_step, frame_loglik = kalman_update(
            prior, matrices[t], variances[t], observation_noise[t], values[t], counts[t]
        )
        loglik = loglik + frame_loglik
        means.append(mean)
        covs.append(cov)
        steps.append(filter_step)
    return FilterResult(tuple(means), tuple(covs), tuple(steps), tuple(predicted)), loglik


Adjoint = tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _bryson_frazier(
    filtered: FilterResult, dt: torch.Tensor
) -> tuple[list[Adjoint | None], list[tuple[torch.Tensor, torch.Tensor] | None]]:
    """Modified Bryson–Frazier backward recursion (Bierman 1973).

    With ``Λ̂_{T-1} = 0``, ``λ̂_{T-1} = 0`` and, for ``t = T-1 … 1``, ``Ĉ = I − K H``:
    ``Λ̃_t = Hᵀ S⁻¹ H + Ĉᵀ Λ̂_t Ĉ``, ``λ̃_t = −Hᵀ S⁻¹ y + Ĉᵀ λ̂_t``,
    ``Λ̂_{t-1} = Fᵀ Λ̃_t F``, ``λ̂_{t-1} = Fᵀ λ̃_t``. The smoothed posterior is then
    ``m^s_t = m_t − C_t λ̂_t`` and ``C^s_t = C_t − C_t Λ̂_t C_t`` (the RTS result).

    Returns:
        Per frame t the adjoint ``((Λ̂_pp, Λ̂_pv, Λ̂_vv), (λ̂_p, λ̂_v))`` (None for the last
        frame, where it is 0), and per frame ``t ≥ 1`` (index ``t − 1``) the pair
        ``(Kᵀ Λ̂_t K (B, M, M), Kᵀ λ̂_t (B, M, d))`` (None for the last frame).
    """
    n = filtered.covs[0][0].shape[-1]
    step = dt[:, None, None]
    steps = filtered.steps
    adjoints: list[Adjoint | None] = [None] * (len(steps) + 1)
    projected: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(steps)
    adjoint: Adjoint | None = None
    for k in range(len(steps) - 1, -1, -1):
        adjoints[k + 1] = adjoint
        st = steps[k]
        matrix_t = st.matrix.transpose(-1, -2)
        if adjoint is None:  # Λ̂ = 0, λ̂ = 0
            lam_pp = matrix_t @ (st.precision @ st.matrix)
            lam_p = -(matrix_t @ st.precision_residual)
            lam_pv = step * lam_pp
            adjoint = ((lam_pp, lam_pv, step * lam_pv), (lam_p, step * lam_p))
            continue
        (a_pp, a_pv, a_vv), (a_p, a_v) = adjoint
        x = st.gain_t @ join_blocks(a_pp, a_pv, a_vv)  # Kᵀ Λ̂, (B, M, 2N)
        y = x @ st.gain_t.transpose(-1, -2)  # Kᵀ Λ̂ K
        z = st.gain_t @ torch.cat([a_p, a_v], 1)  # Kᵀ λ̂
        ah_p, ah_v = (x.transpose(-1, -2) @ st.matrix).split(n, 1)  # Λ̂ K H
        lam_pp = a_pp - ah_p - ah_p.transpose(-1, -2) + matrix_t @ ((st.precision + y) @ st.matrix)
        lam_pv = a_pv - ah_v.transpose(-1, -2)
        lam_p = a_p - matrix_t @ (st.precision_residual + z)
        # Fᵀ Λ̃ F and Fᵀ λ̃ (Λ̃_vv = Λ̂_vv, λ̃_v = λ̂_v).
        pv = step * lam_pp + lam_pv
        vv = step * (pv + lam_pv.transpose(-1, -2)) + a_vv
        adjoint = ((lam_pp, pv, vv), (lam_p, step * lam_p + a_v))
        projected[k] = (y, z)
    adjoints[0] = adjoint
    return adjoints, projected


def rts_smoother(filtered: FilterResult, dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Textbook Rauch–Tung–Striebel smoother in the structured form.

    ``G_t = C_t Fᵀ (C⁻_{t+1})⁻¹`` (a Cholesky solve), ``m^s_t = m_t + G_t (m^s_{t+1} - m⁻_{t+1})``,
    ``C^s_t = C_t + G_t (C^s_{t+1} - C⁻_{t+1}) G_tᵀ``, symmetrised. One ``(2N, 2N)`` covariance
    serves all ``d`` coordinates. The training loss does not call this: it needs only
    ``H C^s Hᵀ``, which :func:`smoothed_loglik` gets from the equivalent Bryson–Frazier
    recursion (:func:`bryson_frazier_smoother`); tests check that all three agree with the
    dense oracle.

    Returns:
        smoothed mean ``(B, T, 2N, d)`` and covariance ``(B, T, 2N, 2N)``.
    """
    n = filtered.covs[0][0].shape[-1]
    step = dt[:, None, None]
    mean_s = torch.cat(filtered.means[-1], 1)
    cov_s = join_blocks(*filtered.covs[-1])
    means, covs = [mean_s], [cov_s]
    for t in range(len(filtered.means) - 2, -1, -1):
        cov_f = join_blocks(*filtered.covs[t])
        (pred_pos, pred_vel), pred_blocks = filtered.predicted[t]
        pred_cov = join_blocks(*pred_blocks)
        # G = F C (C⁻)⁻¹ solved as C⁻ Gᵀ = F C (C symmetric).
        f_cov = torch.cat([cov_f[:, :n] + step * cov_f[:, n:], cov_f[:, n:]], 1)
        gain = torch.cholesky_solve(f_cov, safe_cholesky(pred_cov)).transpose(-1, -2)
        pred_mean = torch.cat([pred_pos, pred_vel], 1)
        mean_s = torch.cat(filtered.means[t], 1) + gain @ (mean_s - pred_mean)
        cov_s = symmetrise(cov_f + gain @ (cov_s - pred_cov) @ gain.transpose(-1, -2))
        means.append(mean_s)
        covs.append(cov_s)
    means.reverse()
    covs.reverse()
    return torch.stack(means, 1), torch.stack(covs, 1)


def bryson_frazier_smoother(
    filtered: FilterResult, dt: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same smoothed posterior as :func:`rts_smoother`, by the Bryson–Frazier recursion.

    Needs no inverse of the predicted covariances (see :func:`_bryson_frazier`).

    Returns:
        smoothed mean ``(B, T, 2N, d)`` and covariance ``(B, T, 2N, 2N)``.
    """
    adjoints, _ = _bryson_frazier(filtered, dt)
    means, covs = [], []
    for (pos, vel), blocks, adjoint in zip(filtered.means, filtered.covs, adjoints, strict=True):
        mean = torch.cat([pos, vel], 1)
        cov = join_blocks(*blocks)
        if adjoint is not None:
            (a_pp, a_pv, a_vv), (a_p, a_v) = adjoint
            mean = mean - cov @ torch.cat([a_p, a_v], 1)
            cov = symmetrise(cov - cov @ join_blocks(a_pp, a_pv, a_vv) @ cov)
        means.append(mean)
        covs.append(cov)
    return torch.stack(means, 1), torch.stack(covs, 1)


def _posterior_terms(
    steps: tuple[FilterStep, ...],
    precisions: list[torch.Tensor],
    precision_residuals: list[torch.Tensor],
) -> torch.Tensor:
    """``Σ_t log N(e_t; 0, Σ_t)`` with ``Σ_t = 2R − R P_t R`` and ``e_t = R p_t``, ``(B,)``.

    For a posterior ``(m_t, C_t)`` of frame ``t``, ``H C_t Hᵀ + R`` and ``z̃ − H m_t`` take this
    form with ``P_t = S⁻¹ + Kᵀ Λ̂_t K`` and ``p_t = S⁻¹ y + Kᵀ λ̂_t`` (filtered: ``Λ̂ = 0``,
    ``λ̂ = 0``), because ``H C_t[:N, :] = R Kᵀ`` for the filtered covariance. Padding rows
    (``H`` row 0, variance 1) contribute exactly 0.
    """
    d = precision_residuals[0].shape[-1]
    variance = torch.stack([st.variance for st in steps], 1)  # (B, T-1, M)
    count = torch.stack([st.count for st in steps], 1)
    precision = torch.stack(precisions, 1)
    residual = variance[..., None] * torch.stack(precision_residuals, 1)
    cov = (
        torch.diag_embed(2.0 * variance)
        - variance[..., :, None] * precision * variance[..., None, :]
    )
    inverse, log_det = spd_inverse(cov)
    quadratic = (residual * (inverse @ residual)).sum((-2, -1))
    return (-0.5 * (quadratic + d * log_det + (d * _LOG_2PI) * count)).sum(-1)


def filtered_loglik(filtered: FilterResult) -> torch.Tensor:
    """``Σ_{t≥1} log N(z̃_t; H_t m_t, H_t C_t H_tᵀ + R_t)`` for the filtered posterior, ``(B,)``.

    Equals :func:`posterior_loglik` of the filtered means and covariances, in ``O(M²)`` per
    frame from the filter's ``S⁻¹`` (plus one batched factorisation).
    """
    steps = filtered.steps
    return _posterior_terms(
        steps, [st.precision for st in steps], [st.precision_residual for st in steps]
    )


def smoothed_loglik(filtered: FilterResult, dt: torch.Tensor) -> torch.Tensor:
    """``Σ_{t≥1} log N(z̃_t; H_t m^s_t, H_t C^s_t H_tᵀ + R_t)`` for the RTS posterior, ``(B,)``.

    The paper's objective; equals :func:`posterior_loglik` of :func:`rts_smoother`'s output
    without forming the smoothed covariances (tests check it equals both smoothers).
    """
    _, projected = _bryson_frazier(filtered, dt)
    precisions, residuals = [], []
    for st, extra in zip(filtered.steps, projected, strict=True):
        if extra is None:
            precisions.append(st.precision)
            residuals.append(st.precision_residual)
        else:
            precisions.append(st.precision + extra[0])
            residuals.append(st.precision_residual + extra[1])
    return _posterior_terms(filtered.steps, precisions, residuals)


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

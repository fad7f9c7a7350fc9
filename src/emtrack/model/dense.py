"""Dense joint-state Kalman filter and RTS smoother: the test oracle and benchmark baseline.

The naive implementation the structured one must equal: one ``(2dN, 2dN)`` covariance over
all coordinates, Kronecker-product system matrices and explicit inverses. Slow on purpose
(it is what :mod:`emtrack.model.kalman` avoids); never used for training by default.
"""

from __future__ import annotations

import math

import torch

from emtrack.model.kalman import NoiseParams, ObservationModel, safe_cholesky

_LOG_2PI = math.log(2.0 * math.pi)


def _kron_eye(d: int, block: torch.Tensor) -> torch.Tensor:
    """``I_d ⊗ block`` for a batch of blocks ``(B, a, b)`` -> ``(B, d a, d b)``."""
    eye = torch.eye(d, dtype=block.dtype, device=block.device)
    b, rows, cols = block.shape
    return (eye[None, :, None, :, None] * block[:, None, :, None, :]).reshape(b, d * rows, d * cols)


def _vec(x: torch.Tensor) -> torch.Tensor:
    """``(B, K, d)`` -> ``(B, d K)``, coordinate-major (matches ``I_d ⊗ ·``)."""
    return x.transpose(-1, -2).reshape(x.shape[0], -1)


def _unvec(x: torch.Tensor, d: int) -> torch.Tensor:
    return x.reshape(x.shape[0], d, -1).transpose(-1, -2)


def _system(dt: torch.Tensor, slot_heights: torch.Tensor, q: torch.Tensor, d: int):
    b, n = slot_heights.shape
    eye = torch.eye(n, dtype=slot_heights.dtype).expand(b, n, n)
    step = dt[:, None, None]
    zero = torch.zeros_like(eye)
    f = torch.cat([torch.cat([eye, step * eye], -1), torch.cat([zero, eye], -1)], -2)
    qs = q * slot_heights.square()
    dt1 = dt[:, None]
    q_pp = torch.diag_embed(qs * dt1**3 / 3)
    q_pv = torch.diag_embed(qs * dt1**2 / 2)
    q_vv = torch.diag_embed(qs * dt1)
    qm = torch.cat([torch.cat([q_pp, q_pv], -1), torch.cat([q_pv, q_vv], -1)], -2)
    return _kron_eye(d, f), _kron_eye(d, qm)


def _obs_dense(obs: ObservationModel, t: int, n: int, d: int):
    matrix = obs.matrix[:, t]
    full = torch.cat([matrix, torch.zeros_like(matrix)], -1)  # positions only
    return (
        _kron_eye(d, full),
        _kron_eye(d, torch.diag_embed(obs.variance[:, t])),
        _vec(obs.values[:, t]),
        obs.mask[:, t].to(matrix.dtype).sum(-1) * d,
    )


def _inverse(matrix: torch.Tensor) -> torch.Tensor:
    """Explicit inverse of SPD matrices, through a Cholesky factor (not LU: batched LU on
    several threads gives wrong pivots in MKL builds of torch, pytorch/pytorch#142815)."""
    return torch.cholesky_inverse(safe_cholesky(matrix))


def _logdet(matrix: torch.Tensor) -> torch.Tensor:
    """``log |matrix|`` of SPD matrices (its own factorisation, as a naive code would)."""
    return 2.0 * safe_cholesky(matrix).diagonal(dim1=-2, dim2=-1).log().sum(-1)


def _loglik(h, r, z, count, mean, cov):
    s = h @ cov @ h.transpose(-1, -2) + r
    s_inv = _inverse(s)
    e = z - (h @ mean[..., None])[..., 0]
    quad = (e[:, None, :] @ s_inv @ e[..., None])[:, 0, 0]
    return -0.5 * (quad + _logdet(s) + count * _LOG_2PI)


def dense_filter_smoother(
    obs: ObservationModel,
    positions0: torch.Tensor,
    slot_heights: torch.Tensor,
    dt: torch.Tensor,
    noise: NoiseParams,
    smooth: bool = True,
    filtered_loglik: bool = True,
) -> dict[str, torch.Tensor]:
    """Joint-state filter (and smoother) with the same model as the structured code.

    Returns a dict with ``filtered_mean`` ``(B, T, 2N, d)``, ``filtered_cov``
    ``(B, T, 2dN, 2dN)``, ``smoothed_mean``/``smoothed_cov`` (when ``smooth``),
    ``innovations_loglik``, ``filtered_loglik`` (when ``filtered_loglik``) and
    ``smoothed_loglik`` ``(B,)`` (the last two: ``Σ_{t≥1} log N(z̃_t; H m_t, H C_t Hᵀ + R)``).
    """
    b, n, d = positions0.shape
    steps = obs.matrix.shape[1]
    f, qm = _system(dt, slot_heights, noise.q, d)
    h2 = slot_heights.square()
    mean = _vec(torch.cat([positions0, torch.zeros_like(positions0)], 1))
    cov = _kron_eye(d, torch.diag_embed(torch.cat([noise.r * h2, noise.p_vel * h2], -1)))
    means, covs, pmeans, pcovs = [mean], [cov], [mean], [cov]
    innov = torch.zeros(b, dtype=mean.dtype)
    for t in range(1, steps):
        mean = (f @ mean[..., None])[..., 0]
        cov = f @ cov @ f.transpose(-1, -2) + qm
        pmeans.append(mean)
        pcovs.append(cov)
        h, r, z, count = _obs_dense(obs, t, n, d)
        innov = innov + _loglik(h, r, z, count, mean, cov)
        s = h @ cov @ h.transpose(-1, -2) + r
        gain = cov @ h.transpose(-1, -2) @ _inverse(s)
        mean = mean + (gain @ (z - (h @ mean[..., None])[..., 0])[..., None])[..., 0]
        cov = cov - gain @ h @ cov
        means.append(mean)
        covs.append(cov)
    out = {
        "filtered_mean": torch.stack([_unvec(m, d) for m in means], 1),
        "filtered_cov": torch.stack(covs, 1),
        "innovations_loglik": innov,
    }
    if filtered_loglik:
        filt_ll = torch.zeros(b, dtype=mean.dtype)
        for t in range(1, steps):
            h, r, z, count = _obs_dense(obs, t, n, d)
            filt_ll = filt_ll + _loglik(h, r, z, count, means[t], covs[t])
        out["filtered_loglik"] = filt_ll
    if not smooth:
        return out
    sm, sc = means[-1], covs[-1]
    smeans, scovs = [sm], [sc]
    for t in range(steps - 2, -1, -1):
        gain = covs[t] @ f.transpose(-1, -2) @ _inverse(pcovs[t + 1])
        sm = means[t] + (gain @ (sm - pmeans[t + 1])[..., None])[..., 0]
        sc = covs[t] + gain @ (sc - pcovs[t + 1]) @ gain.transpose(-1, -2)
        smeans.append(sm)
        scovs.append(sc)
    smeans.reverse()
    scovs.reverse()
    sm_ll = torch.zeros(b, dtype=mean.dtype)
    for t in range(1, steps):
        h, r, z, count = _obs_dense(obs, t, n, d)
        sm_ll = sm_ll + _loglik(h, r, z, count, smeans[t], scovs[t])
    out["smoothed_mean"] = torch.stack([_unvec(m, d) for m in smeans], 1)
    out["smoothed_cov"] = torch.stack(scovs, 1)
    out["smoothed_loglik"] = sm_ll
    return out


def dense_clip_loglik(
    obs: ObservationModel,
    positions0: torch.Tensor,
    slot_heights: torch.Tensor,
    dt: torch.Tensor,
    noise: NoiseParams,
    objective: str,
) -> torch.Tensor:
    """The Gaussian part ``(B,)`` of :func:`emtrack.model.loss.clip_loglik`, computed densely.

    Runs only what ``objective`` needs (the filter; the smoother for ``smoothed``), so that the
    training benchmark times the oracle doing the same work as the structured code.
    """
    if objective == "innovations":
        out = dense_filter_smoother(
            obs, positions0, slot_heights, dt, noise, smooth=False, filtered_loglik=False
        )
        return out["innovations_loglik"]
    if objective == "filtered":
        out = dense_filter_smoother(obs, positions0, slot_heights, dt, noise, smooth=False)
        return out["filtered_loglik"]
    if objective == "smoothed":
        out = dense_filter_smoother(
            obs, positions0, slot_heights, dt, noise, smooth=True, filtered_loglik=False
        )
        return out["smoothed_loglik"]
    raise ValueError(f"unknown objective {objective!r}")

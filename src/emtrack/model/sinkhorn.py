"""Log-space Sinkhorn normalisation with a dustbin row and column.

Each real row (a detection of frame t) and each real column (a detection of frame t-1, or a
track) has unit mass; the dustbin row and column absorb what is unmatched (births, deaths,
misses, false positives), as in SuperGlue (Sarlin et al. 2020). Padded rows and columns carry
no mass, so clips with a different number of detections in every frame batch together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_NEG = -1e4  # finite "minus infinity": keeps logsumexp free of inf - inf


@dataclass(frozen=True)
class SinkhornConfig:
    """Sinkhorn settings.

    Attributes:
        iterations: number of (row, column) normalisation rounds.
    """

    iterations: int = 20

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"SinkhornConfig.iterations must be >= 1, got {self.iterations}")


def log_sinkhorn_dustbin(
    logits: torch.Tensor,
    dustbin_logit: torch.Tensor,
    row_mask: torch.Tensor,
    col_mask: torch.Tensor,
    iterations: int = 20,
) -> torch.Tensor:
    """Soft assignment with unmatched mass, in log space.

    Args:
        logits: ``(..., M, N)`` association logits, rows = detections of frame t,
            columns = detections of frame t-1 (or tracks).
        dustbin_logit: scalar tensor, the score of leaving a row or column unmatched.
        row_mask: ``(..., M)`` bool, real rows.
        col_mask: ``(..., N)`` bool, real columns.
        iterations: Sinkhorn rounds.

    Returns:
        ``(..., M + 1, N + 1)`` log assignment, dustbin last. For real rows
        ``exp(out[..., j, :]).sum() == 1`` and for real columns ``exp(out[..., :, i]).sum() == 1``
        (at convergence); padded rows and columns are ``_NEG`` (probability ~0).
    """
    *batch, m, n = logits.shape
    dtype = logits.dtype
    row_mask = row_mask.to(torch.bool)
    col_mask = col_mask.to(torch.bool)
    num_rows = row_mask.sum(-1).to(dtype)  # (...)
    num_cols = col_mask.sum(-1).to(dtype)

    bin_col = dustbin_logit.to(dtype).expand(*batch, m, 1)
    bin_row = dustbin_logit.to(dtype).expand(*batch, 1, n + 1)
    couplings = torch.cat([torch.cat([logits, bin_col], -1), bin_row], -2)  # (..., M+1, N+1)
    full_row = torch.cat([row_mask, row_mask.new_ones(*batch, 1)], -1)
    full_col = torch.cat([col_mask, col_mask.new_ones(*batch, 1)], -1)
    valid = full_row[..., :, None] & full_col[..., None, :]
    couplings = couplings.masked_fill(~valid, _NEG)

    # Marginals: 1 per real row/column; the dustbins take the other side's count.
    # Everything is scaled by 1 / (M + N) so both sides carry the same total mass.
    norm = -torch.log(num_rows + num_cols).clamp_min(_NEG)  # (...)
    log_one = torch.zeros((), dtype=dtype, device=logits.device)
    log_mu = torch.where(row_mask, log_one, torch.full_like(log_one, _NEG))
    log_mu = torch.cat([log_mu, torch.log(num_cols).clamp_min(_NEG)[..., None]], -1)
    log_nu = torch.where(col_mask, log_one, torch.full_like(log_one, _NEG))
    log_nu = torch.cat([log_nu, torch.log(num_rows).clamp_min(_NEG)[..., None]], -1)
    log_mu = log_mu + norm[..., None]
    log_nu = log_nu + norm[..., None]

    u = torch.zeros_like(log_mu)
    v = torch.zeros_like(log_nu)
    for _ in range(iterations):
        u = log_mu - torch.logsumexp(couplings + v[..., None, :], dim=-1)
        v = log_nu - torch.logsumexp(couplings + u[..., :, None], dim=-2)
    out = couplings + u[..., :, None] + v[..., None, :] - norm[..., None, None]
    return out.masked_fill(~valid, _NEG)


def real_assignment(log_assignment: torch.Tensor) -> torch.Tensor:
    """The matched part of a dustbin assignment, as probabilities.

    Args:
        log_assignment: ``(..., M + 1, N + 1)`` from :func:`log_sinkhorn_dustbin`.

    Returns:
        ``(..., M, N)`` ``A[j, i]`` = probability that row j is column i.
    """
    return log_assignment[..., :-1, :-1].exp()

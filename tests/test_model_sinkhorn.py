"""Dustbin Sinkhorn: marginals, padding, empty frames, sharp limit, dustbin limit, gradients."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from emtrack.model.sinkhorn import SinkhornConfig, log_sinkhorn_dustbin, real_assignment

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DTYPE = torch.float64
ITERATIONS = 200
TOL = 1e-4


def random_problem(seed: int, b: int, m: int, n: int, keep: float = 0.7):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, m, n, generator=gen, dtype=DTYPE) * 3.0
    row_mask = torch.rand(b, m, generator=gen) < keep
    col_mask = torch.rand(b, n, generator=gen) < keep
    return logits, row_mask, col_mask


def largest(x: torch.Tensor) -> float:
    return float(x.detach().max()) if x.numel() else 0.0


def check_marginals(log_assignment, row_mask, col_mask, tol=TOL):
    p = log_assignment.exp()
    assert torch.isfinite(log_assignment).all()
    row_sums = p.sum(-1)[..., :-1]
    col_sums = p.sum(-2)[..., :-1]
    torch.testing.assert_close(
        row_sums[row_mask], torch.ones_like(row_sums[row_mask]), atol=tol, rtol=0
    )
    torch.testing.assert_close(
        col_sums[col_mask], torch.ones_like(col_sums[col_mask]), atol=tol, rtol=0
    )
    # Padded rows and columns carry (almost) nothing, including their dustbin entries.
    assert largest(p[..., :-1, :][~row_mask]) < 1e-12
    assert largest(p[..., :, :-1].transpose(-1, -2)[~col_mask]) < 1e-12
    # The dustbin column holds the unmatched mass of the real rows and vice versa.
    real = p[..., :-1, :-1]
    torch.testing.assert_close(
        p[..., :-1, -1][row_mask], (1 - real.sum(-1))[row_mask], atol=tol, rtol=0
    )
    torch.testing.assert_close(
        p[..., -1, :-1][col_mask], (1 - real.sum(-2))[col_mask], atol=tol, rtol=0
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 3), (2, 5), (6, 3), (7, 7)])
def test_real_rows_and_columns_sum_to_one(seed, m, n):
    logits, row_mask, col_mask = random_problem(seed, 4, m, n)
    dustbin = torch.tensor(float(seed % 3) - 1.0, dtype=DTYPE)
    log_assignment = log_sinkhorn_dustbin(logits, dustbin, row_mask, col_mask, ITERATIONS)
    assert log_assignment.shape == (4, m + 1, n + 1)
    check_marginals(log_assignment, row_mask, col_mask)


def test_extra_batch_dimensions():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=gen, dtype=DTYPE)
    row_mask = torch.rand(2, 3, 4, generator=gen) < 0.8
    col_mask = torch.rand(2, 3, 5, generator=gen) < 0.8
    out = log_sinkhorn_dustbin(logits, torch.tensor(0.0, dtype=DTYPE), row_mask, col_mask, 100)
    assert out.shape == (2, 3, 5, 6)
    assert real_assignment(out).shape == (2, 3, 4, 5)
    check_marginals(out, row_mask, col_mask)
    # Each clip/frame is independent of the others in the batch.
    single = log_sinkhorn_dustbin(
        logits[1, 2], torch.tensor(0.0, dtype=DTYPE), row_mask[1, 2], col_mask[1, 2], 100
    )
    torch.testing.assert_close(out[1, 2], single)


@pytest.mark.parametrize("empty", ["rows", "cols", "both"])
def test_empty_side_sends_everything_to_the_dustbin(empty):
    logits, row_mask, col_mask = random_problem(1, 3, 4, 5, keep=1.0)
    if empty in ("rows", "both"):
        row_mask[1] = False
    if empty in ("cols", "both"):
        col_mask[1] = False
    logits = logits.requires_grad_()
    out = log_sinkhorn_dustbin(
        logits, torch.tensor(0.5, dtype=DTYPE), row_mask, col_mask, ITERATIONS
    )
    assert torch.isfinite(out).all()
    check_marginals(out, row_mask, col_mask)
    p = out[1].detach().exp()
    assert float(p[:-1, :-1].max()) < 1e-12  # nothing is matched in the empty frame
    if empty == "rows":
        torch.testing.assert_close(p[-1, :-1], torch.ones(5, dtype=DTYPE), atol=TOL, rtol=0)
    if empty == "cols":
        torch.testing.assert_close(p[:-1, -1], torch.ones(4, dtype=DTYPE), atol=TOL, rtol=0)
    out.exp()[..., :-1, :-1].sum().backward()
    assert torch.isfinite(logits.grad).all()


def brute_force_best(scores: np.ndarray) -> tuple[tuple[int, ...], float]:
    """Best permutation (row j -> column perm[j]) and its margin over the runner-up."""
    k = scores.shape[0]
    totals = sorted(
        (float(scores[np.arange(k), list(p)].sum()), p) for p in itertools.permutations(range(k))
    )
    margin = totals[-1][0] - totals[-2][0] if len(totals) > 1 else np.inf
    return totals[-1][1], margin


def sinkhorn_hard(logits: np.ndarray, dustbin: float) -> torch.Tensor:
    k = logits.shape[0]
    mask = torch.ones(k, dtype=torch.bool)
    out = log_sinkhorn_dustbin(
        torch.tensor(logits, dtype=DTYPE),
        torch.tensor(dustbin, dtype=DTYPE),
        mask,
        mask,
        ITERATIONS,
    )
    check_marginals(out, mask, mask, tol=1e-2)  # sharp logits converge slowly (O(1/iterations))
    return real_assignment(out)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("seed", range(4))
def test_sharp_planted_permutation_is_the_hard_assignment(k, seed):
    """Planted permutation at scale 20 over unit noise, low dustbin: the row and column
    argmaxes of the assignment are the brute-force best permutation (the planted one)."""
    rng = np.random.default_rng(seed)
    planted = rng.permutation(k)
    logits = rng.normal(size=(k, k))
    logits[np.arange(k), planted] += 20.0
    best, _ = brute_force_best(logits)
    assert best == tuple(planted)
    assignment = sinkhorn_hard(logits, -10.0)
    assert tuple(assignment.argmax(-1).tolist()) == best
    assert tuple(assignment.argmax(-2).tolist()) == tuple(np.argsort(best).tolist())
    assert float(assignment[torch.arange(k), torch.tensor(best)].min()) > 0.95


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", range(4))
def test_sharp_logits_pick_the_best_permutation_not_the_greedy_one(k, seed):
    """Scores in [0, 1] at scale 20 whose best permutation beats the runner-up by >= 0.1:
    Sinkhorn's hard assignment is the brute-force optimum, also where row-wise greedy fails."""
    rng = np.random.default_rng(1000 * k + seed)
    while True:
        scores = rng.uniform(size=(k, k))
        best, margin = brute_force_best(scores)
        if margin >= 0.1:
            break
    assignment = sinkhorn_hard(20.0 * scores, -30.0)
    assert tuple(assignment.argmax(-1).tolist()) == best


def test_sharp_logits_beat_greedy_on_a_known_case():
    # Greedy row-wise argmax takes (0, 0) and (1, 0); the best permutation is (0 -> 1, 1 -> 0).
    scores = np.array([[0.9, 0.8], [1.0, 0.1]])
    best, _ = brute_force_best(scores)
    assert best == (1, 0)
    assert tuple(scores.argmax(-1).tolist()) == (0, 0)
    assignment = sinkhorn_hard(20.0 * scores, -30.0)
    assert tuple(assignment.argmax(-1).tolist()) == best


def test_sharp_planted_permutation_with_padding_and_unequal_sizes():
    """k=4 real rows among 6, 4 real columns among 5; the planted matching is recovered."""
    rng = np.random.default_rng(3)
    logits = torch.tensor(rng.normal(size=(6, 5)), dtype=DTYPE)
    rows, cols = [0, 2, 3, 5], [1, 2, 3, 4]
    planted = rng.permutation(4)
    for r, c in zip(rows, planted, strict=True):
        logits[r, cols[c]] += 20.0
    row_mask = torch.zeros(6, dtype=torch.bool)
    row_mask[rows] = True
    col_mask = torch.zeros(5, dtype=torch.bool)
    col_mask[cols] = True
    out = log_sinkhorn_dustbin(logits, torch.tensor(-10.0, dtype=DTYPE), row_mask, col_mask, 200)
    a = real_assignment(out)
    for r, c in zip(rows, planted, strict=True):
        assert float(a[r, cols[c]]) > 0.99
    check_marginals(out, row_mask, col_mask, tol=1e-2)


def test_very_high_dustbin_takes_everything():
    logits, row_mask, col_mask = random_problem(4, 3, 5, 4, keep=0.8)
    out = log_sinkhorn_dustbin(
        logits, torch.tensor(60.0, dtype=DTYPE), row_mask, col_mask, ITERATIONS
    )
    assert torch.isfinite(out).all()
    p = out.exp()
    assert float(p[..., :-1, :-1].max()) < 1e-12
    # The dustbin-dustbin cell must empty out, which Sinkhorn does only at O(1/iterations).
    to_bin = p[..., :-1, -1][row_mask]
    from_bin = p[..., -1, :-1][col_mask]
    torch.testing.assert_close(to_bin, torch.ones_like(to_bin), atol=1e-2, rtol=0)
    torch.testing.assert_close(from_bin, torch.ones_like(from_bin), atol=1e-2, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite(dtype):
    logits, row_mask, col_mask = random_problem(2, 3, 4, 6)
    row_mask[0] = False  # an empty frame in the batch
    logits = (logits * 5).to(dtype).requires_grad_()
    dustbin = torch.tensor(0.2, dtype=dtype, requires_grad=True)
    out = log_sinkhorn_dustbin(logits, dustbin, row_mask, col_mask, 20)
    loss = (out.exp() * torch.randn_like(out)).sum() + real_assignment(out).square().sum()
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.isfinite(dustbin.grad)
    # Padded logits are inert.
    padded = ~(row_mask[..., :, None] & col_mask[..., None, :])
    assert float(logits.grad[padded].abs().max()) == 0.0


def test_gradcheck_float64():
    logits, row_mask, col_mask = random_problem(5, 2, 3, 4, keep=0.8)
    row_mask[:, 0] = True
    col_mask[:, 0] = True
    logits = logits.requires_grad_()
    dustbin = torch.tensor(0.1, dtype=DTYPE, requires_grad=True)
    weights = torch.randn(2, 4, 5, dtype=DTYPE, generator=torch.Generator().manual_seed(0))

    def fn(logits, dustbin):
        out = log_sinkhorn_dustbin(logits, dustbin, row_mask, col_mask, 10)
        return (out.exp() * weights).sum((-2, -1))

    assert torch.autograd.gradcheck(fn, (logits, dustbin))


def test_config_validation():
    assert SinkhornConfig().iterations == 20
    with pytest.raises(ValueError, match="iterations"):
        SinkhornConfig(iterations=0)

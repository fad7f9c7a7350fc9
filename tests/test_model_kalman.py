"""The structured Kalman filter / RTS smoother against two oracles, plus gradients.

Oracles:

* :func:`emtrack.model.dense.dense_filter_smoother`, the naive ``(2dN, 2dN)`` joint-state
  filter and smoother with explicit inverses;
* brute-force conditioning of the joint Gaussian over all states ``x_0 … x_{T-1}`` of a clip,
  built here from the model's definition (initial state, ``F``, ``Q``, ``H_t``, ``R_t``) with
  dense numpy linear algebra: the smoothed marginals condition on every observation, the
  filtered ones at ``t`` on ``z_1 … z_t``, and the innovations log-likelihood is the log density
  of the joint Gaussian of the real observation rows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from emtrack.model.dense import dense_filter_smoother
from emtrack.model.kalman import (
    NoiseParams,
    ObservationModel,
    bryson_frazier_smoother,
    kalman_filter,
    posterior_loglik,
    rts_smoother,
    safe_cholesky,
)
from emtrack.model.loss import ClipBatch, association_products, clip_loglik, clip_observations
from emtrack.model.sinkhorn import log_sinkhorn_dustbin, real_assignment

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DTYPE = torch.float64
RTOL = 1e-9  # relative to the largest magnitude of the compared quantity


def assert_close(actual: torch.Tensor | np.ndarray, expected: torch.Tensor | np.ndarray) -> None:
    """``max |actual - expected| <= RTOL * max(1, max |expected|)``."""
    a = torch.as_tensor(np.asarray(actual), dtype=DTYPE)
    e = torch.as_tensor(np.asarray(expected), dtype=DTYPE)
    assert a.shape == e.shape
    scale = max(1.0, float(e.abs().max())) if e.numel() else 1.0
    error = float((a - e).abs().max()) if e.numel() else 0.0
    assert error <= RTOL * scale, f"max error {error:.3e} > {RTOL:.0e} * {scale:.3e}"


def random_batch(
    seed: int,
    b: int,
    t: int,
    n: int,
    empty_frame: int | None = None,
    keep: float = 0.75,
) -> ClipBatch:
    """Random boxes (heights 10-60 px) with a random padding mask; frame 0 is never empty."""
    gen = torch.Generator().manual_seed(seed)
    corner = torch.rand(b, t, n, 2, generator=gen, dtype=DTYPE) * 200.0
    size = torch.rand(b, t, n, 2, generator=gen, dtype=DTYPE) * 50.0 + 10.0
    boxes = torch.cat([corner, corner + size], -1)
    mask = torch.rand(b, t, n, generator=gen) < keep
    mask[:, 0, 0] = True
    if empty_frame is not None:
        mask[:, empty_frame] = False
    dt = torch.rand(b, generator=gen, dtype=DTYPE) * 0.1 + 0.03
    log_clutter = torch.full((b,), -math.log(640.0 * 480.0), dtype=DTYPE)
    return ClipBatch(boxes, mask, dt, log_clutter)


def soft_products(batch: ClipBatch, seed: int, iterations: int = 50) -> torch.Tensor:
    """Association products ``P_t`` of random logits through the dustbin Sinkhorn."""
    gen = torch.Generator().manual_seed(seed + 1)
    b, t, n = batch.mask.shape
    logits = torch.randn(b, t - 1, n, n, generator=gen, dtype=DTYPE) * 3.0
    log_assignment = log_sinkhorn_dustbin(
        logits,
        torch.tensor(0.5, dtype=DTYPE),
        batch.mask[:, 1:],
        batch.mask[:, :-1],
        iterations,
    )
    return association_products(real_assignment(log_assignment), batch.mask[:, 0])


def hard_products(batch: ClipBatch) -> torch.Tensor:
    """Products of 0/1 assignments: detection j of frame t is detection j of frame t-1 when
    both are real (so slots die and real detections with zero slot mass appear)."""
    mask = batch.mask.to(DTYPE)
    assignment = torch.diag_embed(mask[:, 1:] * mask[:, :-1])
    return association_products(assignment, batch.mask[:, 0])


NOISE = NoiseParams(
    torch.tensor(0.3, dtype=DTYPE), torch.tensor(0.01, dtype=DTYPE), torch.tensor(1.5, dtype=DTYPE)
)


def run_structured(batch: ClipBatch, products: torch.Tensor, noise: NoiseParams = NOISE):
    obs, pos0, h0 = clip_observations(batch, products, noise.r)
    filtered, innovations = kalman_filter(obs, pos0, h0, batch.dt, noise)
    smoothed_mean, smoothed_cov = rts_smoother(filtered, batch.dt)
    return obs, pos0, h0, filtered, innovations, smoothed_mean, smoothed_cov


# (seed, B, T, N, empty frame)
CASES = [
    (0, 3, 5, 4, None),
    (1, 2, 4, 3, 2),
    (2, 1, 2, 1, None),
    (3, 2, 6, 5, 3),
    (4, 4, 3, 2, 1),
]


# --------------------------------------------------------------------------------------------
# Structured == dense joint-state oracle
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("products_kind", ["soft", "hard"])
@pytest.mark.parametrize(("seed", "b", "t", "n", "empty"), CASES)
def test_structured_equals_dense_oracle(seed, b, t, n, empty, products_kind):
    batch = random_batch(seed, b, t, n, empty)
    products = soft_products(batch, seed) if products_kind == "soft" else hard_products(batch)
    obs, pos0, h0, filtered, innovations, smoothed_mean, smoothed_cov = run_structured(
        batch, products
    )
    dense = dense_filter_smoother(obs, pos0, h0, batch.dt, NOISE)
    d = pos0.shape[-1]
    s = 2 * n

    assert_close(filtered.filtered_mean, dense["filtered_mean"])
    assert_close(smoothed_mean, dense["smoothed_mean"])
    for name, structured in (
        ("filtered_cov", filtered.filtered_cov),
        ("smoothed_cov", smoothed_cov),
    ):
        full = dense[name]
        assert full.shape == (b, t, d * s, d * s)
        for c in range(d):
            for c2 in range(d):
                block = full[..., c * s : (c + 1) * s, c2 * s : (c2 + 1) * s]
                if c == c2:
                    assert_close(structured, block)
                else:
                    assert float(block.abs().max()) == 0.0, name

    assert_close(innovations, dense["innovations_loglik"])
    assert_close(
        posterior_loglik(obs, filtered.filtered_mean, filtered.filtered_cov),
        dense["filtered_loglik"],
    )
    assert_close(posterior_loglik(obs, smoothed_mean, smoothed_cov), dense["smoothed_loglik"])
    # The last smoothed state is the last filtered one.
    assert_close(smoothed_mean[:, -1], filtered.filtered_mean[:, -1])
    # The loss's Bryson–Frazier route gives the same posterior as the textbook RTS recursion.
    bf_mean, bf_cov = bryson_frazier_smoother(filtered, batch.dt)
    assert_close(bf_mean, smoothed_mean)
    assert_close(bf_cov, smoothed_cov)


def test_structured_float32_is_close_to_float64():
    batch = random_batch(7, 3, 6, 4, 2)
    products = soft_products(batch, 7)
    *_, innov64, mean64, cov64 = run_structured(batch, products)
    batch32 = batch.to("cpu", torch.float32)
    noise32 = NoiseParams(*(x.float() for x in (NOISE.q, NOISE.r, NOISE.p_vel)))
    *_, innov32, mean32, cov32 = run_structured(batch32, products.float(), noise32)
    assert torch.isfinite(innov32).all()
    torch.testing.assert_close(innov32.double(), innov64, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(mean32.double(), mean64, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(cov32.double(), cov64, rtol=1e-3, atol=1e-2)


# --------------------------------------------------------------------------------------------
# Structured == brute-force joint Gaussian conditioning
# --------------------------------------------------------------------------------------------


class JointGaussian:
    """Prior over all states ``X = (x_0 … x_{T-1})`` (one coordinate, ``2N`` each) of one clip,
    and the stacked real observation rows ``y = G X + v`` of frames ``1 … T-1``."""

    def __init__(
        self,
        obs: ObservationModel,
        pos0: torch.Tensor,
        h0: torch.Tensor,
        dt: torch.Tensor,
        noise: NoiseParams,
        clip: int,
    ) -> None:
        matrix = obs.matrix[clip].numpy()
        variance = obs.variance[clip].numpy()
        values = obs.values[clip].numpy()
        mask = obs.mask[clip].numpy()
        z0 = pos0[clip].numpy()  # (N, d)
        h = h0[clip].numpy()
        step = float(dt[clip])
        q, r, p_vel = (float(x) for x in (noise.q, noise.r, noise.p_vel))
        steps, n = matrix.shape[0], matrix.shape[-1]
        s = 2 * n
        eye, zero = np.eye(n), np.zeros((n, n))
        f = np.block([[eye, step * eye], [zero, eye]])
        qs = q * h**2
        q_pp, q_pv, q_vv = (np.diag(qs * x) for x in (step**3 / 3, step**2 / 2, step))
        process = np.block([[q_pp, q_pv], [q_pv, q_vv]])
        prior0 = np.diag(np.concatenate([r * h**2, p_vel * h**2]))

        # X = L e with e = (x_0, w_1, …, w_{T-1}), Cov(e) = blockdiag(P_0, Q, …, Q).
        size = steps * s
        lower = np.zeros((size, size))
        for t in range(steps):
            for k in range(t + 1):
                lower[t * s : (t + 1) * s, k * s : (k + 1) * s] = np.linalg.matrix_power(f, t - k)
        cov_e = np.zeros((size, size))
        cov_e[:s, :s] = prior0
        for k in range(1, steps):
            cov_e[k * s : (k + 1) * s, k * s : (k + 1) * s] = process
        self.prior_cov = lower @ cov_e @ lower.T
        mean0 = np.concatenate([z0, np.zeros_like(z0)], 0)  # (2N, d)
        e_mean = np.zeros((size, z0.shape[1]))
        e_mean[:s] = mean0
        self.prior_mean = lower @ e_mean  # (T 2N, d)

        rows = [(t, j) for t in range(1, steps) for j in range(n) if mask[t, j]]
        self.row_time = np.array([t for t, _ in rows], dtype=np.int64)
        self.g = np.zeros((len(rows), size))
        for k, (t, j) in enumerate(rows):
            self.g[k, t * s : t * s + n] = matrix[t, j]
        self.noise_var = np.array([variance[t, j] for t, j in rows])
        self.y = np.array([values[t, j] for t, j in rows]).reshape(len(rows), z0.shape[1])
        self.s = s
        self.steps = steps

    def posterior(self, last_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(T 2N, d)`` and covariance ``(T 2N, T 2N)`` given frames ``1 … last_frame``."""
        use = self.row_time <= last_frame
        g, y = self.g[use], self.y[use]
        if not use.any():
            return self.prior_mean, self.prior_cov
        innovation_cov = g @ self.prior_cov @ g.T + np.diag(self.noise_var[use])
        cross = self.prior_cov @ g.T
        gain = np.linalg.solve(innovation_cov, cross.T).T
        mean = self.prior_mean + gain @ (y - g @ self.prior_mean)
        cov = self.prior_cov - gain @ cross.T
        return mean, 0.5 * (cov + cov.T)

    def marginal(self, joint: tuple[np.ndarray, np.ndarray], t: int):
        mean, cov = joint
        block = slice(t * self.s, (t + 1) * self.s)
        return mean[block], cov[block, block]

    def log_density(self) -> float:
        """``log p(y)`` of the real observation rows, summed over coordinates."""
        if len(self.y) == 0:
            return 0.0
        cov = self.g @ self.prior_cov @ self.g.T + np.diag(self.noise_var)
        mean = self.g @ self.prior_mean
        return float(
            sum(
                multivariate_normal.logpdf(self.y[:, c], mean[:, c], cov)
                for c in range(self.y.shape[1])
            )
        )


@pytest.mark.parametrize("products_kind", ["soft", "hard"])
@pytest.mark.parametrize(("seed", "b", "t", "n", "empty"), CASES)
def test_structured_equals_joint_gaussian_conditioning(seed, b, t, n, empty, products_kind):
    batch = random_batch(seed + 100, b, t, n, empty)
    products = soft_products(batch, seed) if products_kind == "soft" else hard_products(batch)
    obs, pos0, h0, filtered, innovations, smoothed_mean, smoothed_cov = run_structured(
        batch, products
    )
    for clip in range(b):
        joint = JointGaussian(obs, pos0, h0, batch.dt, NOISE, clip)
        everything = joint.posterior(t - 1)
        for frame in range(t):
            mean, cov = joint.marginal(everything, frame)
            assert_close(smoothed_mean[clip, frame], mean)
            assert_close(smoothed_cov[clip, frame], cov)
            mean, cov = joint.marginal(joint.posterior(frame), frame)
            assert_close(filtered.filtered_mean[clip, frame], mean)
            assert_close(filtered.filtered_cov[clip, frame], cov)
        assert_close(innovations[clip], torch.tensor(joint.log_density(), dtype=DTYPE))


def test_padding_rows_do_not_change_the_likelihood():
    """Adding padded detection slots (mask False) changes nothing."""
    batch = random_batch(11, 2, 5, 3, None, keep=1.0)
    products = soft_products(batch, 11)
    *_, innov, mean, cov = run_structured(batch, products)
    b, t, n = batch.mask.shape
    pad = 2
    boxes = torch.cat(
        [batch.boxes_xyxy, torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=DTYPE).expand(b, t, pad, 4)],
        2,
    )
    mask = torch.cat([batch.mask, torch.zeros(b, t, pad, dtype=torch.bool)], 2)
    padded = ClipBatch(boxes, mask, batch.dt, batch.log_clutter_density)
    products_padded = torch.zeros(b, t, n + pad, n + pad, dtype=DTYPE)
    products_padded[:, :, :n, :n] = products
    *_, innov_p, mean_p, cov_p = run_structured(padded, products_padded)
    assert_close(innov_p, innov)
    assert_close(mean_p[:, :, :n], mean[:, :, :n])
    assert_close(mean_p[:, :, n + pad : 2 * n + pad], mean[:, :, n:])
    for objective in ("smoothed", "filtered", "innovations"):
        assert_close(
            clip_loglik(padded, products_padded, NOISE, objective),
            clip_loglik(batch, products, NOISE, objective),
        )


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def tiny_batch() -> ClipBatch:
    """B=2, T=3, N=3 with one padded slot per frame (clip 1 also loses a detection)."""
    gen = torch.Generator().manual_seed(5)
    b, t, n = 2, 3, 3
    base = torch.tensor(
        [[100.0, 100.0, 130.0, 180.0], [200.0, 120.0, 225.0, 190.0], [300.0, 90.0, 340.0, 170.0]],
        dtype=DTYPE,
    )
    motion = torch.arange(t, dtype=DTYPE)[None, :, None, None] * 4.0
    boxes = base.expand(b, t, n, 4) + motion + torch.randn(b, t, n, 4, generator=gen) * 2.0
    mask = torch.ones(b, t, n, dtype=torch.bool)
    mask[0, :, 2] = False
    mask[1, 1, 0] = False
    mask[1, :, 2] = False
    mask[1, 2, 2] = True
    return ClipBatch(
        boxes, mask, torch.tensor([0.04, 0.1], dtype=DTYPE), torch.full((b,), -12.0, dtype=DTYPE)
    )


@pytest.mark.parametrize("objective", ["smoothed", "filtered", "innovations"])
def test_gradcheck_clip_loglik(objective):
    batch = tiny_batch()
    b, t, n = batch.mask.shape
    gen = torch.Generator().manual_seed(9)
    logits = (torch.randn(b, t - 1, n, n, generator=gen, dtype=DTYPE) * 2.0).requires_grad_()
    dustbin = torch.tensor(0.3, dtype=DTYPE, requires_grad=True)
    q = torch.tensor(0.4, dtype=DTYPE, requires_grad=True)
    r = torch.tensor(0.02, dtype=DTYPE, requires_grad=True)
    p_vel = torch.tensor(1.2, dtype=DTYPE, requires_grad=True)

    def objective_fn(logits, dustbin, q, r, p_vel):
        log_assignment = log_sinkhorn_dustbin(
            logits, dustbin, batch.mask[:, 1:], batch.mask[:, :-1], 20
        )
        products = association_products(real_assignment(log_assignment), batch.mask[:, 0])
        return clip_loglik(batch, products, NoiseParams(q, r, p_vel), objective)

    assert torch.autograd.gradcheck(
        objective_fn, (logits, dustbin, q, r, p_vel), eps=1e-6, atol=1e-6, rtol=1e-5
    )


def test_gradients_are_finite_with_empty_frame_float32():
    batch = random_batch(3, 2, 5, 4, empty_frame=2).to("cpu", torch.float32)
    logits = torch.randn(2, 4, 4, 4, requires_grad=True)
    log_assignment = log_sinkhorn_dustbin(
        logits, torch.tensor(0.0), batch.mask[:, 1:], batch.mask[:, :-1]
    )
    products = association_products(real_assignment(log_assignment), batch.mask[:, 0])
    noise = NoiseParams(*(x.float().requires_grad_() for x in (NOISE.q, NOISE.r, NOISE.p_vel)))
    loss = -clip_loglik(batch, products, noise, "smoothed").sum()
    loss.backward()
    assert torch.isfinite(loss)
    for tensor in (logits, noise.q, noise.r, noise.p_vel):
        assert torch.isfinite(tensor.grad).all()


# --------------------------------------------------------------------------------------------
# safe_cholesky
# --------------------------------------------------------------------------------------------


def test_safe_cholesky_pd_is_plain_cholesky():
    a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=DTYPE)
    torch.testing.assert_close(safe_cholesky(a), torch.linalg.cholesky(a))


def test_safe_cholesky_recovers_from_singular_psd():
    v = torch.tensor([[1.0], [2.0], [-1.0]], dtype=DTYPE)
    singular = v @ v.T  # rank 1
    pd = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 3.0]], dtype=DTYPE)
    batch = torch.stack([pd, singular, torch.zeros(3, 3, dtype=DTYPE)])
    assert bool((torch.linalg.cholesky_ex(batch).info > 0).any())
    factor = safe_cholesky(batch)
    assert torch.isfinite(factor).all()
    assert bool((factor.diagonal(dim1=-2, dim2=-1) > 0).all())
    reconstructed = factor @ factor.transpose(-1, -2)
    scale = batch.diagonal(dim1=-2, dim2=-1).abs().mean(-1).clamp_min(1e-12)
    # Jitter is at most 1 % of the mean diagonal.
    error = (reconstructed - batch).abs().amax((-2, -1))
    assert bool((error <= 1e-2 * scale + 1e-12).all())


def test_safe_cholesky_jitters_only_the_failing_matrices():
    """A grossly indefinite matrix (float32 cancellation can produce one) still gets a finite
    factor (last resort: diagonal dominance); the PD matrices of the batch are untouched."""
    pd = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=DTYPE)
    indefinite = torch.tensor([[1.0, 3.0], [3.0, 1.0]], dtype=DTYPE)  # eigenvalues 4, -2
    factor = safe_cholesky(torch.stack([pd, indefinite, -torch.eye(2, dtype=DTYPE)]))
    assert torch.isfinite(factor).all()
    assert bool((factor.diagonal(dim1=-2, dim2=-1) > 0).all())
    assert torch.equal(factor[0], torch.linalg.cholesky(pd))


def test_safe_cholesky_raises_on_nan():
    matrix = torch.eye(3, dtype=DTYPE)
    matrix[1, 1] = math.nan
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        safe_cholesky(matrix)

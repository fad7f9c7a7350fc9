"""The EM loss: variable detection counts, association products, planted vs all-dustbin."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emtrack.model.loss import (
    OBJECTIVES,
    ClipBatch,
    association_products,
    clip_loglik,
    em_loss,
)
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.train.clips import pad_clips

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGE_W, IMAGE_H = 1920.0, 1080.0
LOG_CLUTTER = -math.log(IMAGE_W * IMAGE_H)


def constant_velocity_clip(
    rng: np.random.Generator,
    frames: int = 8,
    objects: int = 4,
    fps: float = 25.0,
    empty_frame: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Boxes ``(n_t, 4)`` and identities ``(n_t,)`` per frame, detections shuffled.

    Objects move at constant velocity with 1 px jitter; object 0 is missed in frame 5, the
    last object is born in frame 3, and a clutter detection (id -1) appears in frame 4.
    """
    height = rng.uniform(80.0, 200.0, objects)
    width = 0.4 * height
    start = np.stack([rng.uniform(200.0, 1700.0, objects), rng.uniform(300.0, 1000.0, objects)], 1)
    velocity = rng.normal(0.0, 1.0, (objects, 2)) * height[:, None]  # px/s
    boxes_per_frame, ids_per_frame = [], []
    for t in range(frames):
        alive = np.ones(objects, dtype=bool)
        if t < 3:
            alive[-1] = False
        if t == 5:
            alive[0] = False
        if t == empty_frame:
            alive[:] = False
        x_c, y_b = (start + velocity * t / fps + rng.normal(0.0, 1.0, (objects, 2))).T
        boxes = np.stack([x_c - width / 2, y_b - height, x_c + width / 2, y_b], 1)[alive]
        ids = np.flatnonzero(alive)
        if t == 4 and t != empty_frame:
            boxes = np.concatenate([boxes, [[50.0, 60.0, 90.0, 160.0]]])
            ids = np.concatenate([ids, [-1]])
        order = rng.permutation(len(ids))
        boxes_per_frame.append(boxes[order])
        ids_per_frame.append(ids[order])
    return boxes_per_frame, ids_per_frame


def pad(
    clips: list[list[np.ndarray]], fps: float = 25.0, dtype: torch.dtype = torch.float64
) -> ClipBatch:
    b = len(clips)
    batch = pad_clips(clips, np.full(b, 1.0 / fps), np.full(b, float(IMAGE_W * IMAGE_H)))
    return batch.to("cpu", dtype)


def pad_ids(ids: list[list[np.ndarray]], n: int) -> np.ndarray:
    out = np.full((len(ids), len(ids[0]), n), -2, dtype=np.int64)  # -2: padding
    for i, clip in enumerate(ids):
        for k, frame in enumerate(clip):
            out[i, k, : len(frame)] = frame
    return out


def variable_batch(dtype: torch.dtype = torch.float64, seed: int = 0):
    rng = np.random.default_rng(seed)
    clips, ids = zip(
        constant_velocity_clip(rng, empty_frame=None),
        constant_velocity_clip(rng, empty_frame=4),  # an empty frame in the middle
        constant_velocity_clip(rng, objects=2),
        strict=True,
    )
    batch = pad(list(clips), dtype=dtype)
    return batch, pad_ids(list(ids), batch.mask.shape[-1])


class PlantedNet(AssociationNet):
    """An 'association network' that returns fixed logits (for loss comparisons)."""

    def __init__(self, logits: torch.Tensor, dustbin_logit: float) -> None:
        super().__init__(hidden=(4,))
        self.logits = logits
        self.dustbin_logit = torch.nn.Parameter(torch.tensor(dustbin_logit, dtype=logits.dtype))

    def forward(self, ref_boxes_xyxy, cur_boxes_xyxy, gap_s):
        return self.logits


def identity_logits(ids: np.ndarray, scale: float = 10.0) -> torch.Tensor:
    """``(B, T-1, N, N)``: +scale where detection j of frame t has the identity of detection i
    of frame t-1, -scale elsewhere (clutter, births and padding never match)."""
    prev, cur = ids[:, :-1, None, :], ids[:, 1:, :, None]
    same = (prev == cur) & (cur >= 0)
    return torch.tensor(np.where(same, scale, -scale), dtype=torch.float64)


# --------------------------------------------------------------------------------------------


def test_association_products_shapes_and_p0():
    gen = torch.Generator().manual_seed(0)
    b, t, n = 2, 4, 3
    assignment = torch.rand(b, t - 1, n, n, generator=gen, dtype=torch.float64)
    slot_mask = torch.tensor([[True, True, False], [True, False, True]])
    products = association_products(assignment, slot_mask)
    assert products.shape == (b, t, n, n)
    torch.testing.assert_close(products[:, 0], torch.diag_embed(slot_mask.double()))
    # P_t = A_t … A_1 diag(mask): columns of padded slots are 0.
    expected = torch.diag_embed(slot_mask.double())
    for k in range(1, t):
        expected = assignment[:, k - 1] @ expected
        torch.testing.assert_close(products[:, k], expected)
    assert float(products[0, :, :, 2].abs().max()) == 0.0
    assert float(products[1, :, :, 1].abs().max()) == 0.0


def test_association_products_of_permutations_track_identities():
    # Detection j of frame t is detection perm_t[j] of frame t-1.
    perms = [[2, 0, 1], [1, 2, 0], [0, 2, 1]]
    assignment = torch.stack([torch.eye(3)[p] for p in perms])[None]
    products = association_products(assignment, torch.ones(1, 3, dtype=torch.bool))
    slot = np.arange(3)
    for k, p in enumerate(perms, start=1):
        slot = slot[p]
        torch.testing.assert_close(products[0, k], torch.eye(3)[slot])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_em_loss_variable_counts_finite_with_gradients(dtype, objective):
    batch, _ = variable_batch(dtype)
    counts = batch.mask.sum(-1)
    assert len(set(counts.flatten().tolist())) > 2  # really variable
    assert int(counts[1, 4]) == 0  # empty middle frame
    torch.manual_seed(0)
    net = AssociationNet().to(dtype)
    noise = NoiseModel().to(dtype)
    out = em_loss(net, noise, batch, objective, sinkhorn_iterations=20)
    assert out.loss.dtype == dtype
    assert torch.isfinite(out.loss)
    assert torch.isfinite(out.association_nll) and torch.isfinite(out.noise_nll)
    torch.testing.assert_close(out.loss, out.association_nll + out.noise_nll)
    b, t, n = batch.mask.shape
    assert out.log_assignment.shape == (b, t - 1, n + 1, n + 1)
    assert 0.0 <= float(out.mean_slot_mass) <= 1.0 + 1e-4
    out.loss.backward()
    for name, param in [*net.named_parameters(), *noise.named_parameters()]:
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    assert float(net.dustbin_logit.grad.abs()) > 0
    assert float(noise.log_r.grad.abs()) > 0


def test_em_loss_without_noise_learning_leaves_noise_untouched():
    batch, _ = variable_batch()
    net = AssociationNet().double()
    noise = NoiseModel().double()
    out = em_loss(net, noise, batch, learn_noise=False)
    assert float(out.noise_nll) == 0.0
    out.loss.backward()
    assert all(p.grad is None for p in noise.parameters())


def test_em_loss_is_invariant_to_detection_order():
    batch, _ = variable_batch()
    torch.manual_seed(1)
    net = AssociationNet().double()
    noise = NoiseModel().double()
    base = em_loss(net, noise, batch)
    gen = torch.Generator().manual_seed(3)
    boxes = batch.boxes_xyxy.clone()
    mask = batch.mask.clone()
    for b in range(mask.shape[0]):
        for t in range(mask.shape[1]):
            perm = torch.randperm(mask.shape[2], generator=gen)
            boxes[b, t] = boxes[b, t, perm]
            mask[b, t] = mask[b, t, perm]
    shuffled = em_loss(net, noise, ClipBatch(boxes, mask, batch.dt, batch.log_clutter_density))
    torch.testing.assert_close(shuffled.loss, base.loss, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(shuffled.association_nll, base.association_nll, rtol=1e-9, atol=0)


@torch.no_grad()
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_planted_assignment_beats_all_dustbin(objective):
    batch, ids = variable_batch()
    logits = identity_logits(ids)
    noise = NoiseModel().double()
    perfect = em_loss(PlantedNet(logits, 0.0), noise, batch, objective, 50)
    dustbin = em_loss(PlantedNet(logits, 60.0), noise, batch, objective, 50)
    # All dustbin: every detection of frames >= 1 is clutter, NLL = log(image area) each.
    assert float(dustbin.association_nll) == pytest.approx(-LOG_CLUTTER, abs=1e-3)
    assert float(dustbin.mean_slot_mass) < 1e-6
    # The planted identities explain most detections far better than clutter does.
    assert float(perfect.mean_slot_mass) > 0.5
    assert float(perfect.association_nll) < float(dustbin.association_nll) - 3.0
    assert float(perfect.noise_nll) < float(dustbin.noise_nll)
    # And a wrong planted assignment (identities of frame t shifted) is worse than the truth.
    wrong = em_loss(PlantedNet(logits.roll(1, dims=-1), 0.0), noise, batch, objective, 50)
    assert float(perfect.association_nll) < float(wrong.association_nll)


@torch.no_grad()
def test_planted_assignment_has_the_right_slot_mass():
    """With sharp planted logits, ``m_j`` is 1 for detections continuing an unbroken chain to
    frame 0 and 0 for births, clutter and re-appearances after a miss. (Sharp logits make
    Sinkhorn converge slowly, hence the many iterations.)"""
    batch, ids = variable_batch()
    logits = identity_logits(ids, scale=20.0)
    out = em_loss(PlantedNet(logits, 0.0), NoiseModel().double(), batch, "smoothed", 1000)
    assignment = out.log_assignment[..., :-1, :-1].exp()
    products = association_products(assignment, batch.mask[:, 0])
    mass = products.sum(-1)
    b_count, t_count, _ = batch.mask.shape
    for b in range(b_count):
        chain = set(ids[b, 0][ids[b, 0] >= 0].tolist())
        for t in range(1, t_count):
            chain &= set(ids[b, t].tolist())
            for j in np.flatnonzero(batch.mask[b, t].numpy()):
                expected = 1.0 if ids[b, t, j] in chain else 0.0
                assert float(mass[b, t, j]) == pytest.approx(expected, abs=5e-3)


def test_clip_loglik_rejects_unknown_objective():
    batch, _ = variable_batch()
    b, t, n = batch.mask.shape
    products = torch.zeros(b, t, n, n, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown objective"):
        clip_loglik(batch, products, NoiseModel().double().params(), "bogus")  # type: ignore[arg-type]

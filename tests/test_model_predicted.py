"""The ``predicted`` association: each frame's detections against the slots' predicted boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emtrack.model.features import edge_features
from emtrack.model.loss import (
    ASSOCIATIONS,
    ClipBatch,
    em_loss,
    predicted_references,
)
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.train import TrainConfig
from test_model_loss import pad, variable_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ProximityNet(AssociationNet):
    """Logits that fall with the scale-free distance between the boxes (no training needed)."""

    def __init__(self) -> None:
        super().__init__(hidden=(4,))
        self.dustbin_logit = torch.nn.Parameter(torch.tensor(0.0, dtype=torch.float64))

    def forward(self, ref_boxes_xyxy, cur_boxes_xyxy, gap_s):
        distance = edge_features(ref_boxes_xyxy, cur_boxes_xyxy, gap_s)[..., 6]
        return 20.0 - 40.0 * distance


def test_first_frame_references_are_the_slots_with_the_clip_gap() -> None:
    batch, _ = variable_batch()
    refs, gaps = predicted_references(ProximityNet(), NoiseModel().double().params(), batch, 20)
    b, t, n = batch.mask.shape
    assert refs.shape == (b, t - 1, n, 4) and gaps.shape == (b, t - 1, n)
    # Frame 1: velocity 0, so the prediction is the frame-0 box, last seen one frame ago.
    slots = batch.mask[:, 0]
    torch.testing.assert_close(refs[:, 0][slots], batch.boxes_xyxy[:, 0][slots])
    torch.testing.assert_close(gaps[:, 0], batch.dt[:, None].expand(b, n))
    assert not refs.requires_grad


def test_a_missed_detection_does_not_cut_the_slot_off() -> None:
    """Object 0 is missed in frame 5: the chained products lose its slot for good, the
    predicted association finds it again in frames 6 and 7 (and the gap covers the miss)."""
    batch, ids = variable_batch()
    clip = 0
    net, noise = ProximityNet(), NoiseModel().double()
    slot = int(np.flatnonzero(ids[clip, 0] == 0)[0])
    mass = {}
    for association in ASSOCIATIONS:
        with torch.no_grad():
            out = em_loss(net, noise, batch, association=association)
        assignment = out.log_assignment[clip, :, :-1, :-1].exp()  # (T-1, N, N)
        if association == "chain":
            # detection -> previous detection; follow object 0 back to frame 0.
            products = torch.eye(assignment.shape[-1], dtype=torch.float64)
            to_slot = []
            for step in assignment:
                products = step @ products
                to_slot.append(products)
            to_slot = torch.stack(to_slot)
        else:
            to_slot = assignment
        mass[association] = [
            float(to_slot[t - 1, int(np.flatnonzero(ids[clip, t] == 0)[0]), slot]) for t in (6, 7)
        ]
        before = float(to_slot[3, int(np.flatnonzero(ids[clip, 4] == 0)[0]), slot])
        assert before > 0.8, association  # both follow it while it is seen
    assert max(mass["chain"]) < 0.01
    assert min(mass["predicted"]) > 0.9
    refs, gaps = predicted_references(net, noise.params(), batch, 20)
    # Frame 6: last seen (almost surely) in frame 4, two frames earlier.
    assert abs(float(gaps[clip, 5, slot] / batch.dt[clip]) - 2.0) < 0.05


def test_predicted_loss_is_finite_with_gradients_for_the_network() -> None:
    batch, _ = variable_batch(torch.float32)
    torch.manual_seed(0)
    net = AssociationNet()
    noise = NoiseModel()
    out = em_loss(net, noise, batch, association="predicted")
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name, param in [*net.named_parameters(), *noise.named_parameters()]:
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert float(net.mlp[0].weight.grad.abs().sum()) > 0


def test_predicted_loss_is_invariant_to_detection_order() -> None:
    batch, _ = variable_batch()
    torch.manual_seed(1)
    net = AssociationNet().double()
    noise = NoiseModel().double()
    base = em_loss(net, noise, batch, association="predicted")
    gen = torch.Generator().manual_seed(3)
    boxes, mask = batch.boxes_xyxy.clone(), batch.mask.clone()
    for b in range(mask.shape[0]):
        for t in range(mask.shape[1]):
            perm = torch.randperm(mask.shape[2], generator=gen)
            boxes[b, t], mask[b, t] = boxes[b, t, perm], mask[b, t, perm]
    shuffled = em_loss(
        net,
        noise,
        ClipBatch(boxes, mask, batch.dt, batch.log_clutter_density),
        association="predicted",
    )
    torch.testing.assert_close(shuffled.loss, base.loss, rtol=1e-9, atol=1e-9)


def test_structured_equals_dense_with_the_predicted_association() -> None:
    batch, _ = variable_batch()
    torch.manual_seed(2)
    net = AssociationNet().double()
    noise = NoiseModel().double()
    fast = em_loss(net, noise, batch, association="predicted")
    dense = em_loss(net, noise, batch, association="predicted", kalman="dense")
    torch.testing.assert_close(fast.loss, dense.loss, rtol=1e-9, atol=1e-9)


def test_unknown_association_is_refused() -> None:
    batch = pad([[np.array([[0.0, 0.0, 10.0, 20.0]])] * 3])
    with pytest.raises(ValueError, match="association"):
        em_loss(AssociationNet().double(), NoiseModel().double(), batch, association="x")
    with pytest.raises(ValueError, match="association"):
        TrainConfig(association="x")

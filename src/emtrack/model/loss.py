"""The EM objective of a batch of clips: association -> permutation products -> Kalman -> NLL."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emtrack.model.choices import (
    ASSOCIATIONS,
    KALMAN_IMPLS,
    OBJECTIVES,
    Association,
    KalmanImpl,
    Objective,
)
from emtrack.model.dense import dense_clip_loglik
from emtrack.model.features import box_heights, box_positions
from emtrack.model.kalman import (
    NoiseParams,
    ObservationModel,
    clutter_correction,
    filtered_loglik,
    initial_state,
    kalman_filter,
    kalman_update,
    observation_model,
    predict,
    process_noise,
    smoothed_loglik,
)
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.model.sinkhorn import log_sinkhorn_dustbin, real_assignment


@dataclass(frozen=True)
class ClipBatch:
    """A padded batch of clips (detections only: no identities).

    Attributes:
        boxes_xyxy: ``(B, T, N, 4)``, padding boxes are arbitrary but finite (e.g. unit boxes).
        mask: ``(B, T, N)`` bool, real detections.
        dt: ``(B,)`` seconds between consecutive clip frames.
        log_clutter_density: ``(B,)`` log of the density of a clutter/new detection's position
            (``-log(image area)``).
    """

    boxes_xyxy: torch.Tensor
    mask: torch.Tensor
    dt: torch.Tensor
    log_clutter_density: torch.Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype) -> ClipBatch:
        return ClipBatch(
            self.boxes_xyxy.to(device, dtype),
            self.mask.to(device),
            self.dt.to(device, dtype),
            self.log_clutter_density.to(device, dtype),
        )

    def clips(self, part: slice) -> ClipBatch:
        """The clips ``part`` of the batch (the padded sizes T and N are kept)."""
        return ClipBatch(
            self.boxes_xyxy[part], self.mask[part], self.dt[part], self.log_clutter_density[part]
        )


@dataclass(frozen=True)
class LossOutput:
    """Result of :func:`em_loss`.

    Attributes:
        loss: scalar to minimise (association part + noise part).
        association_nll: per-detection NLL of the chosen objective (noise detached).
        noise_nll: per-detection innovations NLL used to fit the noise (association detached).
        log_assignment: ``(B, T-1, N+1, N+1)`` dustbin log assignment of each frame pair.
        mean_slot_mass: mean ``m_j`` over real detections of frames 1 … T-1.
    """

    loss: torch.Tensor
    association_nll: torch.Tensor
    noise_nll: torch.Tensor
    log_assignment: torch.Tensor
    mean_slot_mass: torch.Tensor


def association_products(assignment: torch.Tensor, slot_mask: torch.Tensor) -> torch.Tensor:
    """``P_t = A_t A_{t-1} … A_1`` with ``P_0 = diag(slot mask)``.

    Args:
        assignment: ``(B, T-1, N, N)`` ``A_t[j, i]``, detection j of frame t is detection i of
            frame t-1.
        slot_mask: ``(B, N)`` real detections of frame 0 (the slots).

    Returns:
        ``(B, T, N, N)``: ``P_t[j, i]`` = probability that detection j of frame t is slot i.
    """
    product = torch.diag_embed(slot_mask.to(assignment.dtype))
    products = [product]
    for t in range(assignment.shape[1]):
        product = assignment[:, t] @ product
        products.append(product)
    return torch.stack(products, 1)


def clip_observations(
    batch: ClipBatch, products: torch.Tensor, r: torch.Tensor
) -> tuple[ObservationModel, torch.Tensor, torch.Tensor]:
    """Observation model of the clips, the slots' frame-0 positions ``(B, N, 2)`` and heights."""
    positions = box_positions(batch.boxes_xyxy)
    heights = box_heights(batch.boxes_xyxy)
    obs = observation_model(products, positions, heights, batch.mask, r)
    return obs, positions[:, 0], heights[:, 0]


def clip_loglik(
    batch: ClipBatch,
    products: torch.Tensor,
    noise: NoiseParams,
    objective: Objective,
    kalman: KalmanImpl = "structured",
) -> torch.Tensor:
    """Tempered log-likelihood ``(B,)`` of frames 1 … T-1 under the chosen posterior.

    ``smoothed``: the paper's objective, ``Σ_t log N(z_t; H_t m^s_t, H_t C^s_t H_tᵀ + R)`` with
    the RTS-smoothed posterior; ``filtered``: the same with the filtered posterior (ablation);
    ``innovations``: the exact marginal likelihood ``log p(z_1 … z_{T-1} | z_0)``.
    ``kalman="dense"`` computes the same quantity with the joint-state oracle (slow).
    """
    obs, pos0, h0 = clip_observations(batch, products, noise.r)
    if kalman == "dense":
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
        ll = dense_clip_loglik(obs, pos0, h0, batch.dt, noise, objective)
        return ll + clutter_correction(obs, batch.log_clutter_density)
    if kalman != "structured":
        raise ValueError(f"unknown kalman {kalman!r}; expected one of {KALMAN_IMPLS}")
    filtered, innovations = kalman_filter(obs, pos0, h0, batch.dt, noise)
    if objective == "innovations":
        ll = innovations
    elif objective == "filtered":
        ll = filtered_loglik(filtered)
    elif objective == "smoothed":
        ll = smoothed_loglik(filtered, batch.dt)
    else:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    return ll + clutter_correction(obs, batch.log_clutter_density)


def association_log_assignment(
    net: AssociationNet, batch: ClipBatch, sinkhorn_iterations: int
) -> torch.Tensor:
    """Dustbin log assignment of every adjacent frame pair, ``(B, T-1, N+1, N+1)``."""
    boxes = batch.boxes_xyxy
    gap = batch.dt[:, None, None, None]
    logits = net(boxes[:, :-1], boxes[:, 1:], gap)  # (B, T-1, N, N)
    return log_sinkhorn_dustbin(
        logits, net.dustbin_logit, batch.mask[:, 1:], batch.mask[:, :-1], sinkhorn_iterations
    )


@torch.no_grad()
def predicted_references(
    net: AssociationNet,
    noise: NoiseParams,
    batch: ClipBatch,
    sinkhorn_iterations: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """E-step of the ``predicted`` association: the slots' predicted boxes in every frame.

    One Kalman filter pass over the clip in which frame t's detections are associated (network
    + dustbin Sinkhorn) with the slots' predicted boxes and the filter is updated with that
    soft assignment. A slot's predicted box is its predicted bottom-centre with the size of its
    last (soft) detection; its gap is the (expected) time since it was last detected.
    Nothing here carries gradients: the M-step scores these references against the detections.

    Args:
        net: the association network; noise: noise constants; batch: the clips;
        sinkhorn_iterations: Sinkhorn rounds.

    Returns:
        ``(boxes (B, T-1, N, 4), gap_s (B, T-1, N))``: for frames 1 … T-1, every slot's
        predicted box and the seconds since its last detection.
    """
    boxes = batch.boxes_xyxy
    positions = box_positions(boxes)
    heights = box_heights(boxes)
    widths = (boxes[..., 2] - boxes[..., 0]).clamp_min(1e-3)
    slot_mask = batch.mask[:, 0]
    step = batch.dt[:, None, None]
    noise_blocks = process_noise(batch.dt, heights[:, 0], noise.q)
    moments = initial_state(positions[:, 0], heights[:, 0], noise)
    size_w, size_h = widths[:, 0], heights[:, 0]
    age = torch.zeros_like(size_h)
    refs, gaps = [], []
    for t in range(1, boxes.shape[1]):
        prior = predict(*moments, step, noise_blocks)
        pos = prior[0][0]
        ref = torch.stack(
            [pos[..., 0] - size_w / 2, pos[..., 1] - size_h, pos[..., 0] + size_w / 2, pos[..., 1]],
            -1,
        )
        gap = age + batch.dt[:, None]
        logits = net(ref, boxes[:, t], gap[:, None, :])
        log_assignment = log_sinkhorn_dustbin(
            logits, net.dustbin_logit, batch.mask[:, t], slot_mask, sinkhorn_iterations
        )
        assignment = real_assignment(log_assignment)  # (B, M, N)
        obs = observation_model(
            assignment[:, None],
            positions[:, t : t + 1],
            heights[:, t : t + 1],
            batch.mask[:, t : t + 1],
            noise.r,
        )
        count = batch.mask[:, t].to(pos.dtype).sum(-1)
        moments, _, _ = kalman_update(
            prior,
            obs.matrix[:, 0],
            obs.variance[:, 0],
            torch.diag_embed(obs.variance[:, 0]),
            obs.values[:, 0],
            count,
        )
        seen = assignment.sum(-2).clamp(0.0, 1.0)  # (B, N) mass each slot received
        to_slots = assignment.transpose(-1, -2)
        size_w = (to_slots @ widths[:, t, :, None])[..., 0] + (1.0 - seen) * size_w
        size_h = (to_slots @ heights[:, t, :, None])[..., 0] + (1.0 - seen) * size_h
        age = (1.0 - seen) * gap
        refs.append(ref)
        gaps.append(gap)
    return torch.stack(refs, 1), torch.stack(gaps, 1)


def predicted_log_assignment(
    net: AssociationNet,
    noise: NoiseParams,
    batch: ClipBatch,
    sinkhorn_iterations: int,
) -> torch.Tensor:
    """Dustbin log assignment of every frame's detections to the slots, ``(B, T-1, N+1, N+1)``.

    Rows are the detections of frame t, columns the slots (the detections of frame 0), scored
    against the slots' predicted boxes of :func:`predicted_references` (fixed, as in EM).
    """
    refs, gaps = predicted_references(net, noise, batch, sinkhorn_iterations)
    logits = net(refs, batch.boxes_xyxy[:, 1:], gaps[:, :, None, :])  # (B, T-1, N, N)
    slot_mask = batch.mask[:, :1].expand_as(batch.mask[:, 1:])
    return log_sinkhorn_dustbin(
        logits, net.dustbin_logit, batch.mask[:, 1:], slot_mask, sinkhorn_iterations
    )


def kalman_nll(
    batch: ClipBatch,
    products: torch.Tensor,
    noise: NoiseParams,
    objective: Objective = "smoothed",
    learn_noise: bool = True,
    kalman: KalmanImpl = "structured",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Kalman part of :func:`em_loss`, given the association products ``(B, T, N, N)``.

    Returns:
        ``(association_nll, noise_nll)``, scalars per detection of frames 1 … T-1: the chosen
        objective with the noise detached, and the innovations NLL with the products detached
        (0 when not ``learn_noise``).
    """
    count = batch.mask[:, 1:].sum().clamp_min(1).to(products.dtype)
    association_nll = -clip_loglik(batch, products, noise.detach(), objective, kalman).sum() / count
    if learn_noise:
        noise_nll = (
            -clip_loglik(batch, products.detach(), noise, "innovations", kalman).sum() / count
        )
    else:
        noise_nll = torch.zeros((), dtype=products.dtype, device=products.device)
    return association_nll, noise_nll


def em_loss(
    net: AssociationNet,
    noise_model: NoiseModel,
    batch: ClipBatch,
    objective: Objective = "smoothed",
    sinkhorn_iterations: int = 20,
    learn_noise: bool = True,
    kalman: KalmanImpl = "structured",
    association: Association = "chain",
) -> LossOutput:
    """Negative log-likelihood of the detections, per detection of frames 1 … T-1.

    The association network is trained through ``objective`` with the noise constants held
    fixed; the noise constants are fitted by maximum (innovations) likelihood with the
    association held fixed. (Fitting noise through the smoothed objective is degenerate: a
    huge Q lets the smoothed means pass through the data and R shrink to zero.)
    ``kalman="dense"`` runs the joint-state oracle instead of the structured filter (for the
    tests and the training benchmark; the result is the same up to rounding).
    """
    if association == "chain":
        log_assignment = association_log_assignment(net, batch, sinkhorn_iterations)
        assignment = real_assignment(log_assignment)
        products = association_products(assignment, batch.mask[:, 0])
    elif association == "predicted":
        log_assignment = predicted_log_assignment(
            net, noise_model.params(), batch, sinkhorn_iterations
        )
        assignment = real_assignment(log_assignment)
        first = torch.diag_embed(batch.mask[:, 0].to(assignment.dtype))[:, None]
        products = torch.cat([first, assignment], 1)
    else:
        raise ValueError(f"unknown association {association!r}; expected one of {ASSOCIATIONS}")
    association_nll, noise_nll = kalman_nll(
        batch, products, noise_model.params(), objective, learn_noise, kalman
    )
    count = batch.mask[:, 1:].sum().clamp_min(1).to(assignment.dtype)
    mass = (products[:, 1:].sum(-1) * batch.mask[:, 1:]).sum() / count
    return LossOutput(
        association_nll + noise_nll, association_nll, noise_nll, log_assignment, mass.detach()
    )

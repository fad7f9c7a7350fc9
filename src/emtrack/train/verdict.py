"""The verdict at the end of training: does the network link at least as well as IoU?

Two judges, each used when its data exist:

- **Held-out synthetic clips** (identities known): the network's link accuracy against
  IoU ≥ 0.3 + Hungarian on the same clips, at frame gaps 1–4 (what
  :func:`~emtrack.train.heldout.gap_accuracy` prints). The network fails when its mean over
  the gaps is below IoU's.
- **The user's own detections** (identities unknown): clips of every frame, drawn from the
  training detections with a fixed seed. A link is *confident* when its two boxes overlap with
  IoU ≥ :data:`CONFIDENT_IOU` and each is the other's best overlap (IoU and Hungarian agree
  both ways); such links are almost always right, and IoU + Hungarian makes every one of
  them. The network fails when it makes fewer than :data:`MIN_AGREEMENT` of them.

A model that fails either judge is recorded as ``ok: False`` in the checkpoint and in the
exported ``.npz``; ``emtrack train`` prints a warning block, and the tracker warns when it
loads such a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from emtrack.model.features import box_iou
from emtrack.model.loss import ClipBatch, association_log_assignment
from emtrack.model.network import AssociationNet
from emtrack.train.accuracy import network_links
from emtrack.train.clips import ClipSampler, DetectionStream

#: Least IoU of a confident link between the user's detections.
CONFIDENT_IOU = 0.5
#: Least fraction of the confident IoU links the network must make on the user's detections.
MIN_AGREEMENT = 0.9
#: Clips drawn from the user's detections for the verdict.
OWN_CLIPS = 48
#: Added to the training seed for drawing those clips.
OWN_CLIP_SEED_OFFSET = 11


@dataclass(frozen=True)
class Verdict:
    """How a trained network links compared with IoU + Hungarian.

    Attributes:
        ok: True when it links at least as well on every judge that had data, False when it
            links worse on one, None when there was nothing to judge on.
        gaps: held-out synthetic accuracy per frame gap: ``{gap: {"accuracy", "iou_accuracy",
            "oracle_accuracy"}}`` (empty without held-out scenes).
        own_agreement: fraction of the confident IoU links of the user's detections that the
            network makes (None without detection files).
        own_links: how many confident links were judged.
        problems: one sentence per failed judge.
    """

    ok: bool | None
    gaps: dict[int, dict[str, float]] = field(default_factory=dict)
    own_agreement: float | None = None
    own_links: int = 0
    problems: tuple[str, ...] = ()

    @property
    def synthetic_accuracy(self) -> float | None:
        """The network's held-out accuracy, mean over the gaps."""
        return _mean([g["accuracy"] for g in self.gaps.values()])

    @property
    def synthetic_iou_accuracy(self) -> float | None:
        """IoU + Hungarian's held-out accuracy, mean over the gaps."""
        return _mean([g["iou_accuracy"] for g in self.gaps.values()])

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (stored in checkpoints and, as JSON, in ``.npz`` exports)."""
        return {
            "ok": self.ok,
            "gaps": {str(k): dict(v) for k, v in self.gaps.items()},
            "synthetic_accuracy": self.synthetic_accuracy,
            "synthetic_iou_accuracy": self.synthetic_iou_accuracy,
            "own_agreement": self.own_agreement,
            "own_links": self.own_links,
            "min_agreement": MIN_AGREEMENT,
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        gaps = {int(k): {n: float(x) for n, x in v.items()} for k, v in data["gaps"].items()}
        agreement = data.get("own_agreement")
        return cls(
            None if data["ok"] is None else bool(data["ok"]),
            gaps,
            None if agreement is None else float(agreement),
            int(data.get("own_links", 0)),
            tuple(str(p) for p in data.get("problems", ())),
        )


class TrainingVerdictWarning(UserWarning):
    """Issued by :func:`~emtrack.train.train` when the trained network links worse than IoU."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(
            "the trained network links worse than IoU+Hungarian: " + "; ".join(verdict.problems)
        )


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def confident_iou_links(batch: ClipBatch, threshold: float = CONFIDENT_IOU) -> np.ndarray:
    """Links of adjacent clip frames that IoU makes with confidence.

    Detection ``i`` of frame t+1 and ``j`` of frame t form a confident link when their IoU is
    at least ``threshold`` and each is the other's largest overlap (so Hungarian on IoU pairs
    them too).

    Args:
        batch: clips ``(B, T, N, 4)`` with their mask.

    Returns:
        ``(B, T-1, N)``: for each detection of frames 1 … T-1, the index of its confident
        partner in the previous frame, or -1.
    """
    boxes = batch.boxes_xyxy.double().numpy()
    mask = batch.mask.numpy()
    iou = box_iou(boxes[:, 1:, :, None, :], boxes[:, :-1, None, :, :])  # (B, T-1, M, N)
    iou = np.where(mask[:, 1:, :, None] & mask[:, :-1, None, :], iou, 0.0)
    best_col = iou.argmax(-1)  # (B, T-1, M)
    best_row = iou.argmax(-2)  # (B, T-1, N)
    best = np.take_along_axis(iou, best_col[..., None], -1)[..., 0]
    mutual = np.take_along_axis(best_row, best_col, -1) == np.arange(iou.shape[-2])
    return np.where(mutual & (best >= threshold), best_col, -1)


@torch.no_grad()
def own_detection_agreement(
    net: AssociationNet,
    streams: Sequence[DetectionStream],
    clip_length: int,
    max_detections: int,
    sinkhorn_iterations: int,
    seed: int,
    num_clips: int = OWN_CLIPS,
) -> tuple[float | None, int]:
    """Fraction of the confident IoU links of ``streams`` that the network makes.

    Clips take every frame (stride 1) and are drawn with ``seed``; the network links as in
    the held-out accuracy (Hungarian on its dustbin assignment).

    Returns:
        ``(agreement, links)``; agreement is None when the clips hold no confident link.
    """
    usable = tuple(s for s in streams if len(s) >= clip_length)
    if not usable:
        return None, 0
    sampler = ClipSampler(usable, clip_length, 1, max_detections)
    rng = np.random.default_rng(seed + OWN_CLIP_SEED_OFFSET)
    try:
        batch = sampler.sample(num_clips, rng)
    except ValueError:  # streams without detections
        return None, 0
    parameter = next(net.parameters())
    log_assignment = association_log_assignment(
        net, batch.to(parameter.device, parameter.dtype), sinkhorn_iterations
    )
    links = network_links(log_assignment.cpu(), batch.mask.numpy())
    confident = confident_iou_links(batch)
    judged = confident >= 0
    count = int(judged.sum())
    if count == 0:
        return None, 0
    return float((links[judged] == confident[judged]).mean()), count


def judge(
    gaps: Mapping[int, Mapping[str, float]],
    own_agreement: float | None,
    own_links: int,
) -> Verdict:
    """The verdict of held-out gap accuracies and the agreement on the user's detections."""
    problems = []
    judged = False
    gap_table = {int(k): {n: float(x) for n, x in v.items()} for k, v in gaps.items()}
    verdict = Verdict(None, gap_table, own_agreement, own_links)
    net_acc, iou_acc = verdict.synthetic_accuracy, verdict.synthetic_iou_accuracy
    if net_acc is not None and iou_acc is not None:
        judged = True
        if net_acc < iou_acc:
            problems.append(
                f"on held-out synthetic clips it links {100 * net_acc:.1f}% right (mean of gaps "
                f"{', '.join(map(str, gap_table))}), IoU+Hungarian {100 * iou_acc:.1f}%"
            )
    if own_agreement is not None:
        judged = True
        if own_agreement < MIN_AGREEMENT:
            problems.append(
                f"on the training detections it makes {100 * own_agreement:.1f}% of the "
                f"{own_links} links that IoU makes with confidence (IoU >= {CONFIDENT_IOU:g}, "
                f"mutual best), below {100 * MIN_AGREEMENT:.0f}%"
            )
    ok = (not problems) if judged else None
    return Verdict(ok, gap_table, own_agreement, own_links, tuple(problems))

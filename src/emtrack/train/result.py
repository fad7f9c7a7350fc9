"""What a training run gives back: the per-epoch history and the trained modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emtrack.train.config import TrainConfig

if TYPE_CHECKING:
    from emtrack.model.network import AssociationNet, NoiseModel
    from emtrack.train.verdict import Verdict

__all__ = ["EpochRecord", "TrainResult"]


@dataclass
class EpochRecord:
    """One line of the training history."""

    epoch: int
    loss: float
    association_nll: float
    noise_nll: float
    slot_mass: float
    clips_per_s: float
    accuracy: float | None = None
    iou_accuracy: float | None = None
    oracle_accuracy: float | None = None
    noise: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """A finished (or resumed and finished) run.

    Attributes:
        net, noise: the trained modules.
        config: the run's config.
        history: one record per epoch (on ranks other than 0 of a distributed run, without
            the held-out accuracy).
        is_main: this process is rank 0 (always true without torchrun); only it writes.
        max_gap_s: the longest time gap (s) the network was trained on (None: not known);
            exported with the weights, the tracker never feeds it a longer one.
        verdict: how the trained network links compared with IoU + Hungarian (rank 0 only;
            see :mod:`emtrack.train.verdict`); stored in the checkpoint and exported.
    """

    net: AssociationNet
    noise: NoiseModel
    config: TrainConfig
    history: list[EpochRecord]
    is_main: bool = True
    max_gap_s: float | None = None
    verdict: Verdict | None = None

"""Training settings (:class:`TrainConfig`) and the choices of its string fields.

Torch-free: the command line builds its options and a :class:`TrainConfig` from this module
without importing torch (a config names a device other than ``cpu`` only for torch to check
it, and that check imports torch).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from emtrack.model.choices import ASSOCIATIONS, OBJECTIVES, Association, Objective

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_LEGACY_FIELDS",
    "INIT_CHOICES",
    "LR_SCHEDULES",
    "InitChoice",
    "LrSchedule",
    "TrainConfig",
]

#: Values of :attr:`TrainConfig.lr_schedule`.
LrSchedule = Literal["constant", "cosine"]
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)
#: Values of :attr:`TrainConfig.init` besides a model file's path (see :mod:`emtrack.train.init`).
InitChoice = Literal["auto", "shipped", "scratch"]
INIT_CHOICES: tuple[str, ...] = get_args(InitChoice)

#: Fields added to TrainConfig after checkpoints existed, with the behaviour of the runs that
#: wrote those checkpoints (so resuming one is still the same run).
CHECKPOINT_LEGACY_FIELDS: dict[str, Any] = {
    "clutter_scale": 1.0,
    "clutter_warmup_epochs": 0.0,
    "lr_schedule": "constant",
    "init": "scratch",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint).

    Attributes:
        clip_length: frames per clip (T).
        batch_size: clips per step.
        steps_per_epoch: optimiser steps per epoch.
        epochs: number of epochs.
        learning_rate: Adam step size.
        lr_schedule: ``constant``, or ``cosine``: the step size decays from ``learning_rate`` to
            0 over the run (a function of the step, so resuming continues it).
        objective: ``smoothed`` (paper), ``filtered`` (ablation) or ``innovations`` (exact
            marginal likelihood).
        association: ``chain`` (the paper's adjacent-frame products) or ``predicted``
            (detections against the slots' Kalman-predicted boxes, as the tracker links).
        clutter_scale: multiplies the density of clutter/new detections in the loss (1 / image
            area per pixel of box centre). Above 1, leaving a detection unlinked costs less, so
            the network links only what the motion model explains well.
        clutter_warmup_epochs: epochs over which the scale grows (geometrically) from 1 to
            ``clutter_scale``. An untrained network links nothing reliably, and a large clutter
            density from the first step can keep it sending every detection to the dustbin.
        sinkhorn_iterations: Sinkhorn rounds.
        max_stride: clips take every s-th frame, s in ``1 … max_stride``.
        max_detections: detections kept per frame (highest scores).
        hidden: MLP hidden widths.
        learn_noise: fit Q, R and the initial velocity variance by maximum likelihood.
        synthetic_scenes: synthetic training scenes (0 = train on the given files only).
        synthetic_frames: frames per synthetic scene.
        heldout_scenes: synthetic scenes for the held-out accuracy (0 = no accuracy).
        heldout_clips: clips drawn from them (fixed for the whole run).
        seed: seeds every random generator of the run.
        float64: train in double precision.
        device: torch device.
        checkpoint_every: also write the checkpoint every this many optimiser steps
            (0: only at the end of each epoch).
        init: the weights the run starts from: ``auto`` (the shipped model's when ``hidden``
            matches it, else random), ``shipped``, ``scratch`` (random), or the path of an
            ``.npz`` export or ``.pt`` checkpoint (see :mod:`emtrack.train.init`).
    """

    clip_length: int = 10
    batch_size: int = 16
    steps_per_epoch: int = 50
    epochs: int = 10
    learning_rate: float = 1e-2
    lr_schedule: LrSchedule = "cosine"
    objective: Objective = "smoothed"
    association: Association = "chain"
    clutter_scale: float = 20.0
    clutter_warmup_epochs: float = 1.0
    sinkhorn_iterations: int = 20
    max_stride: int = 2
    max_detections: int = 48
    hidden: tuple[int, ...] = (32, 32)
    learn_noise: bool = True
    synthetic_scenes: int = 24
    synthetic_frames: int = 300
    heldout_scenes: int = 6
    heldout_clips: int = 48
    seed: int = 0
    float64: bool = False
    device: str = "cpu"
    checkpoint_every: int = 0
    init: InitChoice | str = "auto"

    def __post_init__(self) -> None:
        positive = (
            "clip_length",
            "batch_size",
            "steps_per_epoch",
            "epochs",
            "max_stride",
            "max_detections",
            "sinkhorn_iterations",
            "synthetic_frames",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_length < 2:
            raise ValueError("TrainConfig.clip_length must be >= 2")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"TrainConfig.objective must be one of {OBJECTIVES}")
        if self.association not in ASSOCIATIONS:
            raise ValueError(f"TrainConfig.association must be one of {ASSOCIATIONS}")
        if not (self.clutter_scale > 0 and math.isfinite(self.clutter_scale)):
            raise ValueError(f"TrainConfig.clutter_scale must be > 0, got {self.clutter_scale}")
        if not (self.clutter_warmup_epochs >= 0 and math.isfinite(self.clutter_warmup_epochs)):
            raise ValueError(
                f"TrainConfig.clutter_warmup_epochs must be >= 0, got {self.clutter_warmup_epochs}"
            )
        _check_device(self.device)
        if self.checkpoint_every < 0:
            raise ValueError(
                f"TrainConfig.checkpoint_every must be >= 0, got {self.checkpoint_every}"
            )
        if self.synthetic_scenes < 0 or self.heldout_scenes < 0 or self.heldout_clips < 1:
            raise ValueError("TrainConfig scene counts must be >= 0")
        if self.seed < 0:  # numpy's generators reject negative seeds deep inside training
            raise ValueError(f"TrainConfig.seed must be >= 0, got {self.seed}")
        if not isinstance(self.init, str) or not self.init:
            raise ValueError(
                f"TrainConfig.init must be one of {INIT_CHOICES} or a model file, got {self.init!r}"
            )
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"TrainConfig.hidden widths must be >= 1, got {self.hidden}")

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of the run (``float64`` or ``float32``; imports torch)."""
        import torch

        return torch.float64 if self.float64 else torch.float32

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {sorted(unknown)}")
        return cls(**{**data, "hidden": tuple(data.get("hidden", (32, 32)))})

    @classmethod
    def from_checkpoint(cls, data: dict) -> TrainConfig:
        """The config stored in a checkpoint; a field the checkpoint predates takes the value
        its run used (:data:`CHECKPOINT_LEGACY_FIELDS`), not today's default."""
        return cls.from_dict({**CHECKPOINT_LEGACY_FIELDS, **data})


def _check_device(device: str) -> None:
    """Refuse a device string torch does not parse. ``cpu`` always parses, so only another
    device imports torch to check it."""
    if device == "cpu":
        return
    import torch

    try:
        torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"TrainConfig.device must be a torch device (cpu, cuda), got {device!r}"
        ) from None

"""Writing training checkpoints, and the checks before one is resumed.

The file format and its reader are in :mod:`emtrack.model.checkpoint` (the tracker reads
checkpoints too, and must not import training code).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emtrack.errors import EmtrackInputError
from emtrack.io.atomic import atomic_write
from emtrack.model.checkpoint import CHECKPOINT_FORMAT
from emtrack.train.config import TrainConfig
from emtrack.train.result import TrainResult

__all__ = ["RESUMABLE_FIELDS", "check_resumable", "resume_config", "save_checkpoint"]

#: Config fields a resumed run may change: ``checkpoint_every`` and ``device`` do not change
#: what the run computes (``device`` changes rounding only); ``epochs`` may grow to train longer
#: (with the cosine step size the remaining steps then follow the longer run's schedule).
RESUMABLE_FIELDS: frozenset[str] = frozenset({"epochs", "checkpoint_every", "device"})

#: Checkpoint keys that hold the training state needed to resume (besides the weights).
_RESUME_KEYS: tuple[str, ...] = (
    "optimizer",
    "step",
    "numpy_rng",
    "torch_rng",
    "epoch_sums",
    "epoch_elapsed",
    "data_fingerprint",
)


def save_checkpoint(
    path: Path,
    result: TrainResult,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    rng: np.random.Generator,
    resume_state: Mapping[str, Any] | None = None,
) -> None:
    """Atomic checkpoint that loads with ``torch.load(weights_only=True)``.

    Args:
        path: the file (written to a temporary file beside it, then renamed).
        result: the modules, config and history.
        optimizer: its state is stored for resuming (None: none).
        step: optimiser steps completed.
        rng: the clip sampler's generator (its state is stored).
        resume_state: further entries written by :func:`~emtrack.train.train` (epoch
            accumulators, data fingerprint, detection paths); without them the checkpoint
            cannot be resumed.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": result.config.to_dict(),
        "net": result.net.state_dict(),
        "noise": result.noise.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        "history": [dataclasses.asdict(r) for r in result.history],
        "max_gap_s": result.max_gap_s,
        "verdict": None if result.verdict is None else result.verdict.to_dict(),
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        **(resume_state or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)


def resume_config(
    checkpoint_config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The config of a resumed run: the checkpoint's, with ``overrides`` applied.

    Overrides of fields outside :data:`RESUMABLE_FIELDS` are allowed only when they equal the
    checkpoint's value (``check_resumable`` refuses the others).
    """
    try:
        base = TrainConfig.from_checkpoint(dict(checkpoint_config))
    except (TypeError, ValueError) as exc:
        raise EmtrackInputError(f"the checkpoint's config is not valid ({exc})") from exc
    return dataclasses.replace(base, **dict(overrides or {}))


def check_resumable(checkpoint: Mapping[str, Any], config: TrainConfig, path: str | Path) -> None:
    """Refuse (clearly) to resume ``checkpoint`` with a config that would change the run.

    Raises:
        EmtrackInputError: the checkpoint holds no training state, its config is invalid, a
            field outside :data:`RESUMABLE_FIELDS` differs, or ``epochs`` is below what the
            checkpoint has completed.
    """
    missing = [key for key in _RESUME_KEYS if checkpoint.get(key) is None]
    if missing:
        raise EmtrackInputError(
            "cannot resume: the checkpoint holds no training state "
            f"(missing {', '.join(missing)}; written by an older emtrack?)",
            path,
        )
    try:
        saved = TrainConfig.from_checkpoint(dict(checkpoint["config"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise EmtrackInputError(
            f"cannot resume: the checkpoint's config is invalid ({exc})", path
        ) from exc
    changed = [
        f"{f.name}={getattr(config, f.name)!r} (checkpoint: {getattr(saved, f.name)!r})"
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RESUMABLE_FIELDS and getattr(config, f.name) != getattr(saved, f.name)
    ]
    if changed:
        raise EmtrackInputError(
            f"cannot resume with a different config: {'; '.join(changed)}. Only "
            f"{', '.join(sorted(RESUMABLE_FIELDS))} may change when resuming",
            path,
        )
    done = int(checkpoint["step"])
    if config.epochs * config.steps_per_epoch < done:
        raise EmtrackInputError(
            f"cannot resume with epochs={config.epochs}: the checkpoint has already done "
            f"{done} steps ({done / config.steps_per_epoch:g} epochs)",
            path,
        )

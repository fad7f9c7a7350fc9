"""Loading training checkpoints safely (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from emtrack.errors import EmtrackInputError
from emtrack.model.network import AssociationNet, NoiseModel


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict; a file that is not an emtrack checkpoint gets a clear error."""
    from emtrack.train.trainer import CHECKPOINT_FORMAT

    path = Path(path)
    if not path.is_file():
        raise EmtrackInputError("checkpoint not found", path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise EmtrackInputError(f"not a valid emtrack checkpoint ({exc})", path) from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise EmtrackInputError(f"not an emtrack checkpoint (expected {CHECKPOINT_FORMAT})", path)
    return data


def load_checkpoint_modules(path: str | Path) -> tuple[AssociationNet, NoiseModel]:
    """The trained network and noise model of a checkpoint (float32, CPU)."""
    data = load_checkpoint(path)
    hidden = tuple(data["config"].get("hidden", (32, 32)))
    net = AssociationNet(hidden).double()
    noise = NoiseModel().double()
    try:
        net.load_state_dict(data["net"])
        noise.load_state_dict(data["noise"])
    except (RuntimeError, KeyError) as exc:
        raise EmtrackInputError(f"checkpoint does not match the model ({exc})", path) from exc
    return net, noise

"""The training checkpoint file (``.pt``): its format tag and reading it safely.

Checkpoints are written by :func:`emtrack.train.checkpoint.save_checkpoint` and read by
training (resuming, ``--init``), by the tracker (``--model run.pt``) and by the plots. They load
with ``torch.load(weights_only=True)``, which never runs code from the file. This module does
not import torch until a checkpoint is read, so the torch-free tracker can import it.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emtrack.errors import EmtrackInputError

if TYPE_CHECKING:
    from emtrack.model.network import AssociationNet, NoiseModel

__all__ = [
    "CHECKPOINT_FORMAT",
    "load_checkpoint",
    "load_checkpoint_modules",
    "modules_from_checkpoint",
]

#: The ``format`` entry of every emtrack checkpoint.
CHECKPOINT_FORMAT = "emtrack-checkpoint-v1"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict; a file that is not an emtrack checkpoint gets a clear error.

    Raises:
        EmtrackInputError: The file is missing, holds pickled objects other than tensors and
            plain containers, is truncated or not written by ``torch.save``, or is not an
            emtrack checkpoint (no :data:`CHECKPOINT_FORMAT` tag).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise EmtrackInputError("checkpoint not found", path)
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of foreign files before refusing them.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise EmtrackInputError(
            "not a valid emtrack checkpoint: it holds pickled objects other than tensors and "
            "plain containers (refused: checkpoints load with weights_only=True, which never "
            "runs code from the file)",
            path,
        ) from exc
    except Exception as exc:  # corrupt files raise many types (EOFError, KeyError, RuntimeError)
        raise EmtrackInputError(
            f"not a valid emtrack checkpoint (truncated, or not written by torch.save: "
            f"{_short(exc)})",
            path,
        ) from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise EmtrackInputError(f"not an emtrack checkpoint (expected {CHECKPOINT_FORMAT})", path)
    return data


def load_checkpoint_modules(path: str | Path) -> tuple[AssociationNet, NoiseModel]:
    """The trained network and noise model of a checkpoint (float64, CPU)."""
    return modules_from_checkpoint(load_checkpoint(path), path)


def modules_from_checkpoint(
    data: dict[str, Any], path: str | Path
) -> tuple[AssociationNet, NoiseModel]:
    """The network and noise model of a loaded checkpoint ``data`` (read from ``path``).

    Raises:
        EmtrackInputError: The stored weights do not fit the model.
    """
    from emtrack.model.network import AssociationNet, NoiseModel

    try:
        hidden = tuple(int(width) for width in data["config"].get("hidden", (32, 32)))
        net = AssociationNet(hidden).double()
        noise = NoiseModel().double()
        net.load_state_dict(data["net"])
        noise.load_state_dict(data["noise"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EmtrackInputError(
            f"checkpoint does not match the model ({_short(exc)})", path
        ) from exc
    return net, noise


def _short(error: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (or its type), at most ``limit`` characters."""
    lines = str(error).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if not text or text.isdigit():
        text = f"{type(error).__name__}{': ' + text if text else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."

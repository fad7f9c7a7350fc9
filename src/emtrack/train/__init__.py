"""Self-supervised training: clip sampling, the EM trainer and held-out accuracy.

Submodules are imported on first use: :mod:`emtrack.train.config` (:class:`TrainConfig`) is
torch-free, so the command line and the docs can read the settings without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EpochRecord": "result",
    "TrainConfig": "config",
    "TrainResult": "result",
    "train": "trainer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"emtrack.train.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'emtrack.train' has no attribute {name!r}")

"""Self-supervised training: clip sampling, the EM trainer and held-out accuracy.

Submodules are imported on first use: :mod:`emtrack.train.config` (:class:`TrainConfig`) is
torch-free, so the command line and the docs can read the settings without torch.
"""

from __future__ import annotations

from emtrack.lazy_imports import lazy_exports

_EXPORTS = {
    "EpochRecord": "result",
    "TrainConfig": "config",
    "TrainResult": "result",
    "train": "trainer",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

"""Where a training run's weights start: the shipped model, another model file, or random.

A network trained from random weights needs a few hundred optimiser steps before it links as
well as IoU + Hungarian (an untrained one sends every detection to the dustbin, or links
everything); a run of 10 steps from random weights gives a useless model. Starting from the
shipped model's weights (``init="auto"``, the default, whenever the architecture matches)
gives a model at least as good as the shipped one at any number of steps, and training then
adapts it to the given detections.

Model files are read here with numpy (``.npz``) or torch (``.pt`` checkpoints) directly: the
training code does not import the tracker.
"""

from __future__ import annotations

import hashlib
import logging
import math
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emtrack.errors import EmtrackInputError
from emtrack.model.checkpoint import load_checkpoint_modules
from emtrack.model.network import AssociationNet, NoiseModel

logger = logging.getLogger(__name__)

#: Optimiser steps a run from random weights should have: the shipped model's recipe (6 epochs
#: of 50), which trained on every seed tried. Shorter runs may never leave the start where
#: every detection goes to the dustbin (on YOLOX MOT17-02, seed 0 left it within 100 steps,
#: seed 1 was still there after 150).
SCRATCH_MIN_STEPS = 300


def shipped_model_path() -> Path:
    """The model shipped in the package (``emtrack/weights/default.npz``)."""
    return Path(str(resources.files("emtrack") / "weights" / "default.npz"))


@dataclass(frozen=True)
class InitialWeights:
    """Weights to start training from.

    Attributes:
        source: the file they came from.
        layers: ``[(W (in, out), b (out,)), …]`` of the association MLP.
        dustbin_logit: the network's dustbin score.
        noise: ``{"q": …, "r": …, "p_vel": …}``.
        sha256: digest of the file (recorded in the checkpoint).
    """

    source: Path
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    dustbin_logit: float
    noise: dict[str, float]
    sha256: str

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden widths of the MLP (what ``TrainConfig.hidden`` must equal)."""
        return tuple(int(w.shape[1]) for w, _ in self.layers[:-1])


def read_initial_weights(path: str | Path) -> InitialWeights:
    """The weights of an ``.npz`` export or a ``.pt`` checkpoint.

    Raises:
        EmtrackInputError: the file is missing or holds no emtrack weights.
    """
    path = Path(path)
    if not path.is_file():
        raise EmtrackInputError("--init: model file not found", path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.suffix == ".pt":
        net, noise = load_checkpoint_modules(path)
        arrays = {**net.export(), **noise.export()}
    else:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise EmtrackInputError(f"--init: not an emtrack weights file ({exc})", path) from exc
    try:
        layers = []
        while f"w{len(layers)}" in arrays:
            k = len(layers)
            layers.append((np.asarray(arrays[f"w{k}"], float), np.asarray(arrays[f"b{k}"], float)))
        noise_values = {name: float(arrays[f"noise_{name}"]) for name in ("q", "r", "p_vel")}
        dustbin = float(arrays["dustbin_logit"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EmtrackInputError(f"--init: not an emtrack weights file (no {exc})", path) from exc
    if not layers:
        raise EmtrackInputError("--init: not an emtrack weights file (no layers)", path)
    return InitialWeights(path, tuple(layers), dustbin, noise_values, digest)


def resolve_init(init: str, hidden: tuple[int, ...]) -> InitialWeights | None:
    """The weights a run with ``TrainConfig.init == init`` starts from (None: random).

    ``auto`` is the shipped model when its hidden widths equal ``hidden``, else random (with
    a note in the log); ``shipped`` and a path must match ``hidden``.

    Raises:
        EmtrackInputError: ``shipped`` or a file whose architecture differs from ``hidden``.
    """
    if init == "scratch":
        return None
    weights = read_initial_weights(shipped_model_path() if init in ("auto", "shipped") else init)
    if weights.hidden == tuple(hidden):
        return weights
    widths = ",".join(map(str, weights.hidden))
    if init == "auto":
        logger.info(
            "starting from random weights: --hidden %s differs from the shipped model's %s",
            ",".join(map(str, hidden)),
            widths,
        )
        return None
    raise EmtrackInputError(
        f"--init: the model's hidden widths are {widths}, the run's --hidden is "
        f"{','.join(map(str, hidden))}; give --hidden {widths}, or --init scratch",
        weights.source,
    )


@torch.no_grad()
def load_initial_weights(weights: InitialWeights, net: AssociationNet, noise: NoiseModel) -> None:
    """Copy ``weights`` into ``net`` and ``noise`` (their dtype and device are kept)."""
    linears = [m for m in net.mlp if isinstance(m, nn.Linear)]
    if len(linears) != len(weights.layers):
        raise EmtrackInputError(
            f"--init: {len(weights.layers)} layers, the network has {len(linears)}",
            weights.source,
        )
    for linear, (w, b) in zip(linears, weights.layers, strict=True):
        if linear.weight.shape != (w.shape[1], w.shape[0]) or linear.bias.shape != b.shape:
            raise EmtrackInputError(
                f"--init: layer shape {w.shape} does not match the network", weights.source
            )
        linear.weight.copy_(torch.from_numpy(w.T.copy()))
        linear.bias.copy_(torch.from_numpy(b))
    net.dustbin_logit.fill_(weights.dustbin_logit)
    noise.log_q.fill_(math.log(weights.noise["q"]))
    noise.log_r.fill_(math.log(weights.noise["r"]))
    noise.log_p_vel.fill_(math.log(weights.noise["p_vel"]))

"""Trained association weights for the torch-free tracker (``.npz``), and their export."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io.atomic import atomic_write
from emtrack.model.features import FEATURE_NAMES, edge_features

#: The model shipped in the package (trained by the command in the README).
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "weights" / "default.npz"


@dataclass(frozen=True)
class AssociationWeights:
    """The learned association MLP and noise constants as numpy arrays.

    Attributes:
        layers: ``[(W (in, out), b (out,)), …]``; ReLU between layers.
        dustbin_logit: the learned score of "no match".
        noise_q, noise_r, noise_p_vel: noise constants (units in :mod:`emtrack.model.kalman`).
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    dustbin_logit: float
    noise_q: float
    noise_r: float
    noise_p_vel: float

    def logits(self, ref_boxes_xyxy: np.ndarray, cur_boxes_xyxy: np.ndarray, gap_s) -> np.ndarray:
        """Association logits ``(M, N)`` of current boxes ``(M, 4)`` vs references ``(N, 4)``."""
        x = edge_features(ref_boxes_xyxy, cur_boxes_xyxy, gap_s)
        last = len(self.layers) - 1
        for k, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if k < last:
                np.maximum(x, 0.0, out=x)
        return x[..., 0]

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> AssociationWeights:
        layers = []
        k = 0
        while f"w{k}" in arrays:
            layers.append((np.asarray(arrays[f"w{k}"], float), np.asarray(arrays[f"b{k}"], float)))
            k += 1
        if not layers or layers[0][0].shape[0] != len(FEATURE_NAMES):
            raise ValueError("weights do not match the feature set of this emtrack version")
        return cls(
            tuple(layers),
            float(arrays["dustbin_logit"]),
            float(arrays["noise_q"]),
            float(arrays["noise_r"]),
            float(arrays["noise_p_vel"]),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k, (w, b) in enumerate(self.layers):
            out[f"w{k}"], out[f"b{k}"] = w, b
        out["dustbin_logit"] = np.array(self.dustbin_logit)
        out["noise_q"] = np.array(self.noise_q)
        out["noise_r"] = np.array(self.noise_r)
        out["noise_p_vel"] = np.array(self.noise_p_vel)
        out["feature_names"] = np.array(FEATURE_NAMES)
        return out


def load_model(model: str | Path | AssociationWeights | None = None) -> AssociationWeights:
    """Weights from an ``.npz`` export, a training checkpoint (``.pt``), or the default model."""
    if isinstance(model, AssociationWeights):
        return model
    path = DEFAULT_MODEL_PATH if model is None else Path(model)
    if not path.is_file():
        raise EmtrackInputError("model file not found", path)
    if path.suffix == ".pt":
        return _weights_from_checkpoint(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return AssociationWeights.from_arrays({k: data[k] for k in data.files})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise EmtrackInputError(f"not a valid emtrack weights file ({exc})", path) from exc


def _weights_from_checkpoint(path: Path) -> AssociationWeights:
    from emtrack.train.checkpoint import load_checkpoint_modules

    net, noise = load_checkpoint_modules(path)
    return AssociationWeights.from_arrays({**net.export(), **noise.export()})


def export_weights(source, out_path: str | Path) -> AssociationWeights:
    """Write tracker weights (``.npz``) from a ``TrainResult`` or a checkpoint path."""
    if isinstance(source, (str, Path)):
        weights = _weights_from_checkpoint(Path(source))
    else:
        weights = AssociationWeights.from_arrays({**source.net.export(), **source.noise.export()})
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as fh:
        np.savez(fh, **weights.to_arrays())
    return weights

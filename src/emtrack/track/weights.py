"""Trained association weights for the torch-free tracker (``.npz``), and their export."""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io.atomic import atomic_write
from emtrack.model.checkpoint import load_checkpoint, modules_from_checkpoint
from emtrack.model.features import FEATURE_NAMES, GAP_CLAMP_S, NUM_FEATURES
from emtrack.track.feature_planes import (
    box_terms,
    edge_feature_planes,
    feature_buffer,
    planes_from_terms,
)
from emtrack.track.motion import MotionNoise

#: The model shipped in the package (trained by the command in the README).
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "weights" / "default.npz"


#: Pairs per BLAS call in :meth:`AssociationWeights.mlp` (OpenBLAS runs a product of up to
#: ``M x N x K = 262144`` multiply-adds on the calling thread; 32 x 256 x 32 is that).
_MLP_BLOCK = 256


@dataclass(frozen=True)
class AssociationWeights:
    """The learned association MLP and noise constants as numpy arrays.

    Attributes:
        layers: ``[(W (in, out), b (out,)), …]``; ReLU between layers.
        dustbin_logit: the learned score of "no match".
        noise_q, noise_r, noise_p_vel: noise constants (units in :mod:`emtrack.model.kalman`).
        max_gap_s: the longest time gap (s) between linked boxes that the network was trained
            on. The tracker (online and when re-linking) feeds the ``gap_s`` feature no longer
            gap: beyond it the network's gap dependence is an extrapolation, and it goes the
            wrong way (the shipped network, trained on gaps up to 2/7 s, *narrows* its
            acceptance for longer gaps). Files without this field load with
            the features' own clamp (10 s), i.e. no limit.
        verdict: the training verdict recorded with the weights (``emtrack train`` writes it:
            ``ok`` False when the network linked worse than IoU + Hungarian at the end of
            training, the figures and ``problems``); None when the file has none.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    dustbin_logit: float
    noise_q: float
    noise_r: float
    noise_p_vel: float
    max_gap_s: float = GAP_CLAMP_S
    verdict: Mapping[str, Any] | None = field(default=None, compare=False)

    def logits(self, ref_boxes_xyxy: np.ndarray, cur_boxes_xyxy: np.ndarray, gap_s) -> np.ndarray:
        """Association logits of current boxes vs reference boxes.

        Args:
            ref_boxes_xyxy: ``(..., N, 4)`` reference boxes (the tracks' predictions).
            cur_boxes_xyxy: ``(..., M, 4)`` current boxes (detections).
            gap_s: seconds between them, broadcastable to ``(..., M, N)``.

        Returns:
            ``(..., M, N)`` logits, rows = current boxes.
        """
        ref = np.moveaxis(np.asarray(ref_boxes_xyxy, dtype=float), -1, 0)[..., None, :]
        cur = np.moveaxis(np.asarray(cur_boxes_xyxy, dtype=float), -1, 0)[..., :, None]
        shape = np.broadcast_shapes(ref.shape[1:], cur.shape[1:], np.shape(gap_s))
        planes = feature_buffer(shape)
        edge_feature_planes(ref, cur, gap_s, planes[:NUM_FEATURES])
        return self.mlp(planes.reshape(NUM_FEATURES + 1, -1)).reshape(shape)

    def grid_logits(
        self,
        ref_boxes_xyxy: np.ndarray,
        cur_boxes_xyxy: np.ndarray,
        gap_s: np.ndarray,
        gap_in_range: bool = False,
    ) -> np.ndarray:
        """:meth:`logits` of boxes ``(M, 4)`` vs references ``(N, 4)`` with gaps ``(N,)``.

        ``gap_in_range``: the caller guarantees ``0 <= gap_s <= `` the features' gap clamp,
        so the clamp (which would not change them) is skipped.
        """
        shape = (len(cur_boxes_xyxy), len(ref_boxes_xyxy))
        planes = feature_buffer(shape)
        # One product for both sets of boxes' terms (per box, so the same values).
        terms = box_terms(np.concatenate([ref_boxes_xyxy, cur_boxes_xyxy]).T)
        n = shape[1]
        planes_from_terms(
            terms[:, None, :n], terms[:, n:, None], gap_s, planes[:NUM_FEATURES], gap_in_range
        )
        return self.mlp(planes.reshape(NUM_FEATURES + 1, -1)).reshape(shape)

    def pair_logits(
        self, ref_boxes_xyxy: np.ndarray, cur_boxes_xyxy: np.ndarray, gap_s: np.ndarray
    ) -> np.ndarray:
        """Logits of ``K`` given pairs: boxes ``(K, 4)`` and ``(K, 4)``, gaps ``(K,)`` -> ``(K,)``.

        The same values as the matching entries of :meth:`logits` (up to rounding in the
        network's matrix products, which may group sums differently for other shapes).
        """
        planes = feature_buffer((len(ref_boxes_xyxy),))
        edge_feature_planes(ref_boxes_xyxy.T, cur_boxes_xyxy.T, gap_s, planes[:NUM_FEATURES])
        return self.mlp(planes)

    def mlp(self, planes: np.ndarray) -> np.ndarray:
        """The network on feature planes ``(F + 1, K)`` -> ``(K,)`` logits.

        ``planes[:F]`` are the features of ``K`` pairs (as :func:`edge_feature_planes` writes
        them) and ``planes[F]`` is all ones: the biases ride along in the matrix products
        (``[W.T | b] @ [x; 1]``). More than ``_MLP_BLOCK`` columns go through in blocks of that
        many (one stacked ``matmul``), so every BLAS call stays small enough to run on the
        calling thread: a large frame neither waits for BLAS worker threads nor competes with
        other processes for the cores.
        """
        count = planes.shape[1]
        bulk = count - count % _MLP_BLOCK
        if bulk == 0:
            return self._mlp_columns(planes)[0]
        blocks = planes[:, :bulk].reshape(len(planes), -1, _MLP_BLOCK).transpose(1, 0, 2)
        out = self._mlp_columns(blocks).reshape(bulk)
        if bulk == count:
            return out
        return np.concatenate([out, self._mlp_columns(planes[:, bulk:])[0]])

    def _mlp_columns(self, x: np.ndarray) -> np.ndarray:
        """The network on ``(..., F + 1, K)`` (last row ones) -> ``(..., 1, K)``."""
        *hidden, last = self._augmented_layers
        for w in hidden:
            x = w @ x  # its last row [0 … 0 1] carries the ones row along
            np.maximum(x, 0.0, out=x)
        return last @ x

    @functools.cached_property
    def _layers_digest(self) -> bytes:
        """SHA-256 of the network's weights (the key of cached per-network results)."""
        digest = hashlib.sha256()
        for w, b in self.layers:
            digest.update(np.ascontiguousarray(w).tobytes())
            digest.update(np.ascontiguousarray(b).tobytes())
        return digest.digest()

    @functools.cached_property
    def _augmented_layers(self) -> tuple[np.ndarray, ...]:
        """``[W.T | b]`` per layer ``(out, in + 1)``, C-contiguous, for :meth:`mlp`; the
        hidden layers get one more row ``[0 … 0 1]`` ``(out + 1, in + 1)``, which reproduces
        the input's ones row (exactly: ``0 · x`` is 0 for finite ``x``), the next layer's
        bias input."""
        layers = []
        for k, (w, b) in enumerate(self.layers):
            augmented = np.concatenate([w.T, b[:, None]], 1)
            if k < len(self.layers) - 1:
                ones = np.zeros((1, augmented.shape[1]))
                ones[0, -1] = 1.0
                augmented = np.concatenate([augmented, ones], 0)
            layers.append(np.ascontiguousarray(augmented))
        return tuple(layers)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> AssociationWeights:
        """Weights from ``w0, b0, w1, b1, …`` and the scalar entries (as ``to_arrays`` writes).

        Raises:
            ValueError: Missing entries, layer shapes that do not chain from the feature count
                to one output, non-finite values, or noise constants that are not > 0.
        """
        layers = []
        k = 0
        while f"w{k}" in arrays:
            if f"b{k}" not in arrays:
                raise ValueError(f"entry b{k} is missing")
            layers.append((np.asarray(arrays[f"w{k}"], float), np.asarray(arrays[f"b{k}"], float)))
            k += 1
        if not layers or layers[0][0].ndim != 2 or layers[0][0].shape[0] != len(FEATURE_NAMES):
            raise ValueError("weights do not match the feature set of this emtrack version")
        width = len(FEATURE_NAMES)
        for k, (w, b) in enumerate(layers):
            if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                raise ValueError(
                    f"layer {k}: w{k} {w.shape} and b{k} {b.shape} do not follow a layer of "
                    f"width {width}"
                )
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ValueError(f"layer {k}: w{k} or b{k} holds NaN or Inf")
            width = w.shape[1]
        if width != 1:
            raise ValueError(f"the last layer must have 1 output, got {width}")
        scalars = {}
        for name in ("dustbin_logit", "noise_q", "noise_r", "noise_p_vel"):
            if name not in arrays:
                raise ValueError(f"entry {name} is missing")
            value = np.asarray(arrays[name], float)
            if value.size != 1 or not np.isfinite(value).all():
                raise ValueError(f"{name} must be one finite number, got {value.tolist()}")
            scalars[name] = float(value.reshape(()))
            if name != "dustbin_logit" and scalars[name] <= 0:
                raise ValueError(f"{name} must be > 0, got {scalars[name]}")
        if "max_gap_s" in arrays:
            value = np.asarray(arrays["max_gap_s"], float)
            if value.size != 1 or not (np.isfinite(value).all() and float(value.flat[0]) > 0):
                raise ValueError(f"max_gap_s must be one number > 0, got {value.tolist()}")
            scalars["max_gap_s"] = min(float(value.flat[0]), GAP_CLAMP_S)
        return cls(tuple(layers), **scalars, verdict=_read_verdict(arrays.get("verdict")))

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k, (w, b) in enumerate(self.layers):
            out[f"w{k}"], out[f"b{k}"] = w, b
        out["dustbin_logit"] = np.array(self.dustbin_logit)
        out["noise_q"] = np.array(self.noise_q)
        out["noise_r"] = np.array(self.noise_r)
        out["noise_p_vel"] = np.array(self.noise_p_vel)
        out["max_gap_s"] = np.array(self.max_gap_s)
        out["feature_names"] = np.array(FEATURE_NAMES)
        if self.verdict is not None:
            out["verdict"] = np.array(json.dumps(dict(self.verdict)))
        return out


def _read_verdict(entry: Any) -> dict[str, Any] | None:
    """The recorded verdict: a JSON object (text) with an ``ok`` entry, or a dict."""
    if entry is None:
        return None
    if isinstance(entry, Mapping):
        verdict = dict(entry)
    else:
        try:
            verdict = json.loads(str(np.asarray(entry).reshape(())))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"verdict is not valid JSON ({exc})") from None
    if not isinstance(verdict, dict) or verdict.get("ok") not in (True, False, None):
        raise ValueError("verdict must be a JSON object with ok true, false or null")
    return verdict


def warn_if_bad_verdict(weights: AssociationWeights, path: str | Path) -> None:
    """Warn when ``weights`` record that they linked worse than IoU at the end of training."""
    if weights.verdict is None or weights.verdict.get("ok") is not False:
        return
    problems = "; ".join(str(p) for p in weights.verdict.get("problems") or ())
    warnings.warn(
        f"{path}: this model links worse than IoU+Hungarian (recorded at the end of its "
        f"training: {problems or 'no details'}); tracks from it will be poor: train longer, "
        "or track with the shipped model (no --model) or with --association iou",
        UserWarning,
        stacklevel=3,
    )


def model_noise(weights: AssociationWeights) -> MotionNoise:
    """The model's noise constants as :class:`~emtrack.track.motion.MotionNoise` (the same
    for every coordinate, as training fits them)."""
    return MotionNoise(q=weights.noise_q, r=weights.noise_r, p_vel=weights.noise_p_vel)


def load_model(model: str | Path | AssociationWeights | None = None) -> AssociationWeights:
    """Weights from an ``.npz`` export, a training checkpoint (``.pt``), or the default model."""
    if isinstance(model, AssociationWeights):
        return model
    path = DEFAULT_MODEL_PATH if model is None else Path(model)
    if path.is_dir():
        raise EmtrackInputError("is a folder, expected a model file (.npz or .pt)", path)
    if not path.is_file():
        raise EmtrackInputError("model file not found", path)
    if path.suffix == ".pt":
        weights = _weights_from_checkpoint(path)
        warn_if_bad_verdict(weights, path)
        return weights
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise EmtrackInputError(f"cannot read model file: {exc.strerror or exc}", path) from exc
    if magic != b"PK\x03\x04":
        raise EmtrackInputError(
            "not a valid emtrack weights file (not an .npz archive: no zip header)", path
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            weights = AssociationWeights.from_arrays({k: data[k] for k in data.files})
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise EmtrackInputError(f"not a valid emtrack weights file ({exc})", path) from exc
    warn_if_bad_verdict(weights, path)
    return weights


def _weights_from_checkpoint(path: Path) -> AssociationWeights:
    data = load_checkpoint(path)
    net, noise = modules_from_checkpoint(data, path)
    try:
        return AssociationWeights.from_arrays(
            _weight_arrays(net, noise, data.get("max_gap_s"), data.get("verdict"))
        )
    except (ValueError, TypeError) as exc:
        raise EmtrackInputError(f"checkpoint holds unusable weights ({exc})", path) from exc


def _weight_arrays(
    net: Any, noise: Any, max_gap_s: float | None, verdict: Any = None
) -> dict[str, Any]:
    """The ``from_arrays`` entries of trained modules (``max_gap_s`` and the training verdict
    only when known)."""
    arrays: dict[str, Any] = {**net.export(), **noise.export()}
    if max_gap_s is not None:
        arrays["max_gap_s"] = np.asarray(max_gap_s, dtype=float)
    if verdict is not None:
        arrays["verdict"] = verdict.to_dict() if hasattr(verdict, "to_dict") else verdict
    return arrays


def export_weights(source, out_path: str | Path) -> AssociationWeights:
    """Write tracker weights (``.npz``) from a ``TrainResult`` or a checkpoint path.

    The training verdict goes with them; a bad one is warned about (as :func:`load_model`
    does) when the source is a checkpoint file.
    """
    if isinstance(source, (str, Path)):
        weights = _weights_from_checkpoint(Path(source))
        warn_if_bad_verdict(weights, source)
    else:
        weights = AssociationWeights.from_arrays(
            _weight_arrays(
                source.net, source.noise, source.max_gap_s, getattr(source, "verdict", None)
            )
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as fh:
        np.savez(fh, **weights.to_arrays())
    return weights

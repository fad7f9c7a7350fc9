"""The association network and the learnable noise constants."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from emtrack.model.features import NUM_FEATURES, edge_features
from emtrack.model.kalman import NoiseParams


class AssociationNet(nn.Module):
    """MLP from pairwise edge features to association logits, plus a learned dustbin score.

    Args:
        hidden: widths of the hidden layers.
    """

    def __init__(self, hidden: tuple[int, ...] = (32, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = NUM_FEATURES
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.dustbin_logit = nn.Parameter(torch.tensor(0.0))
        self.hidden = tuple(hidden)

    def forward(
        self, ref_boxes_xyxy: torch.Tensor, cur_boxes_xyxy: torch.Tensor, gap_s: torch.Tensor
    ) -> torch.Tensor:
        """Association logits.

        Args:
            ref_boxes_xyxy: ``(..., N, 4)`` boxes of frame t-1 (or predicted track boxes).
            cur_boxes_xyxy: ``(..., M, 4)`` boxes of frame t.
            gap_s: seconds between them, broadcastable to ``(..., M, N)``.

        Returns:
            ``(..., M, N)`` logits, rows = current boxes.
        """
        feats = edge_features(ref_boxes_xyxy, cur_boxes_xyxy, gap_s)
        return self.mlp(feats.to(self.dustbin_logit.dtype))[..., 0]

    def export(self) -> dict[str, np.ndarray]:
        """Weights as float64 numpy arrays for the torch-free tracker."""
        out: dict[str, np.ndarray] = {}
        linears = [m for m in self.mlp if isinstance(m, nn.Linear)]
        for k, lin in enumerate(linears):
            out[f"w{k}"] = lin.weight.detach().double().cpu().numpy().T.copy()
            out[f"b{k}"] = lin.bias.detach().double().cpu().numpy().copy()
        out["dustbin_logit"] = np.array(float(self.dustbin_logit.detach()))
        return out


class NoiseModel(nn.Module):
    """Learnable log noise constants (see :mod:`emtrack.model.kalman` for the units).

    Defaults: detection jitter of 4% of the box height (``r = 0.04²``), velocity changing by
    about half a height per second (``q = 0.25``), initial speed up to ~1 height/s.
    """

    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "q": (1e-4, 1e2),
        "r": (1e-6, 1.0),
        "p_vel": (1e-3, 1e2),
    }

    def __init__(self, q: float = 0.25, r: float = 0.04**2, p_vel: float = 1.0) -> None:
        super().__init__()
        self.log_q = nn.Parameter(torch.tensor(math.log(q)))
        self.log_r = nn.Parameter(torch.tensor(math.log(r)))
        self.log_p_vel = nn.Parameter(torch.tensor(math.log(p_vel)))

    def params(self) -> NoiseParams:
        def bounded(log_value: torch.Tensor, name: str) -> torch.Tensor:
            lo, hi = self._BOUNDS[name]
            return log_value.clamp(math.log(lo), math.log(hi)).exp()

        return NoiseParams(
            bounded(self.log_q, "q"), bounded(self.log_r, "r"), bounded(self.log_p_vel, "p_vel")
        )

    def export(self) -> dict[str, np.ndarray]:
        p = self.params()
        return {
            "noise_q": np.array(float(p.q.detach())),
            "noise_r": np.array(float(p.r.detach())),
            "noise_p_vel": np.array(float(p.p_vel.detach())),
        }

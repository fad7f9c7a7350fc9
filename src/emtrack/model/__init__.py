"""The learnable model: features, Sinkhorn, Kalman filter/smoother and the EM loss.

Submodules are imported on first use, so that the torch-free tracker can import
:mod:`emtrack.model.features` without loading torch.
"""

from __future__ import annotations

from emtrack.lazy_imports import lazy_exports

_EXPORTS = {
    "FEATURE_NAMES": "features",
    "GAP_CLAMP_S": "features",
    "LOG_RATIO_CLAMP": "features",
    "MIN_SIDE": "features",
    "NUM_FEATURES": "features",
    "OFFSET_CLAMP": "features",
    "box_positions": "features",
    "edge_features": "features",
    "NoiseParams": "kalman",
    "kalman_filter": "kalman",
    "rts_smoother": "kalman",
    "bryson_frazier_smoother": "kalman",
    "ClipBatch": "loss",
    "LossOutput": "loss",
    "association_products": "loss",
    "em_loss": "loss",
    "AssociationNet": "network",
    "NoiseModel": "network",
    "SinkhornConfig": "sinkhorn",
    "log_sinkhorn_dustbin": "sinkhorn",
    "real_assignment": "sinkhorn",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

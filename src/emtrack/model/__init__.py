"""The learnable model: features, Sinkhorn, Kalman filter/smoother and the EM loss."""

from emtrack.model.features import FEATURE_NAMES, NUM_FEATURES, box_positions, edge_features
from emtrack.model.kalman import NoiseParams, kalman_filter, rts_smoother
from emtrack.model.loss import ClipBatch, LossOutput, association_products, em_loss
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.model.sinkhorn import SinkhornConfig, log_sinkhorn_dustbin, real_assignment

__all__ = [
    "FEATURE_NAMES",
    "NUM_FEATURES",
    "AssociationNet",
    "ClipBatch",
    "LossOutput",
    "NoiseModel",
    "NoiseParams",
    "SinkhornConfig",
    "association_products",
    "box_positions",
    "edge_features",
    "em_loss",
    "kalman_filter",
    "log_sinkhorn_dustbin",
    "real_assignment",
    "rts_smoother",
]

"""Tracking with the learned association: online tracker, offline pass, weights."""

from emtrack.track.config import (
    ASSOCIATIONS,
    CAMERA_MODELS,
    MEASUREMENT_NOISES,
    NOISES,
    OUTPUT_BOXES,
    SCORE_NORMALISATIONS,
    TrackerConfig,
)
from emtrack.track.interop import EmtrackTracker
from emtrack.track.run import TrackRun, normalised_scores, track_sequence
from emtrack.track.tracker import Tracker
from emtrack.track.weights import DEFAULT_MODEL_PATH, AssociationWeights, export_weights, load_model

__all__ = [
    "ASSOCIATIONS",
    "CAMERA_MODELS",
    "DEFAULT_MODEL_PATH",
    "MEASUREMENT_NOISES",
    "NOISES",
    "OUTPUT_BOXES",
    "SCORE_NORMALISATIONS",
    "AssociationWeights",
    "EmtrackTracker",
    "TrackRun",
    "Tracker",
    "TrackerConfig",
    "export_weights",
    "load_model",
    "normalised_scores",
    "track_sequence",
]

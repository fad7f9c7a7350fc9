"""Seeded generators of multi-object box streams with ground truth.

Synthetic pedestrian scenes (:func:`generate_scene`, :func:`default_training_scenes`) and
noisy detection streams derived from real MOT17/MOT20 ground truth (:func:`detections_from_gt`),
for self-supervised training, tests and benchmarks. Randomness comes only from the generator or
seed passed in.
"""

from emtrack.synth.noise import DetectionNoiseConfig, detections_from_gt, load_gt_objects
from emtrack.synth.scene import (
    Scene,
    SceneConfig,
    default_training_scenes,
    generate_scene,
    random_scene_config,
    with_noise,
)

__all__ = [
    "DetectionNoiseConfig",
    "Scene",
    "SceneConfig",
    "default_training_scenes",
    "detections_from_gt",
    "generate_scene",
    "load_gt_objects",
    "random_scene_config",
    "with_noise",
]

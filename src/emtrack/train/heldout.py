"""Held-out evaluation of a network: link accuracy on synthetic scenes never trained on, by
frame gap, and the end-of-training verdict built on it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emtrack.model.loss import association_log_assignment
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.synth import Scene, default_training_scenes
from emtrack.train.accuracy import (
    LabelledClips,
    iou_links,
    labelled_clips,
    link_accuracy,
    network_links,
    oracle_kalman_links,
)
from emtrack.train.clips import DetectionStream
from emtrack.train.config import TrainConfig
from emtrack.train.verdict import Verdict, judge, own_detection_agreement

__all__ = [
    "HELDOUT_CLIP_SEED_OFFSET",
    "HELDOUT_SCENE_SEED_OFFSET",
    "VERDICT_GAPS",
    "evaluate_accuracy",
    "gap_accuracy",
    "heldout_clips",
    "heldout_labelled_clips",
    "heldout_scenes",
    "training_verdict",
]

HELDOUT_SCENE_SEED_OFFSET = 1_000_003
"""Added to the training seed for the held-out scenes (far from the training scenes' seed)."""

HELDOUT_CLIP_SEED_OFFSET = 7
"""Added to the training seed for drawing the held-out clips."""

#: Frame gaps of the held-out accuracy in the end-of-training verdict.
VERDICT_GAPS: tuple[int, ...] = (1, 2, 3, 4)


def heldout_scenes(config: TrainConfig, num_scenes: int | None = None) -> list[Scene]:
    """The held-out synthetic scenes of ``config.seed`` (never used for training); the first
    ``config.heldout_scenes`` of them unless ``num_scenes`` asks for another count (the first
    scenes of a longer list are the same)."""
    count = config.heldout_scenes if num_scenes is None else num_scenes
    return default_training_scenes(
        count, config.seed + HELDOUT_SCENE_SEED_OFFSET, config.synthetic_frames
    )


def heldout_labelled_clips(
    scenes: list[Scene], config: TrainConfig, num_clips: int, stride: int = 1
) -> LabelledClips:
    """Clips of every ``stride``-th frame drawn from held-out ``scenes``, the same for every
    call with the same seed."""
    rng = np.random.default_rng(config.seed + HELDOUT_CLIP_SEED_OFFSET)
    return labelled_clips(scenes, num_clips, config.clip_length, rng, stride)


def heldout_clips(config: TrainConfig) -> LabelledClips | None:
    """Fixed held-out clips from synthetic scenes never used for training."""
    if config.heldout_scenes == 0:
        return None
    return heldout_labelled_clips(heldout_scenes(config), config, config.heldout_clips)


@torch.no_grad()
def evaluate_accuracy(
    net: AssociationNet,
    noise: NoiseModel,
    clips: LabelledClips,
    config: TrainConfig,
    baselines: bool = True,
) -> dict[str, float]:
    """Held-out link accuracy of the network (and of the two baselines)."""
    batch = clips.batch.to(config.device, config.dtype)
    log_assignment = association_log_assignment(net, batch, config.sinkhorn_iterations)
    mask = clips.batch.mask.numpy()
    out = {"accuracy": link_accuracy(network_links(log_assignment.cpu(), mask), clips)}
    if baselines:
        p = noise.params()
        out["iou_accuracy"] = link_accuracy(iou_links(clips.batch), clips)
        out["oracle_accuracy"] = link_accuracy(
            oracle_kalman_links(clips, float(p.q), float(p.r), float(p.p_vel)), clips
        )
    return out


def gap_accuracy(
    net: AssociationNet,
    noise: NoiseModel,
    config: TrainConfig,
    strides: Sequence[int] = (1, 2, 3, 4),
) -> dict[int, dict[str, float]]:
    """Held-out accuracy of the network and both baselines for clips of every ``stride`` frames.

    Larger strides mean larger motion between linked frames (what a tracker meets after misses).
    """
    if config.heldout_scenes == 0:
        return {}
    scenes = heldout_scenes(config)
    out = {}
    for stride in strides:
        clips = heldout_labelled_clips(scenes, config, config.heldout_clips, stride)
        out[stride] = evaluate_accuracy(net, noise, clips, config)
    return out


def training_verdict(
    net: AssociationNet,
    noise: NoiseModel,
    config: TrainConfig,
    own_streams: Sequence[DetectionStream] = (),
) -> Verdict:
    """The end-of-training verdict: held-out synthetic accuracy by gap (:func:`gap_accuracy`)
    and the agreement with confident IoU links on ``own_streams`` (the detection files)."""
    agreement, links = own_detection_agreement(
        net,
        own_streams,
        config.clip_length,
        config.max_detections,
        config.sinkhorn_iterations,
        config.seed,
    )
    # Gaps whose clips fit in the held-out scenes (a clip of gap s spans (T - 1) s frames).
    strides = [s for s in VERDICT_GAPS if (config.clip_length - 1) * s < config.synthetic_frames]
    return judge(gap_accuracy(net, noise, config, strides), agreement, links)

"""Self-supervised EM training of the association network (no identities are ever read)."""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emtrack.io import SequencePaths, find_sequences, read_mot, read_seqinfo
from emtrack.io.atomic import atomic_write
from emtrack.model.loss import OBJECTIVES, ClipBatch, association_log_assignment, em_loss
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.synth import default_training_scenes
from emtrack.train.accuracy import (
    LabelledClips,
    iou_links,
    labelled_clips,
    link_accuracy,
    network_links,
    oracle_kalman_links,
)
from emtrack.train.clips import ClipSampler, DetectionStream

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "emtrack-checkpoint-v1"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint).

    Attributes:
        clip_length: frames per clip (T).
        batch_size: clips per step.
        steps_per_epoch: optimiser steps per epoch.
        epochs: number of epochs.
        learning_rate: Adam step size.
        objective: ``smoothed`` (paper), ``filtered`` (ablation) or ``innovations`` (exact
            marginal likelihood).
        sinkhorn_iterations: Sinkhorn rounds.
        max_stride: clips take every s-th frame, s in ``1 … max_stride``.
        max_detections: detections kept per frame (highest scores).
        hidden: MLP hidden widths.
        learn_noise: fit Q, R and the initial velocity variance by maximum likelihood.
        synthetic_scenes: synthetic training scenes (0 = train on the given files only).
        synthetic_frames: frames per synthetic scene.
        heldout_scenes: synthetic scenes for the held-out accuracy (0 = no accuracy).
        heldout_clips: clips drawn from them (fixed for the whole run).
        seed: seeds every random generator of the run.
        float64: train in double precision.
        device: torch device.
    """

    clip_length: int = 10
    batch_size: int = 16
    steps_per_epoch: int = 50
    epochs: int = 10
    learning_rate: float = 1e-2
    objective: str = "smoothed"
    sinkhorn_iterations: int = 20
    max_stride: int = 2
    max_detections: int = 48
    hidden: tuple[int, ...] = (32, 32)
    learn_noise: bool = True
    synthetic_scenes: int = 24
    synthetic_frames: int = 300
    heldout_scenes: int = 6
    heldout_clips: int = 48
    seed: int = 0
    float64: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        positive = (
            "clip_length",
            "batch_size",
            "steps_per_epoch",
            "epochs",
            "max_stride",
            "max_detections",
            "sinkhorn_iterations",
            "synthetic_frames",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_length < 2:
            raise ValueError("TrainConfig.clip_length must be >= 2")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"TrainConfig.objective must be one of {OBJECTIVES}")
        if self.synthetic_scenes < 0 or self.heldout_scenes < 0 or self.heldout_clips < 1:
            raise ValueError("TrainConfig scene counts must be >= 0")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"TrainConfig.hidden widths must be >= 1, got {self.hidden}")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.float64 else torch.float32

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {sorted(unknown)}")
        return cls(**{**data, "hidden": tuple(data.get("hidden", (32, 32)))})


@dataclass
class EpochRecord:
    """One line of the training history."""

    epoch: int
    loss: float
    association_nll: float
    noise_nll: float
    slot_mass: float
    clips_per_s: float
    accuracy: float | None = None
    iou_accuracy: float | None = None
    oracle_accuracy: float | None = None
    noise: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    net: AssociationNet
    noise: NoiseModel
    config: TrainConfig
    history: list[EpochRecord]


def streams_from_paths(
    paths: Sequence[str | Path], det_name: str = "det.txt"
) -> list[DetectionStream]:
    """Detection streams from det files or sequence folders (identities are dropped)."""
    streams: list[DetectionStream] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            seqinfo_path = path.parent.parent / "seqinfo.ini"
            seqs = [
                SequencePaths(
                    path.parent.parent.name,
                    path,
                    seqinfo_path if seqinfo_path.exists() else None,
                    None,
                )
            ]
        else:
            seqs = find_sequences(path, det_name)
        for seq in seqs:
            table = read_mot(seq.det)
            if seq.seqinfo is not None:
                info = read_seqinfo(seq.seqinfo)
                size = (info.im_width, info.im_height) if info.im_width and info.im_height else None
                streams.append(
                    DetectionStream.from_table(
                        seq.name, table, info.frame_rate, info.seq_length, size
                    )
                )
            else:
                logger.warning("%s: no seqinfo.ini beside it, assuming 30 fps", seq.det)
                streams.append(DetectionStream.from_table(seq.name, table, 30.0))
    return streams


def synthetic_streams(config: TrainConfig) -> list[DetectionStream]:
    scenes = default_training_scenes(config.synthetic_scenes, config.seed, config.synthetic_frames)
    out = []
    for scene in scenes:
        info = scene.seqinfo
        out.append(
            DetectionStream.from_table(
                info.name,
                scene.detections,
                info.frame_rate,
                info.seq_length,
                (info.im_width, info.im_height),
            )
        )
    return out


def heldout_clips(config: TrainConfig) -> LabelledClips | None:
    """Fixed held-out clips from synthetic scenes never used for training."""
    if config.heldout_scenes == 0:
        return None
    scenes = default_training_scenes(
        config.heldout_scenes, config.seed + 1_000_003, config.synthetic_frames
    )
    rng = np.random.default_rng(config.seed + 7)
    return labelled_clips(scenes, config.heldout_clips, config.clip_length, rng)


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
    scenes = default_training_scenes(
        config.heldout_scenes, config.seed + 1_000_003, config.synthetic_frames
    )
    out = {}
    for stride in strides:
        rng = np.random.default_rng(config.seed + 7)
        clips = labelled_clips(scenes, config.heldout_clips, config.clip_length, rng, stride)
        out[stride] = evaluate_accuracy(net, noise, clips, config)
    return out


def save_checkpoint(
    path: Path,
    result: TrainResult,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    rng: np.random.Generator,
) -> None:
    """Atomic checkpoint that loads with ``torch.load(weights_only=True)``."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": result.config.to_dict(),
        "net": result.net.state_dict(),
        "noise": result.noise.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        "history": [dataclasses.asdict(r) for r in result.history],
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)


def train(
    config: TrainConfig,
    det_paths: Sequence[str | Path] = (),
    checkpoint: str | Path | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train from detection files and/or synthetic scenes.

    Args:
        config: the run.
        det_paths: det files or folders of sequences (their id columns are ignored).
        checkpoint: where to save a checkpoint after every epoch (optional).
        progress: show a progress bar (default: when stderr is a terminal).
        on_epoch: called with each epoch's record.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    streams = streams_from_paths(det_paths)
    if config.synthetic_scenes:
        streams += synthetic_streams(config)
    if not streams:
        raise ValueError("nothing to train on: give detection files or synthetic_scenes > 0")
    sampler = ClipSampler(
        tuple(streams), config.clip_length, config.max_stride, config.max_detections
    )
    heldout = heldout_clips(config)
    net = AssociationNet(config.hidden).to(config.device, config.dtype)
    noise = NoiseModel().to(config.device, config.dtype)
    params = list(net.parameters()) + (list(noise.parameters()) if config.learn_noise else [])
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    result = TrainResult(net, noise, config, [])
    show = sys.stderr.isatty() if progress is None else progress
    step = 0
    baseline_scores: dict[str, float] | None = None
    for epoch in range(1, config.epochs + 1):
        sums = np.zeros(4)
        elapsed = 0.0
        bar = tqdm(
            range(config.steps_per_epoch),
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not show,
            leave=False,
        )
        for _ in bar:
            batch: ClipBatch = sampler.sample(config.batch_size, rng).to(
                config.device, config.dtype
            )
            start = time.perf_counter()
            out = em_loss(
                net,
                noise,
                batch,
                config.objective,  # type: ignore[arg-type]
                config.sinkhorn_iterations,
                config.learn_noise,
            )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            elapsed += time.perf_counter() - start
            step += 1
            sums += [
                float(out.loss.detach()),
                float(out.association_nll.detach()),
                float(out.noise_nll.detach()),
                float(out.mean_slot_mass),
            ]
            bar.set_postfix(
                loss=f"{float(out.loss.detach()):.3f}",
                clips_s=f"{config.batch_size * (bar.n + 1) / max(elapsed, 1e-9):.0f}",
            )
        means = sums / config.steps_per_epoch
        p = noise.params().detach()
        record = EpochRecord(
            epoch,
            float(means[0]),
            float(means[1]),
            float(means[2]),
            float(means[3]),
            config.batch_size * config.steps_per_epoch / max(elapsed, 1e-9),
            noise={"q": float(p.q), "r": float(p.r), "p_vel": float(p.p_vel)},
        )
        if heldout is not None:
            scores = evaluate_accuracy(net, noise, heldout, config, baselines=True)
            if baseline_scores is None:
                baseline_scores = scores
            record.accuracy = scores["accuracy"]
            record.iou_accuracy = scores["iou_accuracy"]
            record.oracle_accuracy = scores["oracle_accuracy"]
        result.history.append(record)
        logger.info("epoch %d: %s", epoch, record)
        if on_epoch is not None:
            on_epoch(record)
        if checkpoint is not None:
            save_checkpoint(Path(checkpoint), result, optimizer, step, rng)
    return result

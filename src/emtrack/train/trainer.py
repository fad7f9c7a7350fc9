"""Self-supervised EM training of the association network (no identities are ever read)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from emtrack.errors import EmtrackInputError
from emtrack.io import SequencePaths, find_sequences, read_mot, read_seqinfo
from emtrack.io.atomic import atomic_write
from emtrack.model.loss import (
    ASSOCIATIONS,
    OBJECTIVES,
    ClipBatch,
    association_log_assignment,
    em_loss,
)
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.synth import Scene, default_training_scenes
from emtrack.train import distributed
from emtrack.train.accuracy import (
    LabelledClips,
    iou_links,
    labelled_clips,
    link_accuracy,
    network_links,
    oracle_kalman_links,
)
from emtrack.train.clips import ClipSampler, DetectionStream
from emtrack.train.init import INIT_CHOICES, load_initial_weights, resolve_init
from emtrack.train.verdict import TrainingVerdictWarning, Verdict, judge, own_detection_agreement

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "emtrack-checkpoint-v1"

#: Choices of :attr:`TrainConfig.lr_schedule`.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")

#: Config fields a resumed run may change: ``checkpoint_every`` and ``device`` do not change
#: what the run computes (``device`` changes rounding only); ``epochs`` may grow to train longer
#: (with the cosine step size the remaining steps then follow the longer run's schedule).
RESUMABLE_FIELDS: frozenset[str] = frozenset({"epochs", "checkpoint_every", "device"})

#: Fields added to TrainConfig after checkpoints existed, with the behaviour of the runs that
#: wrote those checkpoints (so resuming one is still the same run).
CHECKPOINT_LEGACY_FIELDS: dict[str, Any] = {
    "clutter_scale": 1.0,
    "clutter_warmup_epochs": 0.0,
    "lr_schedule": "constant",
    "init": "scratch",
}

#: Checkpoint keys that hold the training state needed to resume (besides the weights).
_RESUME_KEYS: tuple[str, ...] = (
    "optimizer",
    "step",
    "numpy_rng",
    "torch_rng",
    "epoch_sums",
    "epoch_elapsed",
    "data_fingerprint",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint).

    Attributes:
        clip_length: frames per clip (T).
        batch_size: clips per step.
        steps_per_epoch: optimiser steps per epoch.
        epochs: number of epochs.
        learning_rate: Adam step size.
        lr_schedule: ``constant``, or ``cosine``: the step size decays from ``learning_rate`` to
            0 over the run (a function of the step, so resuming continues it).
        objective: ``smoothed`` (paper), ``filtered`` (ablation) or ``innovations`` (exact
            marginal likelihood).
        association: ``chain`` (the paper's adjacent-frame products) or ``predicted``
            (detections against the slots' Kalman-predicted boxes, as the tracker links).
        clutter_scale: multiplies the density of clutter/new detections in the loss (1 / image
            area per pixel of box centre). Above 1, leaving a detection unlinked costs less, so
            the network links only what the motion model explains well.
        clutter_warmup_epochs: epochs over which the scale grows (geometrically) from 1 to
            ``clutter_scale``. An untrained network links nothing reliably, and a large clutter
            density from the first step can keep it sending every detection to the dustbin.
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
        checkpoint_every: also write the checkpoint every this many optimiser steps
            (0: only at the end of each epoch).
        init: the weights the run starts from: ``auto`` (the shipped model's when ``hidden``
            matches it, else random), ``shipped``, ``scratch`` (random), or the path of an
            ``.npz`` export or ``.pt`` checkpoint (see :mod:`emtrack.train.init`).
    """

    clip_length: int = 10
    batch_size: int = 16
    steps_per_epoch: int = 50
    epochs: int = 10
    learning_rate: float = 1e-2
    lr_schedule: str = "cosine"
    objective: str = "smoothed"
    association: str = "chain"
    clutter_scale: float = 20.0
    clutter_warmup_epochs: float = 1.0
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
    checkpoint_every: int = 0
    init: str = "auto"

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
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"TrainConfig.objective must be one of {OBJECTIVES}")
        if self.association not in ASSOCIATIONS:
            raise ValueError(f"TrainConfig.association must be one of {ASSOCIATIONS}")
        if not (self.clutter_scale > 0 and math.isfinite(self.clutter_scale)):
            raise ValueError(f"TrainConfig.clutter_scale must be > 0, got {self.clutter_scale}")
        if not (self.clutter_warmup_epochs >= 0 and math.isfinite(self.clutter_warmup_epochs)):
            raise ValueError(
                f"TrainConfig.clutter_warmup_epochs must be >= 0, got {self.clutter_warmup_epochs}"
            )
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(
                f"TrainConfig.device must be a torch device (cpu, cuda), got {self.device!r}"
            ) from None
        if self.checkpoint_every < 0:
            raise ValueError(
                f"TrainConfig.checkpoint_every must be >= 0, got {self.checkpoint_every}"
            )
        if self.synthetic_scenes < 0 or self.heldout_scenes < 0 or self.heldout_clips < 1:
            raise ValueError("TrainConfig scene counts must be >= 0")
        if self.seed < 0:  # numpy's generators reject negative seeds deep inside training
            raise ValueError(f"TrainConfig.seed must be >= 0, got {self.seed}")
        if not isinstance(self.init, str) or not self.init:
            raise ValueError(
                f"TrainConfig.init must be one of {INIT_CHOICES} or a model file, got {self.init!r}"
            )
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

    @classmethod
    def from_checkpoint(cls, data: dict) -> TrainConfig:
        """The config stored in a checkpoint; a field the checkpoint predates takes the value
        its run used (:data:`CHECKPOINT_LEGACY_FIELDS`), not today's default."""
        return cls.from_dict({**CHECKPOINT_LEGACY_FIELDS, **data})


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
    """A finished (or resumed and finished) run.

    Attributes:
        net, noise: the trained modules.
        config: the run's config.
        history: one record per epoch (on ranks other than 0 of a distributed run, without
            the held-out accuracy).
        is_main: this process is rank 0 (always true without torchrun); only it writes.
        max_gap_s: the longest time gap (s) the network was trained on (None: not known);
            exported with the weights, the tracker never feeds it a longer one.
        verdict: how the trained network links compared with IoU + Hungarian (rank 0 only;
            see :mod:`emtrack.train.verdict`); stored in the checkpoint and exported.
    """

    net: AssociationNet
    noise: NoiseModel
    config: TrainConfig
    history: list[EpochRecord]
    is_main: bool = True
    max_gap_s: float | None = None
    verdict: Verdict | None = None


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT (Ctrl-C) or SIGTERM, cleanly, between two optimiser steps.

    Attributes:
        signal_number: the signal that asked for the stop.
        step: optimiser steps completed (the checkpoint holds exactly these).
        total_steps: steps of the whole run.
        checkpoint: where the checkpoint was written (None when the run had no checkpoint).
    """

    def __init__(
        self, signal_number: int, step: int, total_steps: int, checkpoint: Path | None
    ) -> None:
        self.signal_number = signal_number
        self.step = step
        self.total_steps = total_steps
        self.checkpoint = checkpoint
        where = f"; checkpoint: {checkpoint}" if checkpoint is not None else ""
        super().__init__(
            f"training interrupted by {signal.Signals(signal_number).name} after step {step} "
            f"of {total_steps}{where}"
        )

    @property
    def exit_status(self) -> int:
        """The shell convention for death by this signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signal_number


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


HELDOUT_SCENE_SEED_OFFSET = 1_000_003
"""Added to the training seed for the held-out scenes (far from the training scenes' seed)."""

HELDOUT_CLIP_SEED_OFFSET = 7
"""Added to the training seed for drawing the held-out clips."""


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


#: Frame gaps of the held-out accuracy in the end-of-training verdict.
VERDICT_GAPS: tuple[int, ...] = (1, 2, 3, 4)


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


def data_fingerprint(streams: Sequence[DetectionStream]) -> str:
    """SHA-256 of what training samples from: every stream's boxes per frame, frame rate and
    image area, in order (names and paths are left out, so moved files still match)."""
    digest = hashlib.sha256()
    for stream in streams:
        counts = np.array([len(frame) for frame in stream.frames], dtype=np.int64)
        boxes = [np.asarray(frame, dtype=np.float64).reshape(-1, 4) for frame in stream.frames]
        digest.update(np.array([len(counts)], dtype=np.int64).tobytes())
        digest.update(np.array([stream.frame_rate, stream.image_area], dtype=np.float64).tobytes())
        digest.update(counts.tobytes())
        digest.update(np.concatenate([np.zeros((0, 4)), *boxes]).tobytes())
    return digest.hexdigest()


def trained_max_gap_s(sampler: ClipSampler, config: TrainConfig) -> float:
    """The longest time gap (s) the network sees in training: between linked clip frames
    (``chain``), or from a slot's frame-0 detection to the last clip frame (``predicted``,
    whose gap feature counts the time since the slot was last detected)."""
    frames = config.clip_length - 1 if config.association == "predicted" else 1
    return sampler.max_gap_s * frames


def save_checkpoint(
    path: Path,
    result: TrainResult,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    rng: np.random.Generator,
    resume_state: Mapping[str, Any] | None = None,
) -> None:
    """Atomic checkpoint that loads with ``torch.load(weights_only=True)``.

    Args:
        path: the file (written to a temporary file beside it, then renamed).
        result: the modules, config and history.
        optimizer: its state is stored for resuming (None: none).
        step: optimiser steps completed.
        rng: the clip sampler's generator (its state is stored).
        resume_state: further entries written by :func:`train` (epoch accumulators, data
            fingerprint, detection paths); without them the checkpoint cannot be resumed.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": result.config.to_dict(),
        "net": result.net.state_dict(),
        "noise": result.noise.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        "history": [dataclasses.asdict(r) for r in result.history],
        "max_gap_s": result.max_gap_s,
        "verdict": None if result.verdict is None else result.verdict.to_dict(),
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        **(resume_state or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)


def resume_config(
    checkpoint_config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The config of a resumed run: the checkpoint's, with ``overrides`` applied.

    Overrides of fields outside :data:`RESUMABLE_FIELDS` are allowed only when they equal the
    checkpoint's value (``check_resumable`` refuses the others).
    """
    try:
        base = TrainConfig.from_checkpoint(dict(checkpoint_config))
    except (TypeError, ValueError) as exc:
        raise EmtrackInputError(f"the checkpoint's config is not valid ({exc})") from exc
    return dataclasses.replace(base, **dict(overrides or {}))


def check_resumable(checkpoint: Mapping[str, Any], config: TrainConfig, path: str | Path) -> None:
    """Refuse (clearly) to resume ``checkpoint`` with a config that would change the run.

    Raises:
        EmtrackInputError: the checkpoint holds no training state, its config is invalid, a
            field outside :data:`RESUMABLE_FIELDS` differs, or ``epochs`` is below what the
            checkpoint has completed.
    """
    missing = [key for key in _RESUME_KEYS if checkpoint.get(key) is None]
    if missing:
        raise EmtrackInputError(
            "cannot resume: the checkpoint holds no training state "
            f"(missing {', '.join(missing)}; written by an older emtrack?)",
            path,
        )
    try:
        saved = TrainConfig.from_checkpoint(dict(checkpoint["config"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise EmtrackInputError(
            f"cannot resume: the checkpoint's config is invalid ({exc})", path
        ) from exc
    changed = [
        f"{f.name}={getattr(config, f.name)!r} (checkpoint: {getattr(saved, f.name)!r})"
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RESUMABLE_FIELDS and getattr(config, f.name) != getattr(saved, f.name)
    ]
    if changed:
        raise EmtrackInputError(
            f"cannot resume with a different config: {'; '.join(changed)}. Only "
            f"{', '.join(sorted(RESUMABLE_FIELDS))} may change when resuming",
            path,
        )
    done = int(checkpoint["step"])
    if config.epochs * config.steps_per_epoch < done:
        raise EmtrackInputError(
            f"cannot resume with epochs={config.epochs}: the checkpoint has already done "
            f"{done} steps ({done / config.steps_per_epoch:g} epochs)",
            path,
        )


#: A second stop signal this soon after the first is the same request (Ctrl-C in a terminal
#: reaches torchrun and its workers, and torchrun passes it on to the workers once more).
_REPEAT_WINDOW_S = 2.0


class _StopSignals:
    """While active, SIGINT and SIGTERM ask the loop to stop at the next step boundary.

    A later repeat (after :data:`_REPEAT_WINDOW_S`) raises :class:`KeyboardInterrupt` at once.
    Handlers are installed only in the main thread and restored on exit.
    """

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._first = 0.0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.signal_number is None:
            self.signal_number = number
            self._first = time.monotonic()
        elif time.monotonic() - self._first > _REPEAT_WINDOW_S:
            raise KeyboardInterrupt

    def __exit__(self, *exc_info: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)


class EmLossModule(nn.Module):
    """The EM loss of a clip batch as one module, which is what DDP wraps.

    Args:
        net, noise: the trained modules (registered as sub-modules).
        config: objective, Sinkhorn rounds and whether the noise is learned.
    """

    def __init__(self, net: AssociationNet, noise: NoiseModel, config: TrainConfig) -> None:
        super().__init__()
        self.net = net
        self.noise = noise
        self.objective = config.objective
        self.association = config.association
        self.sinkhorn_iterations = config.sinkhorn_iterations
        self.learn_noise = config.learn_noise

    def forward(
        self,
        boxes_xyxy: torch.Tensor,
        mask: torch.Tensor,
        dt: torch.Tensor,
        log_clutter_density: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss, association NLL, noise NLL and mean slot mass (scalars) of a batch.

        Args:
            boxes_xyxy: ``(B, T, N, 4)``; mask: ``(B, T, N)``; dt, log_clutter_density: ``(B,)``
                (the fields of :class:`~emtrack.model.loss.ClipBatch`).
        """
        batch = ClipBatch(boxes_xyxy, mask, dt, log_clutter_density)
        out = em_loss(
            self.net,
            self.noise,
            batch,
            self.objective,  # type: ignore[arg-type]
            self.sinkhorn_iterations,
            self.learn_noise,
            association=self.association,  # type: ignore[arg-type]
        )
        return out.loss, out.association_nll, out.noise_nll, out.mean_slot_mass


def step_size(config: TrainConfig, step: int) -> float:
    """Adam's step size for optimiser step ``step`` (0-based) of the run."""
    if config.lr_schedule == "cosine":
        total = config.epochs * config.steps_per_epoch
        return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * step / total))
    return config.learning_rate


def clutter_log_scale(config: TrainConfig, step: int) -> float:
    """``log`` of the clutter-density factor at optimiser step ``step`` (0-based): 0 at the
    start, ``log(clutter_scale)`` from the end of the warm-up on (which does not depend on the
    number of epochs, so resuming with more epochs keeps it)."""
    full = math.log(config.clutter_scale)
    warmup_steps = config.clutter_warmup_epochs * config.steps_per_epoch
    if step >= warmup_steps:
        return full
    return full * step / warmup_steps


def _detection_count(mask: torch.Tensor) -> float:
    """What :func:`em_loss` divides by: real detections of frames 1 … T-1, at least 1."""
    return float(max(int(mask[:, 1:].sum()), 1))


def train(
    config: TrainConfig,
    det_paths: Sequence[str | Path] = (),
    checkpoint: str | Path | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    resume: str | Path | None = None,
) -> TrainResult:
    """Train from detection files and/or synthetic scenes.

    The checkpoint is written (atomically) at the end of every epoch and, with
    ``config.checkpoint_every``, every that many steps. It holds what resuming needs: weights,
    optimiser state, the sampler's and torch's random states, the position in the run and the
    history, so a run resumed from it ends with the same weights, bit for bit, as one that was
    never stopped. SIGINT (Ctrl-C) or SIGTERM stops the run at the next step boundary: the
    checkpoint is written there and :class:`TrainingInterrupted` is raised.

    Under torchrun with ``WORLD_SIZE > 1`` the run is data-parallel (see
    :mod:`emtrack.train.distributed`): only rank 0 writes, evaluates and calls ``on_epoch``.

    Args:
        config: the run.
        det_paths: det files or folders of sequences (their id columns are ignored). When
            resuming, empty means the paths recorded in the checkpoint.
        checkpoint: where to write the checkpoint (optional).
        progress: show a progress bar (default: when stderr is a terminal).
        on_epoch: called with each epoch's record.
        resume: a checkpoint to continue from; ``config`` must equal its config except for
            :data:`RESUMABLE_FIELDS`, and the detections must be the same.

    Raises:
        TrainingInterrupted: on SIGINT/SIGTERM, after writing the checkpoint.
        EmtrackInputError: an unusable ``resume`` checkpoint or mismatching data.
    """
    if torch.device(config.device).type == "cuda" and not torch.cuda.is_available():
        raise EmtrackInputError(
            f"device {config.device!r}: no CUDA GPU is available to torch {torch.__version__} "
            "(a CPU-only build, or no driver); use --device cpu"
        )
    context = distributed.setup(config.device)
    try:
        return _train(context, config, det_paths, checkpoint, progress, on_epoch, resume)
    finally:
        context.close()


def _train(
    context: distributed.DistributedContext,
    config: TrainConfig,
    det_paths: Sequence[str | Path],
    checkpoint: str | Path | None,
    progress: bool | None,
    on_epoch: Callable[[EpochRecord], None] | None,
    resume: str | Path | None,
) -> TrainResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    saved: dict[str, Any] | None = None
    if resume is not None:
        from emtrack.train.checkpoint import load_checkpoint

        saved = load_checkpoint(resume)
        check_resumable(saved, config, resume)
        if not det_paths:
            det_paths = [str(p) for p in saved.get("det_paths") or ()]
    paths = [str(Path(p).resolve()) for p in det_paths]
    own_streams = streams_from_paths(paths)
    streams = list(own_streams)
    if config.synthetic_scenes:
        streams += synthetic_streams(config)
    if not streams:
        raise ValueError("nothing to train on: give detection files or synthetic_scenes > 0")
    fingerprint = data_fingerprint(streams)
    if saved is not None and saved["data_fingerprint"] != fingerprint:
        assert resume is not None
        raise EmtrackInputError(
            "cannot resume: the training data differ from the data the checkpoint was trained "
            f"on (checkpoint's det paths: {saved.get('det_paths') or 'none'})",
            resume,
        )
    if context.world_size > config.batch_size:
        raise ValueError(
            f"batch_size={config.batch_size} is smaller than the {context.world_size} processes"
        )
    sampler = ClipSampler(
        tuple(streams), config.clip_length, config.max_stride, config.max_detections
    )
    heldout = heldout_clips(config) if context.is_main else None
    net = AssociationNet(config.hidden).to(config.device, config.dtype)
    noise = NoiseModel().to(config.device, config.dtype)
    init_sha256: str | None = None
    if saved is None:
        initial = resolve_init(config.init, config.hidden)
        if initial is not None:
            load_initial_weights(initial, net, noise)
            init_sha256 = initial.sha256
            logger.info("starting from the weights of %s", initial.source)
    else:
        init_sha256 = saved.get("init_sha256")
    noise.requires_grad_(config.learn_noise)  # DDP reduces exactly the parameters it trains
    params = list(net.parameters()) + (list(noise.parameters()) if config.learn_noise else [])
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    max_gap_s = trained_max_gap_s(sampler, config)
    result = TrainResult(net, noise, config, [], context.is_main, max_gap_s)
    done = 0  # optimiser steps completed
    sums = np.zeros(4)  # loss, association NLL, noise NLL, slot mass over this epoch's steps
    elapsed = 0.0
    if saved is not None:
        assert resume is not None
        try:
            net.load_state_dict(saved["net"])
            noise.load_state_dict(saved["noise"])
            optimizer.load_state_dict(saved["optimizer"])
            rng.bit_generator.state = saved["numpy_rng"]
            torch.set_rng_state(saved["torch_rng"])
            result.history.extend(EpochRecord(**record) for record in saved["history"])
            done = int(saved["step"])
            sums = np.array(saved["epoch_sums"], dtype=np.float64).reshape(4)
            elapsed = float(saved["epoch_elapsed"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise EmtrackInputError(
                f"cannot resume: inconsistent checkpoint ({exc})", resume
            ) from exc
        logger.info("resuming %s at step %d", resume, done)
    model = context.wrap(EmLossModule(net, noise, config))
    checkpoint_path = Path(checkpoint) if checkpoint is not None and context.is_main else None

    def save() -> None:
        if checkpoint_path is None:
            return
        state = {
            "epoch_sums": [float(v) for v in sums],
            "epoch_elapsed": elapsed,
            "data_fingerprint": fingerprint,
            "det_paths": paths,
            "world_size": context.world_size,
            "init_sha256": init_sha256,
        }
        save_checkpoint(checkpoint_path, result, optimizer, done, rng, state)

    spe = config.steps_per_epoch
    total = config.epochs * spe
    show = context.is_main and (sys.stderr.isatty() if progress is None else progress)
    agreed_stop = False  # distributed: a rank asked to stop (known after each step's all-reduce)
    with _StopSignals() as signals:

        def stop_if_asked() -> None:
            asked = agreed_stop if context.enabled else signals.signal_number is not None
            if not asked:
                return
            save()
            context.barrier()  # no rank exits (and makes torchrun kill rank 0) before the save
            number = signals.signal_number or int(signal.SIGINT)
            raise TrainingInterrupted(number, done, total, checkpoint_path)

        while done < total:
            epoch = done // spe + 1
            bar = tqdm(
                total=spe,
                initial=done % spe,
                desc=f"epoch {epoch}/{config.epochs}",
                disable=not show,
                leave=False,
            )
            if done % spe == 0:
                sums, elapsed = np.zeros(4), 0.0
            while True:
                stop_if_asked()
                for group in optimizer.param_groups:
                    group["lr"] = step_size(config, done)
                full = sampler.sample(config.batch_size, rng)
                batch = context.shard(full)
                share = _detection_count(batch.mask) / _detection_count(full.mask)
                batch = batch.to(config.device, config.dtype)
                start = time.perf_counter()
                loss, association_nll, noise_nll, mass = model(
                    batch.boxes_xyxy,
                    batch.mask,
                    batch.dt,
                    batch.log_clutter_density + clutter_log_scale(config, done),
                )
                optimizer.zero_grad(set_to_none=True)
                # DDP averages gradients over ranks: weighted so the average is the full batch's.
                (loss * (context.world_size * share) if context.enabled else loss).backward()
                torch.nn.utils.clip_grad_norm_(params, 10.0)
                optimizer.step()
                elapsed += time.perf_counter() - start
                stats = torch.stack(
                    [loss.detach(), association_nll.detach(), noise_nll.detach(), mass]
                )
                if context.enabled:
                    asked = float(signals.signal_number is not None)
                    shared = torch.cat([stats.double() * share, stats.new_tensor([asked]).double()])
                    shared = context.sum(shared).cpu()
                    stats, agreed_stop = shared[:4], bool(shared[4] > 0)
                sums += [float(v) for v in stats.cpu()]
                done += 1
                bar.update(1)
                bar.set_postfix(loss=f"{float(stats[0]):.3f}")
                if done % spe == 0:
                    break
                if config.checkpoint_every and done % config.checkpoint_every == 0:
                    save()
            bar.close()
            means = sums / spe
            p = noise.params().detach()
            record = EpochRecord(
                epoch,
                float(means[0]),
                float(means[1]),
                float(means[2]),
                float(means[3]),
                config.batch_size * spe / max(elapsed, 1e-9),
                noise={"q": float(p.q), "r": float(p.r), "p_vel": float(p.p_vel)},
            )
            if heldout is not None:
                scores = evaluate_accuracy(net, noise, heldout, config, baselines=True)
                record.accuracy = scores["accuracy"]
                record.iou_accuracy = scores["iou_accuracy"]
                record.oracle_accuracy = scores["oracle_accuracy"]
            result.history.append(record)
            logger.info("epoch %d: %s", epoch, record)
            if on_epoch is not None and context.is_main:
                on_epoch(record)
            sums, elapsed = np.zeros(4), 0.0
            save()
        stop_if_asked()  # a stop asked during the last epoch's evaluation
        if context.is_main:
            result.verdict = training_verdict(net, noise, config, own_streams)
            save()
            if result.verdict.ok is False:
                warnings.warn(TrainingVerdictWarning(result.verdict), stacklevel=3)  # at train()
        stop_if_asked()
        context.barrier()
    return result

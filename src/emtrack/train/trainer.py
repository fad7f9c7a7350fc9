"""Self-supervised EM training of the association network (no identities are ever read).

:func:`train` sets a run up (:meth:`TrainingRun.start`: data, modules, initial weights, and
the state of a resumed checkpoint) and runs its optimiser loop (:meth:`TrainingRun.run`). The
pieces live beside it: settings in :mod:`emtrack.train.config`, the data in
:mod:`emtrack.train.data`, held-out accuracy and the verdict in :mod:`emtrack.train.heldout`,
checkpoint writing and resume checks in :mod:`emtrack.train.checkpoint`.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from emtrack.errors import EmtrackInputError
from emtrack.model.checkpoint import load_checkpoint
from emtrack.model.loss import ClipBatch, em_loss
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.train import distributed
from emtrack.train.accuracy import LabelledClips
from emtrack.train.checkpoint import check_resumable, save_checkpoint
from emtrack.train.clips import ClipSampler, DetectionStream
from emtrack.train.config import TrainConfig
from emtrack.train.data import (
    data_fingerprint,
    streams_from_paths,
    synthetic_streams,
    trained_max_gap_s,
)
from emtrack.train.heldout import evaluate_accuracy, heldout_clips, training_verdict
from emtrack.train.init import load_initial_weights, resolve_init
from emtrack.train.result import EpochRecord, TrainResult
from emtrack.train.verdict import TrainingVerdictWarning

__all__ = [
    "EmLossModule",
    "TrainingInterrupted",
    "TrainingRun",
    "clutter_log_scale",
    "detection_count",
    "step_size",
    "train",
]

logger = logging.getLogger(__name__)


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
            self.objective,
            self.sinkhorn_iterations,
            self.learn_noise,
            association=self.association,
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


def detection_count(mask: torch.Tensor) -> float:
    """What :func:`~emtrack.model.loss.em_loss` divides by: real detections of frames
    1 … T-1 of a mask ``(B, T, N)``, at least 1."""
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
            :data:`~emtrack.train.checkpoint.RESUMABLE_FIELDS`, and the detections must be
            the same.

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
        run = TrainingRun.start(context, config, det_paths, checkpoint, resume)
        return run.run(progress, on_epoch)
    finally:
        context.close()


class TrainingRun:
    """One run's optimiser loop and everything it carries from step to step.

    Build it with :meth:`start`; :meth:`run` trains to the end (or to a stop signal). The
    position (:attr:`done`) and the epoch's running sums are what a checkpoint stores besides
    the weights, the optimiser and the random states, so a resumed run continues exactly.

    Attributes:
        context: the distributed set-up (one process without torchrun).
        config: the run's config.
        result: the modules, the history and (at the end) the verdict.
        optimizer: Adam over ``params``.
        params: the trained parameters (the noise model's only when it is learned).
        sampler: draws the clip batches.
        rng: the sampler's generator.
        heldout: the fixed held-out clips (rank 0 only; None without held-out scenes).
        own_streams: the detection files' streams (the verdict judges the network on them).
        checkpoint_path: where rank 0 writes the checkpoint (None: nowhere).
        run_state: the checkpoint entries fixed for the whole run (data fingerprint, detection
            paths, world size, digest of the initial weights).
        done: optimiser steps completed.
        sums: loss, association NLL, noise NLL and slot mass summed over this epoch's steps.
        elapsed: seconds spent in this epoch's steps.
    """

    def __init__(
        self,
        context: distributed.DistributedContext,
        config: TrainConfig,
        result: TrainResult,
        optimizer: torch.optim.Optimizer,
        params: list[nn.Parameter],
        sampler: ClipSampler,
        rng: np.random.Generator,
        heldout: LabelledClips | None,
        own_streams: Sequence[DetectionStream],
        checkpoint_path: Path | None,
        run_state: dict[str, Any],
    ) -> None:
        self.context = context
        self.config = config
        self.result = result
        self.optimizer = optimizer
        self.params = params
        self.sampler = sampler
        self.rng = rng
        self.heldout = heldout
        self.own_streams = own_streams
        self.checkpoint_path = checkpoint_path
        self.run_state = run_state
        self.done = 0
        self.sums = np.zeros(4)
        self.elapsed = 0.0
        self.total = config.epochs * config.steps_per_epoch
        self._agreed_stop = False  # distributed: a rank asked to stop (known after each step)

    @classmethod
    def start(
        cls,
        context: distributed.DistributedContext,
        config: TrainConfig,
        det_paths: Sequence[str | Path],
        checkpoint: str | Path | None,
        resume: str | Path | None,
    ) -> TrainingRun:
        """Read the data, build the modules (from the initial weights) and, when resuming,
        restore the checkpoint's state (see :func:`train` for the arguments).

        Raises:
            EmtrackInputError: an unusable ``resume`` checkpoint or mismatching data.
            ValueError: nothing to train on, or fewer clips per step than processes.
        """
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        saved: dict[str, Any] | None = None
        if resume is not None:
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
                "cannot resume: the training data differ from the data the checkpoint was "
                f"trained on (checkpoint's det paths: {saved.get('det_paths') or 'none'})",
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
        result = TrainResult(
            net, noise, config, [], context.is_main, trained_max_gap_s(sampler, config)
        )
        run_state = {
            "data_fingerprint": fingerprint,
            "det_paths": paths,
            "world_size": context.world_size,
            "init_sha256": init_sha256,
        }
        checkpoint_path = Path(checkpoint) if checkpoint is not None and context.is_main else None
        run = cls(
            context,
            config,
            result,
            optimizer,
            params,
            sampler,
            rng,
            heldout,
            own_streams,
            checkpoint_path,
            run_state,
        )
        if saved is not None:
            assert resume is not None
            run.restore(saved, resume)
        return run

    def restore(self, saved: dict[str, Any], path: str | Path) -> None:
        """Continue from the state of a loaded checkpoint ``saved`` (read from ``path``).

        Raises:
            EmtrackInputError: the checkpoint's entries do not fit this run.
        """
        try:
            self.result.net.load_state_dict(saved["net"])
            self.result.noise.load_state_dict(saved["noise"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.rng.bit_generator.state = saved["numpy_rng"]
            torch.set_rng_state(saved["torch_rng"])
            self.result.history.extend(EpochRecord(**record) for record in saved["history"])
            self.done = int(saved["step"])
            self.sums = np.array(saved["epoch_sums"], dtype=np.float64).reshape(4)
            self.elapsed = float(saved["epoch_elapsed"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise EmtrackInputError(
                f"cannot resume: inconsistent checkpoint ({exc})", path
            ) from exc
        logger.info("resuming %s at step %d", path, self.done)

    def save(self) -> None:
        """Write the checkpoint of the current step (rank 0 with a checkpoint path only)."""
        if self.checkpoint_path is None:
            return
        state = {
            "epoch_sums": [float(v) for v in self.sums],
            "epoch_elapsed": self.elapsed,
            **self.run_state,
        }
        save_checkpoint(
            self.checkpoint_path, self.result, self.optimizer, self.done, self.rng, state
        )

    def run(
        self,
        progress: bool | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> TrainResult:
        """Train from :attr:`done` to the last step, then judge the network (rank 0).

        Raises:
            TrainingInterrupted: on SIGINT/SIGTERM, after writing the checkpoint.
        """
        config, context = self.config, self.context
        model = context.wrap(EmLossModule(self.result.net, self.result.noise, config))
        show = context.is_main and (sys.stderr.isatty() if progress is None else progress)
        with _StopSignals() as signals:
            while self.done < self.total:
                self._epoch(model, signals, show, on_epoch)
            self._stop_if_asked(signals)  # a stop asked during the last epoch's evaluation
            if context.is_main:
                net, noise = self.result.net, self.result.noise
                self.result.verdict = training_verdict(net, noise, config, self.own_streams)
                self.save()
                if self.result.verdict.ok is False:
                    # stacklevel 3: the caller of train() (train -> run -> warn).
                    warnings.warn(TrainingVerdictWarning(self.result.verdict), stacklevel=3)
            self._stop_if_asked(signals)
            context.barrier()
        return self.result

    def _stop_if_asked(self, signals: _StopSignals) -> None:
        """Save and raise :class:`TrainingInterrupted` when a stop was asked (on any rank)."""
        asked_here = signals.signal_number is not None
        if not (self._agreed_stop if self.context.enabled else asked_here):
            return
        self.save()
        self.context.barrier()  # no rank exits (and makes torchrun kill rank 0) before the save
        number = signals.signal_number or int(signal.SIGINT)
        raise TrainingInterrupted(number, self.done, self.total, self.checkpoint_path)

    def _epoch(
        self,
        model: nn.Module,
        signals: _StopSignals,
        show: bool,
        on_epoch: Callable[[EpochRecord], None] | None,
    ) -> None:
        """The rest of the current epoch's steps, then its record and checkpoint."""
        config = self.config
        spe = config.steps_per_epoch
        epoch = self.done // spe + 1
        bar = tqdm(
            total=spe,
            initial=self.done % spe,
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not show,
            leave=False,
        )
        if self.done % spe == 0:
            self.sums, self.elapsed = np.zeros(4), 0.0
        while True:
            self._stop_if_asked(signals)
            loss = self._step(model, signals)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            if self.done % spe == 0:
                break
            if config.checkpoint_every and self.done % config.checkpoint_every == 0:
                self.save()
        bar.close()
        record = self._record(epoch)
        self.result.history.append(record)
        logger.info("epoch %d: %s", epoch, record)
        if on_epoch is not None and self.context.is_main:
            on_epoch(record)
        self.sums, self.elapsed = np.zeros(4), 0.0
        self.save()

    def _step(self, model: nn.Module, signals: _StopSignals) -> float:
        """One optimiser step on a fresh batch; adds its statistics to :attr:`sums` and
        returns its loss (over all ranks)."""
        config, context = self.config, self.context
        for group in self.optimizer.param_groups:
            group["lr"] = step_size(config, self.done)
        full = self.sampler.sample(config.batch_size, self.rng)
        batch = context.shard(full)
        share = detection_count(batch.mask) / detection_count(full.mask)
        batch = batch.to(config.device, config.dtype)
        start = time.perf_counter()
        loss, association_nll, noise_nll, mass = model(
            batch.boxes_xyxy,
            batch.mask,
            batch.dt,
            batch.log_clutter_density + clutter_log_scale(config, self.done),
        )
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks: weighted so the average is the full batch's.
        (loss * (context.world_size * share) if context.enabled else loss).backward()
        torch.nn.utils.clip_grad_norm_(self.params, 10.0)
        self.optimizer.step()
        self.elapsed += time.perf_counter() - start
        stats = torch.stack([loss.detach(), association_nll.detach(), noise_nll.detach(), mass])
        if context.enabled:
            asked = float(signals.signal_number is not None)
            shared = torch.cat([stats.double() * share, stats.new_tensor([asked]).double()])
            shared = context.sum(shared).cpu()
            stats, self._agreed_stop = shared[:4], bool(shared[4] > 0)
        self.sums += [float(v) for v in stats.cpu()]
        self.done += 1
        return float(stats[0])

    def _record(self, epoch: int) -> EpochRecord:
        """The history line of the epoch just finished (held-out accuracy on rank 0)."""
        config = self.config
        spe = config.steps_per_epoch
        means = self.sums / spe
        p = self.result.noise.params().detach()
        record = EpochRecord(
            epoch,
            float(means[0]),
            float(means[1]),
            float(means[2]),
            float(means[3]),
            config.batch_size * spe / max(self.elapsed, 1e-9),
            noise={"q": float(p.q), "r": float(p.r), "p_vel": float(p.p_vel)},
        )
        if self.heldout is not None:
            net, noise = self.result.net, self.result.noise
            scores = evaluate_accuracy(net, noise, self.heldout, config, baselines=True)
            record.accuracy = scores["accuracy"]
            record.iou_accuracy = scores["iou_accuracy"]
            record.oracle_accuracy = scores["oracle_accuracy"]
        return record

"""Training throughput: the structured Kalman filter against the dense joint-state oracle.

Both sides compute the same loss, :func:`emtrack.model.loss.em_loss` (association network,
Sinkhorn, association products, Kalman filter and smoother, the chosen objective plus the
innovations likelihood that fits the noise), on the same clips from the same initial weights;
they differ only in ``kalman="structured"`` (:mod:`emtrack.model.kalman`) or ``"dense"``
(:mod:`emtrack.model.dense`). A *training step* is that loss forward, its backward and (by
default) an Adam step, as in :func:`emtrack.train.trainer.train`. The *loss-only* figures time
the part that differs: :func:`emtrack.model.loss.kalman_nll` forward and backward, given
fixed association products.

Before timing, each clip size checks that the two sides agree: the loss and the gradients of
every weight, in float64 on the timed clips, must match to ``agreement_tolerance`` (relative).

Clips are synthetic: ``k`` objects moving at constant velocity in a 1920x1080, 30 fps image,
every one detected in every frame with a small jitter (``k`` detections per frame, in random
order), every frame or every second frame as in the trainer's sampler. Throughput is clips per
second of the fastest of ``repeats`` timed runs (each at least ``min_time_s`` long), after one
warm-up step; a side whose warm-up step takes longer than ``single_step_above_s`` is timed on
a single step. Figures depend on the machine's load: compare the ratio, which is measured in
the same run.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from emtrack.bench.environment import environment_info
from emtrack.model.choices import KALMAN_IMPLS, OBJECTIVES
from emtrack.model.loss import (
    ClipBatch,
    association_log_assignment,
    association_products,
    em_loss,
    kalman_nll,
)
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.model.sinkhorn import real_assignment

__all__ = [
    "BatchScalingRow",
    "TrainBenchConfig",
    "TrainBenchReport",
    "TrainBenchRow",
    "run_train_bench",
    "synthetic_clips",
]

_IMAGE_SIZE = (1920.0, 1080.0)
_FRAME_RATE = 30.0


@dataclass(frozen=True)
class TrainBenchConfig:
    """What ``emtrack bench train`` measures (all defaults valid).

    Attributes:
        ks: objects (= detections per frame) of the compared clip sizes.
        clip_length: frames per clip (T).
        batch_size: clips per training step in the comparison.
        scaling_k: objects per clip of the batch-size scaling (structured only).
        batch_sizes: clips per step of the batch-size scaling.
        repeats: timed runs per measurement; the fastest counts.
        min_time_s: a timed run repeats steps until it has lasted this long.
        single_step_above_s: a side whose warm-up step takes longer is timed on one step.
        dense_max_k: the dense oracle is skipped for larger ``k`` (noted in the row).
        float64: time double precision (the trainer's default is float32).
        optimizer_step: include the Adam step in a training step.
        objective: the association objective (``smoothed``, the trainer's default).
        sinkhorn_iterations: Sinkhorn rounds (the trainer's default).
        agreement_tolerance: largest relative difference of the float64 loss and gradients
            between the two sides.
        agreement_chunk: clips per float64 agreement check (bounds the oracle's memory).
        seed: seeds the clips and the initial weights.
        threads: torch threads during the run (None: torch's default).
    """

    ks: tuple[int, ...] = (5, 10, 20, 50, 100)
    clip_length: int = 10
    batch_size: int = 16
    scaling_k: int = 20
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64)
    repeats: int = 3
    min_time_s: float = 1.0
    single_step_above_s: float = 5.0
    dense_max_k: int = 100
    float64: bool = False
    optimizer_step: bool = True
    objective: str = "smoothed"
    sinkhorn_iterations: int = 20
    agreement_tolerance: float = 1e-6
    agreement_chunk: int = 4
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("ks", "batch_sizes"):
            values = tuple(int(v) for v in getattr(self, name))
            if not values or min(values) < 1:
                raise ValueError(f"TrainBenchConfig.{name} must be one or more integers >= 1")
            object.__setattr__(self, name, values)
        positive = (
            "clip_length",
            "batch_size",
            "scaling_k",
            "repeats",
            "sinkhorn_iterations",
            "dense_max_k",
            "agreement_chunk",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainBenchConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_length < 2:
            raise ValueError("TrainBenchConfig.clip_length must be >= 2")
        for name in ("min_time_s", "single_step_above_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"TrainBenchConfig.{name} must be >= 0, got {value}")
        if not (self.agreement_tolerance > 0.0):
            raise ValueError("TrainBenchConfig.agreement_tolerance must be > 0")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"TrainBenchConfig.objective must be one of {OBJECTIVES}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"TrainBenchConfig.threads must be >= 1, got {self.threads}")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.float64 else torch.float32


@dataclass(frozen=True)
class TrainBenchRow:
    """One clip size: throughput of both sides and their agreement.

    Attributes:
        k: objects = detections per frame.
        clips: clips per step.
        dense_clips_per_s: training-step throughput of the dense oracle (None: skipped).
        structured_clips_per_s: training-step throughput of the structured code.
        ratio: structured / dense (None when dense was skipped).
        dense_loss_clips_per_s: loss-only throughput of the dense oracle (None: skipped).
        structured_loss_clips_per_s: loss-only throughput of the structured code.
        loss_ratio: structured / dense, loss only.
        loss_rel_diff: ``|structured − dense| / |dense|`` of the float64 loss.
        grad_rel_diff: ``max |g_s − g_d| / max |g_d|`` over all float64 weight gradients.
        timed_dtype_loss_rel_diff: the same for the loss of the first timed-precision step.
        agree: both float64 differences are within the tolerance (None when dense skipped).
        dense_steps: training steps timed per run of the dense side (0: skipped).
        structured_steps: the same for the structured side.
        note: why dense was skipped or timed on one step, else "".
    """

    k: int
    clips: int
    dense_clips_per_s: float | None
    structured_clips_per_s: float
    ratio: float | None
    dense_loss_clips_per_s: float | None
    structured_loss_clips_per_s: float
    loss_ratio: float | None
    loss_rel_diff: float | None
    grad_rel_diff: float | None
    timed_dtype_loss_rel_diff: float | None
    agree: bool | None
    dense_steps: int
    structured_steps: int
    note: str = ""


@dataclass(frozen=True)
class BatchScalingRow:
    """Structured training throughput at one batch size.

    Attributes:
        batch_size: clips per step.
        k: objects per clip.
        clips_per_s: training-step throughput.
        relative: clips/s divided by that of the smallest batch size.
    """

    batch_size: int
    k: int
    clips_per_s: float
    relative: float


@dataclass(frozen=True)
class TrainBenchReport:
    """Result of :func:`run_train_bench`."""

    config: TrainBenchConfig
    rows: tuple[TrainBenchRow, ...]
    scaling: tuple[BatchScalingRow, ...]
    threads: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def all_agree(self) -> bool:
        return all(row.agree is not False for row in self.rows)

    def format_table(self) -> str:
        """The comparison and the batch scaling as plain-text tables."""
        cfg = self.config
        step = "forward + backward" + (" + Adam step" if cfg.optimizer_step else "")
        dtype = "float64" if cfg.float64 else "float32"
        lines = [
            f"training step = em_loss ({cfg.objective}) {step}; {dtype}, T={cfg.clip_length}, "
            f"{cfg.batch_size} clips per step, torch threads: {self.threads}",
            "agreement = largest relative difference of the float64 loss / weight gradients",
            "",
            "  k  dense clips/s  structured clips/s   ratio  loss rel.diff  grad rel.diff",
            "---  -------------  ------------------  ------  -------------  -------------",
        ]
        for row in self.rows:
            lines.append(
                f"{row.k:>3}  {_fmt(row.dense_clips_per_s, '13.1f')}  "
                f"{row.structured_clips_per_s:>18.1f}  {_fmt_ratio(row.ratio, 6)}  "
                f"{_fmt(row.loss_rel_diff, '13.1e')}  {_fmt(row.grad_rel_diff, '13.1e')}"
            )
        lines += [
            "",
            "loss only = the Kalman part (kalman_nll) forward + backward, association fixed",
            "",
            "  k  dense clips/s  structured clips/s   ratio",
            "---  -------------  ------------------  ------",
        ]
        for row in self.rows:
            lines.append(
                f"{row.k:>3}  {_fmt(row.dense_loss_clips_per_s, '13.1f')}  "
                f"{row.structured_loss_clips_per_s:>18.1f}  {_fmt_ratio(row.loss_ratio, 6)}"
            )
        notes = [f"k={row.k}: {row.note}" for row in self.rows if row.note]
        lines += ["", *notes] if notes else []
        lines += [
            "",
            f"structured training step vs clips per step (k={cfg.scaling_k}):",
            "clips/step  clips/s  per clip vs smallest",
            "----------  -------  --------------------",
        ]
        for srow in self.scaling:
            lines.append(
                f"{srow.batch_size:>10}  {srow.clips_per_s:>7.1f}  {srow.relative:>19.2f}x"
            )
        if self.notes:
            lines += ["", *self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: config, rows, scaling, threads, notes, versions and machine."""
        config = dataclasses.asdict(self.config)
        config["ks"] = list(self.config.ks)
        config["batch_sizes"] = list(self.config.batch_sizes)
        return {
            "benchmark": "train",
            "config": config,
            "dtype": "float64" if self.config.float64 else "float32",
            "torch_threads": self.threads,
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "batch_scaling": [dataclasses.asdict(row) for row in self.scaling],
            "all_agree": self.all_agree,
            "notes": list(self.notes),
            **environment_info(),
        }


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return format(value, spec) if value is not None else "—".rjust(width)


def _fmt_ratio(value: float | None, width: int) -> str:
    return (f"{value:.1f}x" if value is not None else "—").rjust(width)


def synthetic_clips(
    num_clips: int, clip_length: int, objects: int, rng: np.random.Generator
) -> ClipBatch:
    """``num_clips`` clips with exactly ``objects`` detections per frame (float64 tensors).

    Objects are people-sized boxes (40–200 px tall, 0.4 times as wide) walking at constant
    velocity (about one height per second) with a 2 % of height jitter per frame; every frame
    lists the detections in a fresh random order. Clips take every frame or every second frame
    of a 30 fps stream.

    Args:
        num_clips: B.
        clip_length: T.
        objects: k (the padded width N as well: no padding).
        rng: seeded generator.

    Returns:
        A :class:`~emtrack.model.loss.ClipBatch` ``(B, T, k, 4)``.
    """
    if num_clips < 1 or clip_length < 2 or objects < 1:
        raise ValueError("synthetic_clips needs num_clips >= 1, clip_length >= 2, objects >= 1")
    b, t, k = num_clips, clip_length, objects
    width, height = _IMAGE_SIZE
    stride = rng.integers(1, 3, size=b).astype(np.float64)
    dt = stride / _FRAME_RATE  # (B,)
    box_h = rng.uniform(40.0, 200.0, (b, 1, k))
    start_x = rng.uniform(0.1 * width, 0.9 * width, (b, 1, k))
    start_y = rng.uniform(0.3 * height, 0.95 * height, (b, 1, k))
    speed = rng.normal(0.0, 1.0, (b, 1, k, 2)) * box_h[..., None] * np.array([1.0, 0.3])
    times = np.arange(t, dtype=np.float64)[None, :, None] * dt[:, None, None]  # (B, T, 1)
    jitter = rng.normal(0.0, 0.02, (b, t, k, 3)) * box_h[..., None]
    x_c = start_x + speed[..., 0] * times + jitter[..., 0]
    y_b = start_y + speed[..., 1] * times + jitter[..., 1]
    h = box_h + jitter[..., 2]
    boxes = np.stack([x_c - 0.2 * h, y_b - h, x_c + 0.2 * h, y_b], -1)
    order = np.argsort(rng.random((b, t, k)), -1)
    boxes = np.take_along_axis(boxes, order[..., None], 2)
    return ClipBatch(
        torch.from_numpy(boxes),
        torch.ones(b, t, k, dtype=torch.bool),
        torch.from_numpy(dt),
        torch.full((b,), -math.log(width * height), dtype=torch.float64),
    )


@dataclass
class _Model:
    """Network, noise model and optimiser of one side (copies of the same initial weights)."""

    net: AssociationNet
    noise: NoiseModel
    optimizer: torch.optim.Optimizer

    @classmethod
    def copy_of(cls, net: AssociationNet, noise: NoiseModel, dtype: torch.dtype) -> _Model:
        net_copy = copy.deepcopy(net).to(dtype)
        noise_copy = copy.deepcopy(noise).to(dtype)
        params = [*net_copy.parameters(), *noise_copy.parameters()]
        return cls(net_copy, noise_copy, torch.optim.Adam(params, lr=1e-2))

    def parameters(self) -> list[torch.nn.Parameter]:
        return [*self.net.parameters(), *self.noise.parameters()]


def _training_step(
    model: _Model, batch: ClipBatch, kalman: str, config: TrainBenchConfig
) -> Callable[[], float]:
    def step() -> float:
        out = em_loss(
            model.net,
            model.noise,
            batch,
            config.objective,  # type: ignore[arg-type]
            config.sinkhorn_iterations,
            kalman=kalman,  # type: ignore[arg-type]
        )
        model.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if config.optimizer_step:
            model.optimizer.step()
        return float(out.loss.detach())

    return step


def _loss_only_step(
    model: _Model, batch: ClipBatch, kalman: str, config: TrainBenchConfig
) -> Callable[[], float]:
    with torch.no_grad():
        log_assignment = association_log_assignment(model.net, batch, config.sinkhorn_iterations)
        products = association_products(real_assignment(log_assignment), batch.mask[:, 0])
    products.requires_grad_(True)
    noise_params = list(model.noise.parameters())

    def step() -> float:
        association, noise = kalman_nll(
            batch,
            products,
            model.noise.params(),
            config.objective,  # type: ignore[arg-type]
            kalman=kalman,  # type: ignore[arg-type]
        )
        products.grad = None
        for param in noise_params:
            param.grad = None
        loss = association + noise
        loss.backward()
        return float(loss.detach())

    return step


@dataclass(frozen=True)
class _Timing:
    clips_per_s: float
    steps: int
    first_value: float
    single_step: bool


def _time(
    steps: dict[str, Callable[[], float]], clips: int, config: TrainBenchConfig
) -> dict[str, _Timing]:
    """Warm each side up once, then time them in turns (so load changes hit all sides alike).

    Each round runs every side for at least ``min_time_s`` (a side whose warm-up step took
    longer than ``single_step_above_s`` runs one step in the first round only); a side's
    figure is its fastest round.
    """
    first: dict[str, float] = {}
    single: dict[str, bool] = {}
    for name, step in steps.items():
        start = time.perf_counter()
        first[name] = step()
        single[name] = time.perf_counter() - start > config.single_step_above_s
    best = dict.fromkeys(steps, math.inf)
    counts = dict.fromkeys(steps, 0)
    for round_index in range(config.repeats):
        for name, step in steps.items():
            if single[name] and round_index > 0:
                continue
            min_time = 0.0 if single[name] else config.min_time_s
            count = 0
            start = time.perf_counter()
            while True:
                step()
                count += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_time:
                    break
            if elapsed / count < best[name]:
                best[name], counts[name] = elapsed / count, count
    return {
        name: _Timing(clips / max(best[name], 1e-12), counts[name], first[name], single[name])
        for name in steps
    }


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def _agreement(
    net: AssociationNet, noise: NoiseModel, batch: ClipBatch, config: TrainBenchConfig
) -> tuple[float, float]:
    """Largest relative differences (loss, weight gradients) of the two sides in float64.

    Runs over the clips in chunks of ``agreement_chunk`` (the dense oracle's float64 graph of
    16 clips at k = 100 would need several GB); each chunk's loss and gradients are compared.
    """
    worst_loss = worst_grad = 0.0
    size = len(batch.dt)
    for start in range(0, size, config.agreement_chunk):
        part = slice(start, min(start + config.agreement_chunk, size))
        chunk = batch.clips(part).to("cpu", torch.float64)
        losses: dict[str, float] = {}
        grads: dict[str, torch.Tensor] = {}
        for kalman in KALMAN_IMPLS:
            model = _Model.copy_of(net, noise, torch.float64)
            out = em_loss(
                model.net,
                model.noise,
                chunk,
                config.objective,  # type: ignore[arg-type]
                config.sinkhorn_iterations,
                kalman=kalman,  # type: ignore[arg-type]
            )
            out.loss.backward()
            losses[kalman] = float(out.loss.detach())
            grads[kalman] = torch.cat(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                    for p in model.parameters()
                ]
            )
        grad_scale = max(float(grads["dense"].abs().max()), 1e-300)
        grad_diff = float((grads["structured"] - grads["dense"]).abs().max()) / grad_scale
        worst_loss = max(worst_loss, _relative(losses["structured"], losses["dense"]))
        worst_grad = max(worst_grad, grad_diff)
    return worst_loss, worst_grad


def _compare(
    k: int,
    net: AssociationNet,
    noise: NoiseModel,
    config: TrainBenchConfig,
    progress: Callable[[str], None],
) -> TrainBenchRow:
    rng = np.random.default_rng([config.seed, k])
    clips = synthetic_clips(config.batch_size, config.clip_length, k, rng)
    batch = clips.to("cpu", config.dtype)
    run_dense = k <= config.dense_max_k
    loss_diff = grad_diff = None
    if run_dense:
        progress(f"k={k}: float64 agreement")
        loss_diff, grad_diff = _agreement(net, noise, clips, config)
    sides = KALMAN_IMPLS if run_dense else ("structured",)
    timings: dict[tuple[str, str], _Timing] = {}
    for what, make in (("step", _training_step), ("loss", _loss_only_step)):
        progress(f"k={k}: timing {what} ({', '.join(sides)})")
        steps = {
            kalman: make(_Model.copy_of(net, noise, config.dtype), batch, kalman, config)
            for kalman in sides
        }
        for kalman, timing in _time(steps, config.batch_size, config).items():
            timings[kalman, what] = timing
    structured = timings["structured", "step"]
    structured_loss = timings["structured", "loss"]
    if not run_dense:
        note = f"dense skipped (k > --dense-max-k {config.dense_max_k})"
        return TrainBenchRow(
            k=k,
            clips=config.batch_size,
            dense_clips_per_s=None,
            structured_clips_per_s=structured.clips_per_s,
            ratio=None,
            dense_loss_clips_per_s=None,
            structured_loss_clips_per_s=structured_loss.clips_per_s,
            loss_ratio=None,
            loss_rel_diff=None,
            grad_rel_diff=None,
            timed_dtype_loss_rel_diff=None,
            agree=None,
            dense_steps=0,
            structured_steps=structured.steps,
            note=note,
        )
    dense = timings["dense", "step"]
    dense_loss = timings["dense", "loss"]
    assert loss_diff is not None and grad_diff is not None
    note = ""
    if dense.single_step:
        note = f"dense timed on a single step (warm-up step > {config.single_step_above_s:g} s)"
    return TrainBenchRow(
        k=k,
        clips=config.batch_size,
        dense_clips_per_s=dense.clips_per_s,
        structured_clips_per_s=structured.clips_per_s,
        ratio=structured.clips_per_s / dense.clips_per_s,
        dense_loss_clips_per_s=dense_loss.clips_per_s,
        structured_loss_clips_per_s=structured_loss.clips_per_s,
        loss_ratio=structured_loss.clips_per_s / dense_loss.clips_per_s,
        loss_rel_diff=loss_diff,
        grad_rel_diff=grad_diff,
        timed_dtype_loss_rel_diff=_relative(structured.first_value, dense.first_value),
        agree=max(loss_diff, grad_diff) <= config.agreement_tolerance,
        dense_steps=dense.steps,
        structured_steps=structured.steps,
        note=note,
    )


def _scaling(
    net: AssociationNet,
    noise: NoiseModel,
    config: TrainBenchConfig,
    progress: Callable[[str], None],
) -> tuple[BatchScalingRow, ...]:
    rates: list[tuple[int, float]] = []
    for size in config.batch_sizes:
        progress(f"batch scaling: {size} clips per step")
        rng = np.random.default_rng([config.seed, config.scaling_k, size])
        batch = synthetic_clips(size, config.clip_length, config.scaling_k, rng)
        model = _Model.copy_of(net, noise, config.dtype)
        step = _training_step(model, batch.to("cpu", config.dtype), "structured", config)
        rates.append((size, _time({"structured": step}, size, config)["structured"].clips_per_s))
    base = min(rates)[1]
    return tuple(BatchScalingRow(size, config.scaling_k, rate, rate / base) for size, rate in rates)


def run_train_bench(
    config: TrainBenchConfig = TrainBenchConfig(),
    progress: Callable[[str], None] | None = None,
) -> TrainBenchReport:
    """Time training steps of both sides for every ``k``, then the batch scaling.

    Args:
        config: what to measure.
        progress: called with a short message before each measurement (e.g. a logger).

    Returns:
        The report (rows in the order of ``config.ks``).
    """
    say = progress if progress is not None else (lambda message: None)
    before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(config.seed)
        net = AssociationNet()
        noise = NoiseModel()
        threads = torch.get_num_threads()
        rows = tuple(_compare(k, net, noise, config, say) for k in config.ks)
        scaling = _scaling(net, noise, config, say)
    finally:
        torch.set_num_threads(before)
    notes = []
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    notes.append(
        f"{usable} usable CPUs, torch threads {threads}; other processes share the machine, "
        "so absolute clips/s vary from run to run: the ratios are measured in the same run"
    )
    if not all(row.agree is not False for row in rows):
        bad = [row.k for row in rows if row.agree is False]
        notes.append(
            f"DISAGREEMENT at k={bad}: structured and dense differ by more than "
            f"{config.agreement_tolerance:g} (relative)"
        )
    return TrainBenchReport(config, rows, scaling, threads, tuple(notes))

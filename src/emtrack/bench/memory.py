"""Memory of long online runs: does tracking N frames need memory that grows with N?

:func:`synthetic_stream` yields detections frame by frame from a small state (the objects in
view), so the stream itself never holds more than one frame. :func:`measure_stream` feeds it to
an online :class:`~emtrack.track.Tracker` (``keep_history=False``) and records peak resident
memory (``VmHWM`` of ``/proc/self/status``, or ``ru_maxrss`` where there is no ``/proc``), the
number of live Python memory blocks (``sys.getallocatedblocks``, after a garbage collection),
the live track count and the tracker's history; optionally (``trace_heap``, about 6 times
slower) the current and peak Python-tracked allocations (:mod:`tracemalloc`; numpy reports its
array buffers to it). :func:`run_memory_bench` runs each stream
length in a fresh Python process (``python -m emtrack.bench.memory``), so each peak belongs to
one run only, and compares the peaks of the longest and the shortest run.

Objects live a few hundred frames and new ones keep appearing, so over a long stream the
tracker starts and ends thousands of tracks: flat memory means ended tracks are really freed.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emtrack.errors import EmtrackInputError

__all__ = [
    "MemoryReport",
    "MemoryRun",
    "StreamConfig",
    "measure_stream",
    "run_memory_bench",
    "synthetic_stream",
]

_MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class StreamConfig:
    """Knobs of the synthetic stream (all defaults valid).

    Attributes:
        objects: Objects in view at any time (an object that leaves or ends is replaced).
        frame_rate: Frames per second of the stream (given to the tracker too).
        image_width: Image width in pixels.
        image_height: Image height in pixels.
        mean_lifetime_s: Mean time an object stays before it is replaced by a new one.
        miss_rate: Probability that an object gets no detection in a frame.
        false_positives: Mean false detections per frame (Poisson).
        seed: Seed of the stream.
    """

    objects: int = 20
    frame_rate: float = 30.0
    image_width: int = 1920
    image_height: int = 1080
    mean_lifetime_s: float = 10.0
    miss_rate: float = 0.1
    false_positives: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objects < 1:
            raise EmtrackInputError(f"objects must be >= 1, got {self.objects}")
        if not (self.frame_rate > 0 and self.mean_lifetime_s > 0):
            raise EmtrackInputError("frame_rate and mean_lifetime_s must be > 0")
        if self.image_width < 64 or self.image_height < 64:
            raise EmtrackInputError("image_width and image_height must be >= 64")
        if not 0.0 <= self.miss_rate < 1.0 or self.false_positives < 0:
            raise EmtrackInputError("miss_rate must be in [0, 1) and false_positives >= 0")
        if self.seed < 0:
            raise EmtrackInputError(f"seed must be >= 0, got {self.seed}")


def synthetic_stream(num_frames: int, config: StreamConfig | None = None) -> Iterator[np.ndarray]:
    """Detections of a seeded street-like scene, generated one frame at a time.

    Each of ``config.objects`` pedestrians walks at constant velocity with a little jitter; it is
    replaced by a new one (new position, size and velocity) when it leaves the image or its
    lifetime (exponential, mean ``mean_lifetime_s``) ends. Detections are the true boxes with
    noise of 2 % of the height; objects are missed with ``miss_rate``; false positives are
    random boxes with lower scores. Memory use is ``O(objects)`` whatever ``num_frames`` is.

    Args:
        num_frames: Frames to generate, >= 0.
        config: The stream's knobs (default :class:`StreamConfig`).

    Yields:
        ``(N, 5)`` float64 ``[x1, y1, x2, y2, score]`` per frame, rows in random order.
    """
    config = config or StreamConfig()
    rng = np.random.default_rng(config.seed)
    k, width, height = config.objects, float(config.image_width), float(config.image_height)
    dt = 1.0 / config.frame_rate
    end_probability = 1.0 - np.exp(-dt / config.mean_lifetime_s)

    def spawn(count: int) -> np.ndarray:
        """``(count, 5)`` states: centre x, bottom y, height, vx, vy (pixels, pixels/s)."""
        h = rng.uniform(0.08, 0.4, count) * height
        state = np.empty((count, 5))
        state[:, 0] = rng.uniform(0.0, width, count)
        state[:, 1] = rng.uniform(0.3 * height, height, count) + 0.5 * h
        state[:, 2] = h
        state[:, 3] = rng.normal(0.0, 0.5, count) * h
        state[:, 4] = rng.normal(0.0, 0.1, count) * h
        return state

    objects = spawn(k)
    for _ in range(num_frames):
        objects[:, :2] += objects[:, 3:5] * dt + rng.normal(0.0, 0.003, (k, 2)) * objects[:, 2:3]
        gone = (
            (objects[:, 0] < 0.0)
            | (objects[:, 0] > width)
            | (objects[:, 1] - objects[:, 2] > height)
            | (objects[:, 1] < 0.0)
            | (rng.random(k) < end_probability)
        )
        if gone.any():
            objects[gone] = spawn(int(gone.sum()))
        seen = objects[rng.random(k) >= config.miss_rate]
        h = seen[:, 2]
        w = 0.4 * h
        boxes = np.stack(
            [seen[:, 0] - 0.5 * w, seen[:, 1] - h, seen[:, 0] + 0.5 * w, seen[:, 1]], axis=1
        )
        boxes += rng.normal(0.0, 0.02, boxes.shape) * h[:, None]
        scores = rng.uniform(0.7, 1.0, len(seen))
        num_false = int(rng.poisson(config.false_positives))
        false_h = rng.uniform(0.05, 0.3, num_false) * height
        false_x = rng.uniform(0.0, width, num_false)
        false_y = rng.uniform(0.0, height, num_false)
        false_boxes = np.stack(
            [false_x, false_y, false_x + 0.4 * false_h, false_y + false_h], axis=1
        )
        dets = np.empty((len(seen) + num_false, 5))
        dets[: len(seen), :4] = boxes
        dets[: len(seen), 4] = scores
        dets[len(seen) :, :4] = false_boxes
        dets[len(seen) :, 4] = rng.uniform(0.1, 0.8, num_false)
        yield dets[rng.permutation(len(dets))]


def _peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS


@dataclass(frozen=True)
class MemoryRun:
    """What one run of :func:`measure_stream` measured.

    Attributes:
        frames: Frames tracked.
        detections: Detections fed to the tracker.
        update_seconds: Time spent in ``Tracker.update`` calls only (with heap tracing on, if
            ``heap_peak_mib`` is set).
        warmup_frames: Frames after which the "warm" figures were taken.
        warm_rss_mib: Peak resident memory after the warm-up frames.
        peak_rss_mib: Peak resident memory at the end (of the process: imports included).
        warm_python_blocks: Live Python memory blocks after the warm-up (after ``gc.collect``).
        final_python_blocks: The same at the end; a leak of Python objects makes it grow.
        warm_heap_mib: Python-tracked allocations alive after the warm-up, counted from the
            tracker's creation (None: not traced).
        final_heap_mib: The same at the end; a leak makes it grow with ``frames``.
        heap_peak_mib: Peak of Python-tracked allocations after the warm-up.
        max_live_tracks: Largest number of live tracks (tentative, confirmed or lost) seen.
        tracks_started: Tracks started over the run (ids handed out).
        history_entries: Tracks in ``Tracker.history`` at the end (0 with keep_history=False).
        fresh_process: Whether the run had a process of its own (peaks independent of others).
    """

    frames: int
    detections: int
    update_seconds: float
    warmup_frames: int
    warm_rss_mib: float
    peak_rss_mib: float
    warm_python_blocks: int
    final_python_blocks: int
    warm_heap_mib: float | None
    final_heap_mib: float | None
    heap_peak_mib: float | None
    max_live_tracks: int
    tracks_started: int
    history_entries: int
    fresh_process: bool = False

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.update_seconds if self.update_seconds > 0 else float("inf")


def measure_stream(
    num_frames: int,
    config: StreamConfig | None = None,
    model: str | os.PathLike[str] | None = None,
    trace_heap: bool = False,
    warmup_frames: int | None = None,
) -> MemoryRun:
    """Track ``num_frames`` frames of :func:`synthetic_stream` online and measure memory.

    Args:
        num_frames: Stream length, >= 1.
        config: Stream knobs (its ``frame_rate`` is the tracker's).
        model: Tracker weights (None: the shipped model).
        trace_heap: Trace Python allocations with :mod:`tracemalloc` (slows tracking down).
        warmup_frames: Frames before the "warm" figures are taken (default: 10 % of the
            stream, at most 1 000).

    Returns:
        The measurements. Peak RSS covers the whole process: run it in a fresh process (as
        :func:`run_memory_bench` does) to compare stream lengths.
    """
    from emtrack.track import Tracker

    if num_frames < 1:
        raise EmtrackInputError(f"num_frames must be >= 1, got {num_frames}")
    config = config or StreamConfig()
    if warmup_frames is None:
        warmup_frames = min(1000, max(1, num_frames // 10))
    warmup_frames = min(max(1, warmup_frames), num_frames)
    tracker = Tracker(frame_rate=config.frame_rate, model=model, keep_history=False)
    if trace_heap:
        tracemalloc.start()
    seconds = 0.0
    detections = max_live = 0
    warm_rss = 0.0
    warm_blocks = 0
    warm_heap: float | None = None
    try:
        for frame, dets in enumerate(synthetic_stream(num_frames, config), start=1):
            start = time.perf_counter()
            tracker.update(dets)
            seconds += time.perf_counter() - start
            detections += len(dets)
            max_live = max(max_live, tracker.num_tracks)
            if frame == warmup_frames:
                warm_rss = _peak_rss_mib()
                gc.collect()
                warm_blocks = sys.getallocatedblocks()
                if trace_heap:
                    warm_heap = tracemalloc.get_traced_memory()[0] / _MIB
                    tracemalloc.reset_peak()
        gc.collect()
        final_blocks = sys.getallocatedblocks()
        final_heap = heap_peak = None
        if trace_heap:
            current, peak = tracemalloc.get_traced_memory()
            final_heap, heap_peak = current / _MIB, peak / _MIB
    finally:
        if trace_heap:
            tracemalloc.stop()
    return MemoryRun(
        frames=num_frames,
        detections=detections,
        update_seconds=seconds,
        warmup_frames=warmup_frames,
        warm_rss_mib=warm_rss,
        peak_rss_mib=_peak_rss_mib(),
        warm_python_blocks=warm_blocks,
        final_python_blocks=final_blocks,
        warm_heap_mib=warm_heap,
        final_heap_mib=final_heap,
        heap_peak_mib=heap_peak,
        max_live_tracks=max_live,
        tracks_started=tracker._next_id - 1,
        history_entries=len(tracker.history),
    )


@dataclass(frozen=True)
class MemoryReport:
    """Runs of :func:`run_memory_bench`, shortest stream first.

    Attributes:
        runs: One per stream length.
        stream: The stream's knobs.
        environment: Versions, machine and git commit.
    """

    runs: tuple[MemoryRun, ...]
    stream: StreamConfig
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def peak_rss_ratio(self) -> float:
        """Peak RSS of the longest run over that of the shortest (1.0: flat)."""
        return self.runs[-1].peak_rss_mib / self.runs[0].peak_rss_mib

    @property
    def python_blocks_ratio(self) -> float:
        """Live Python blocks at the end of the longest run over the shortest (1.0: flat)."""
        return self.runs[-1].final_python_blocks / max(1, self.runs[0].final_python_blocks)

    @property
    def heap_ratio(self) -> float | None:
        """Python heap alive at the end of the longest run over the shortest (None: untraced)."""
        first, last = self.runs[0].final_heap_mib, self.runs[-1].final_heap_mib
        if first is None or last is None or first <= 0:
            return None
        return last / first

    def format_table(self) -> str:
        """Plain-text table, one row per stream length, and the longest/shortest ratios."""
        traced = any(run.final_heap_mib is not None for run in self.runs)
        headers = ["frames", "peak RSS MiB", "after warm-up", "Python blocks"]
        if traced:
            headers += ["heap end MiB", "heap peak MiB"]
        headers += ["live tracks max", "tracks started", "frames/s"]

        def mib(value: float | None, decimals: int = 1) -> str:
            return "-" if value is None else f"{value:.{decimals}f}"

        body = []
        for run in self.runs:
            row = [
                f"{run.frames}",
                mib(run.peak_rss_mib),
                mib(run.warm_rss_mib),
                f"{run.final_python_blocks}",
            ]
            if traced:
                row += [mib(run.final_heap_mib, 3), mib(run.heap_peak_mib, 3)]
            row += [f"{run.max_live_tracks}", f"{run.tracks_started}", f"{run.frames_per_s:.0f}"]
            body.append(row)
        widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]
        lines = [
            "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
            for row in [headers, *body]
        ]
        if len(self.runs) > 1:
            first, last = self.runs[0].frames, self.runs[-1].frames
            ratio = (
                f"{last} vs {first} frames: peak RSS {self.peak_rss_ratio:.3f}x, "
                f"Python blocks at the end {self.python_blocks_ratio:.3f}x"
            )
            if self.heap_ratio is not None:
                ratio += f", Python heap at the end {self.heap_ratio:.3f}x"
            lines.append(ratio)
        if traced:
            lines.append("(heap traced with tracemalloc: frames/s is several times lower)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: stream knobs, runs, ratios and environment."""
        runs = []
        for run in self.runs:
            fps = run.frames_per_s
            runs.append(
                {**dataclasses.asdict(run), "frames_per_s": fps if math.isfinite(fps) else None}
            )
        return {
            "benchmark": "memory",
            "stream": dataclasses.asdict(self.stream),
            "runs": runs,
            "peak_rss_ratio": self.peak_rss_ratio,
            "python_blocks_ratio": self.python_blocks_ratio,
            "heap_ratio": self.heap_ratio,
            "environment": self.environment,
        }


def _child_command(
    num_frames: int, config: StreamConfig, model: str | None, trace_heap: bool
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "emtrack.bench.memory",
        str(num_frames),
        "--stream",
        json.dumps(dataclasses.asdict(config)),
    ]
    if model is not None:
        command += ["--model", model]
    if trace_heap:
        command.append("--trace-heap")
    return command


def _run_in_fresh_process(
    num_frames: int, config: StreamConfig, model: str | None, trace_heap: bool
) -> MemoryRun:
    completed = subprocess.run(
        _child_command(num_frames, config, model, trace_heap),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        raise EmtrackInputError(
            f"memory run of {num_frames} frames failed: {lines[-1] if lines else 'no output'}"
        )
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    return MemoryRun(**{**data, "fresh_process": True})


def run_memory_bench(
    frames: Sequence[int] = (10_000, 100_000),
    config: StreamConfig | None = None,
    model: str | os.PathLike[str] | None = None,
    trace_heap: bool = False,
    fresh_process: bool = True,
) -> MemoryReport:
    """Measure :func:`measure_stream` for each stream length.

    Args:
        frames: Stream lengths (each >= 1); sorted ascending in the report.
        config: Stream knobs.
        model: Tracker weights (None: the shipped model).
        trace_heap: Also trace Python allocations (slower).
        fresh_process: Run each length in a new Python process (independent peaks); False
            runs them here, one after the other (for tests: peaks then only grow).

    Returns:
        The report (its ``environment`` records versions, machine and commit).

    Raises:
        EmtrackInputError: No lengths, a length < 1, or a run that failed.
    """
    lengths = sorted(int(n) for n in frames)
    if not lengths or lengths[0] < 1:
        raise EmtrackInputError(f"frames must be one or more numbers >= 1, got {list(frames)}")
    config = config or StreamConfig()
    model_path = None if model is None else str(model)
    if model_path is not None:
        from emtrack.track import load_model

        load_model(model_path)  # a bad model fails here, with its own message
    runs = []
    for n in lengths:
        if fresh_process:
            runs.append(_run_in_fresh_process(n, config, model_path, trace_heap))
        else:
            runs.append(measure_stream(n, config, model_path, trace_heap))
    # Imported here: the fresh processes measured import this module, and nothing more.
    from emtrack.bench.environment import environment_info

    return MemoryReport(tuple(runs), config, environment_info())


def _child_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of one fresh-process run: print the :class:`MemoryRun` as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m emtrack.bench.memory")
    parser.add_argument("frames", type=int)
    parser.add_argument("--stream", default="{}", help="StreamConfig fields as JSON")
    parser.add_argument("--model")
    parser.add_argument("--trace-heap", action="store_true")
    args = parser.parse_args(argv)
    config = StreamConfig(**json.loads(args.stream))
    run = measure_stream(args.frames, config, args.model, trace_heap=args.trace_heap)
    print(json.dumps(dataclasses.asdict(run)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main())

"""Speed against crowd density: frames/s of emtrack and the peers at D detections per frame.

For each density ``D`` a synthetic pedestrian scene (:func:`emtrack.synth.generate_scene`) is
generated with about ``D`` detections per frame: a 1920x1080, 30 fps wide view
(``height_at_bottom_frac`` 0.1, so people are about 20 to 110 px tall and hundreds fit
in the image) with the default detector model; ``mean_objects`` is calibrated on pilot
scenes so that the detections per frame come out near ``D`` (occlusion hides more people as
the crowd grows). Identities are removed before any tracker sees the stream.

Each tracker then runs on the same stream through the same per-frame timing as
``emtrack bench track`` (:func:`emtrack.bench.track_bench.run_tracker`: wall time summed over
the ``update`` calls only, after an untimed :func:`~emtrack.bench.track_bench.warm_up`), and
frames/s and the ratio to ByteTrack are reported per density. The peers need the optional
``trackers`` package (``pip install emtrack[bench]``); without it only emtrack runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emtrack.bench.environment import environment_info
from emtrack.bench.track_bench import REFERENCE_TRACKER, WARM_UP_FRAMES, run_tracker, warm_up
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo

__all__ = [
    "DEFAULT_DENSITIES",
    "SPEED_TRACKERS",
    "SpeedReport",
    "SpeedRow",
    "density_stream",
    "run_speed_bench",
]

logger = logging.getLogger(__name__)

DEFAULT_DENSITIES: tuple[int, ...] = (10, 30, 100, 300)
"""Detections per frame benchmarked by default."""

SPEED_TRACKERS: tuple[str, ...] = ("emtrack", REFERENCE_TRACKER, "sort")
"""The trackers timed, in table order (emtrack is the online tracker)."""

_HEIGHT_AT_BOTTOM_FRAC = 0.1
_PILOT_FRAMES = 100
_CALIBRATION_ROUNDS = 3


@dataclass(frozen=True)
class SpeedRow:
    """All trackers on one density.

    Attributes:
        target: The detections per frame asked for.
        dets_per_frame: The stream's actual mean detections per frame.
        frames: Frames tracked.
        mean_objects: The scene's ``mean_objects`` (people present) that gave this density.
        update_seconds: Per tracker: wall time summed over its per-frame update calls (the
            fastest of the repeats).
    """

    target: int
    dets_per_frame: float
    frames: int
    mean_objects: float
    update_seconds: dict[str, float]

    def fps(self, tracker: str) -> float | None:
        """Frames per second of update time (None when the tracker did not run)."""
        seconds = self.update_seconds.get(tracker)
        if seconds is None:
            return None
        return self.frames / seconds if seconds > 0 else math.inf

    @property
    def ratio(self) -> float | None:
        """emtrack's frames/s over ByteTrack's (None without ByteTrack)."""
        emtrack, reference = self.fps("emtrack"), self.fps(REFERENCE_TRACKER)
        if emtrack is None or reference is None or not 0 < reference < math.inf:
            return None
        return emtrack / reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_dets_per_frame": self.target,
            "dets_per_frame": self.dets_per_frame,
            "frames": self.frames,
            "mean_objects": self.mean_objects,
            "update_seconds": dict(self.update_seconds),
            "fps": {name: _finite_or_none(self.fps(name)) for name in self.update_seconds},
            f"emtrack_vs_{REFERENCE_TRACKER}": _finite_or_none(self.ratio),
        }


@dataclass(frozen=True)
class SpeedReport:
    """One run of :func:`run_speed_bench`.

    Attributes:
        rows: One per density, in the order asked for.
        trackers: The trackers that ran.
        skipped: Trackers not run (the peers without the ``trackers`` package).
        settings: The run's settings.
        environment: Versions, machine and git commit.
    """

    rows: tuple[SpeedRow, ...]
    trackers: tuple[str, ...]
    skipped: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def format_table(self) -> str:
        """Frames/s per tracker and the emtrack/ByteTrack ratio, one line per density."""
        headers = ["dets/frame", "frames", *self.trackers]
        if "emtrack" in self.trackers and REFERENCE_TRACKER in self.trackers:
            headers.append(f"emtrack/{REFERENCE_TRACKER}")
        body = []
        for row in self.rows:
            line = [f"{row.dets_per_frame:.1f}", str(row.frames)]
            line += [_format_fps(row.fps(name)) for name in self.trackers]
            if len(headers) > len(line):
                line.append("-" if row.ratio is None else f"{row.ratio:.2f}x")
            body.append(line)
        widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]
        lines = [
            "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
            for line in [headers, *body]
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no NaN or infinity: those become ``null``)."""
        return {
            "benchmark": "emtrack bench speed",
            "settings": self.settings,
            "trackers": list(self.trackers),
            "skipped": list(self.skipped),
            "rows": [row.to_dict() for row in self.rows],
            **self.environment,
        }


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _format_fps(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if math.isfinite(value) else "inf"


def _scene_config(mean_objects: float, num_frames: int) -> Any:
    """The benchmark's :class:`~emtrack.synth.SceneConfig` (defaults but the wide view)."""
    from emtrack.synth import SceneConfig

    return SceneConfig(
        num_frames=num_frames,
        mean_objects=mean_objects,
        height_at_bottom_frac=_HEIGHT_AT_BOTTOM_FRAC,
    )


def _scene(mean_objects: float, num_frames: int, seed: int) -> tuple[MotTable, SeqInfo]:
    """The benchmark scene's detections (ids removed) and seqinfo."""
    from emtrack.synth import generate_scene

    config = _scene_config(mean_objects, num_frames)
    scene = generate_scene(config, np.random.default_rng(seed))
    dets = scene.detections
    return MotTable.from_arrays(dets.frames, dets.boxes_xyxy, dets.scores), scene.seqinfo


def density_stream(target: int, num_frames: int, seed: int = 0) -> tuple[MotTable, SeqInfo, float]:
    """A synthetic stream with about ``target`` detections per frame.

    ``mean_objects`` starts at ``target`` and is rescaled by target / measured detections per
    frame on pilot scenes (the stream's first 100 frames, 3 rounds); the stream is then
    generated with the last value. The same ``(target, num_frames, seed)`` always gives the
    same stream.

    Args:
        target: Detections per frame wanted (>= 1).
        num_frames: Frames of the stream (>= 1).
        seed: Seed of the scene generator.

    Returns:
        ``(detections, seqinfo, mean_objects)``; detections carry no ids.
    """
    if target < 1 or num_frames < 1:
        raise EmtrackInputError(
            f"detections per frame and frames must be >= 1, got {target} and {num_frames}"
        )
    mean_objects = float(target)
    pilot_frames = min(num_frames, _PILOT_FRAMES)
    for _ in range(_CALIBRATION_ROUNDS):
        pilot, _info = _scene(mean_objects, pilot_frames, seed)
        per_frame = len(pilot) / pilot_frames
        if per_frame <= 0:
            break
        mean_objects *= target / per_frame
    detections, seqinfo = _scene(mean_objects, num_frames, seed)
    return detections, seqinfo, mean_objects


def run_speed_bench(
    densities: Sequence[int] = DEFAULT_DENSITIES,
    num_frames: int = 200,
    *,
    model: Any = None,
    tracker_config: Any = None,
    seed: int = 0,
    repeats: int = 1,
) -> SpeedReport:
    """Time emtrack, ByteTrack and SORT on synthetic streams of each density.

    Args:
        densities: Detections per frame wanted, one stream each (each >= 1).
        num_frames: Frames per stream (>= 1).
        model: emtrack weights (``.npz``/``.pt`` path or loaded), None for the shipped model.
        tracker_config: emtrack's :class:`~emtrack.track.TrackerConfig` (None: defaults).
        seed: Seed of the scene generator.
        repeats: Track each stream this many times per tracker; the fastest time counts.

    Returns:
        The report (frames/s per tracker and density, and what it ran on).

    Raises:
        EmtrackInputError: No densities, a density or ``num_frames`` below 1, or
            ``repeats`` below 1.
    """
    densities = tuple(int(d) for d in densities)
    if not densities:
        raise EmtrackInputError("no densities to benchmark")
    if min(densities) < 1 or num_frames < 1 or repeats < 1:
        raise EmtrackInputError(
            f"densities, frames and repeats must be >= 1, got {densities}, {num_frames}, {repeats}"
        )
    have_peers = importlib.util.find_spec("trackers") is not None
    trackers = tuple(name for name in SPEED_TRACKERS if name == "emtrack" or have_peers)
    skipped = tuple(name for name in SPEED_TRACKERS if name not in trackers)
    if skipped:
        logger.warning(
            "the 'trackers' package is not installed (pip install emtrack[bench]): skipping %s",
            ", ".join(skipped),
        )
    from emtrack.track import load_model

    weights = load_model(model)
    rows = []
    for target in densities:
        detections, seqinfo, mean_objects = density_stream(target, num_frames, seed)
        seconds: dict[str, float] = {}
        for name in trackers:
            warm_up(name, detections, seqinfo, weights, tracker_config)
            seconds[name] = min(
                run_tracker(name, detections, seqinfo, weights, tracker_config)[1]
                for _ in range(repeats)
            )
        row = SpeedRow(target, len(detections) / num_frames, num_frames, mean_objects, seconds)
        logger.info(
            "%.1f detections/frame: %s",
            row.dets_per_frame,
            ", ".join(f"{name} {_format_fps(row.fps(name))} frames/s" for name in trackers),
        )
        rows.append(row)
    settings = {
        "densities": list(densities),
        "frames": num_frames,
        "seed": seed,
        "repeats": repeats,
        "warm_up_frames": WARM_UP_FRAMES,
        "model": None if model is None else str(model),
        "tracker_config": None if tracker_config is None else dataclasses.asdict(tracker_config),
        # mean_objects is calibrated per density (see the rows).
        "scene": {**dataclasses.asdict(_scene_config(0.0, num_frames)), "mean_objects": None},
        "calibration": f"mean_objects rescaled on {_CALIBRATION_ROUNDS} pilot scenes of "
        f"{_PILOT_FRAMES} frames",
    }
    return SpeedReport(tuple(rows), trackers, skipped, settings, environment_info())

"""Tracking benchmark: emtrack (online and offline) and the peer trackers on the same detections.

For every ROOT (a folder of sequences) each tracker reads the same detection tables, its boxes
are written as MOTChallenge result files, and TrackEval scores them against the ROOT's ground
truth, all sequences of the ROOT combined. Speed is frames divided by the wall time spent in the
trackers' per-frame ``update`` calls (no file reading, no table building), so it compares the
trackers, not the I/O.

Two ROOT layouts:

* ``<seq>/det/<det_name>``, ``<seq>/gt/gt.txt``, ``<seq>/seqinfo.ini`` (MOT15 with public
  detections): every tracker reads ``det/<det_name>``.
* ``<seq>/gt/gt.txt``, ``<seq>/seqinfo.ini`` only (the MOT17/MOT20 ground truth we have): a
  crowded, noisy detection stream is derived from the gt pedestrians with
  :func:`emtrack.synth.detections_from_gt` and the :class:`~emtrack.synth.DetectionNoiseConfig`
  defaults, seeded per sequence by ``numpy.random.default_rng([seed, crc32(name)])``, ids set to
  -1, and written as ``det.txt`` into the work folder; scores are against the original gt (with
  TrackEval's MOT17/MOT20 preprocessing).

``frame_stride=S`` (``--frame-stride``) keeps every S-th frame of every sequence (frames
1, 1 + S, 1 + 2S, … renumbered 1, 2, 3, …; frame rate divided by S): the same scenes as a
camera filming at a lower frame rate, with larger motion between frames. Detections (derived
ones at the full rate first, with the same seed) and ground truth are thinned alike and written
into the work folder; the gt lines are copied unchanged apart from the frame number.

The peers come from the optional ``trackers`` package (``pip install emtrack[bench]``; SORT,
ByteTrack, OC-SORT, BoT-SORT, C-BIoU) and, where it is importable, from the optional ``boxmot``
package (AGPL-3.0, installed for the benchmark only, never a dependency: its motion-only
BoostTrack, Hybrid-SORT, OC-SORT, ByteTrack and BoT-SORT, :mod:`emtrack.bench.boxmot_peers`).
Peers whose package is missing are skipped and the report says so; the default tracker list
(:func:`default_trackers`) holds the ``boxmot`` peers only when ``boxmot`` is importable.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from emtrack.bench.boxmot_peers import BOXMOT_PEERS, boxmot_unavailable
from emtrack.bench.environment import environment_info
from emtrack.bench.peers import PEERS, run_peer
from emtrack.bench.roots import BenchRoot, prepare_root
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, read_mot, write_mot

__all__ = [
    "REFERENCE_TRACKER",
    "TRACKERS",
    "WARM_UP_FRAMES",
    "BenchReport",
    "BenchRow",
    "default_trackers",
    "run_track_bench",
    "run_tracker",
    "warm_up",
]

logger = logging.getLogger(__name__)

#: emtrack's rows: (offline pass, association) of each.
_EMTRACK_VARIANTS: dict[str, tuple[bool, str]] = {
    "emtrack": (False, "learned"),
    "emtrack-offline": (True, "learned"),
    "emtrack-iou": (False, "iou"),
    "emtrack-iou-offline": (True, "iou"),
}
TRACKERS: tuple[str, ...] = (*_EMTRACK_VARIANTS, *PEERS, *BOXMOT_PEERS)
"""Tracker names accepted by :func:`run_track_bench`, in the default order."""

REFERENCE_TRACKER = "bytetrack"
"""Speeds are also given as a ratio to this tracker's frames/s."""


@dataclass(frozen=True)
class BenchRow:
    """One tracker on one ROOT.

    Attributes:
        root: The ROOT folder (as given).
        tracker: Tracker name, one of :data:`TRACKERS`.
        scores: TrackEval's combined scores over the ROOT's sequences
            (:class:`~emtrack.eval.TrackingScores`).
        per_sequence: Scores of each sequence.
        num_frames: Frames tracked (sum of the sequence lengths).
        update_seconds: Wall time summed over the per-frame update calls.
        call_seconds: Wall time of the whole tracking calls (``track_sequence`` /
            ``run_peer``): updates plus building the output table, and for
            ``emtrack-offline`` the offline pass, which ``update_seconds`` leaves out.
        fps_vs_reference: ``fps`` divided by :data:`REFERENCE_TRACKER`'s on the same ROOT;
            ``None`` when the reference did not run.
    """

    root: str
    tracker: str
    scores: Any
    per_sequence: dict[str, Any]
    num_frames: int
    update_seconds: float
    call_seconds: float
    fps_vs_reference: float | None = None

    @property
    def fps(self) -> float:
        """Frames per second of update time (``inf`` when no time was measured)."""
        return self.num_frames / self.update_seconds if self.update_seconds > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        s = self.scores
        return {
            "root": self.root,
            "tracker": self.tracker,
            "hota": s.hota,
            "deta": s.deta,
            "assa": s.assa,
            "mota": s.mota,
            "idf1": s.idf1,
            "idsw": s.idsw,
            "num_frames": self.num_frames,
            "update_seconds": self.update_seconds,
            "call_seconds": self.call_seconds,
            "fps": _finite_or_none(self.fps),
            f"fps_vs_{REFERENCE_TRACKER}": _finite_or_none(self.fps_vs_reference),
            "scores": dataclasses.asdict(s),
            "per_sequence": {
                name: dataclasses.asdict(scores) for name, scores in self.per_sequence.items()
            },
        }


@dataclass(frozen=True)
class BenchReport:
    """Everything one benchmark run measured, and what it ran on.

    Attributes:
        roots: The ROOTs, in the order given.
        rows: One row per (ROOT, tracker), ROOTs in order, trackers in the order asked for.
        trackers: The trackers that ran.
        skipped: Trackers asked for but not run (e.g. peers without the ``trackers`` package).
        notes: Lines for the user: skipped trackers, derived detections and their noise model.
        settings: The run's settings (trackers, det name, seed, model, tracker config).
        environment: Versions, machine and git commit (see
            :func:`~emtrack.bench.environment.environment_info`).
    """

    roots: tuple[BenchRoot, ...]
    rows: tuple[BenchRow, ...]
    trackers: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def format_table(self) -> str:
        """One plain-text table per ROOT (HOTA, MOTA, IDF1, IDSW, frames/s, speed ratio)."""
        blocks = []
        for root in self.roots:
            rows = [row for row in self.rows if row.root == str(root.path)]
            title = (
                f"{root.path}: {len(root.sequences)} sequences, {root.num_frames} frames; "
                f"detections: {root.detections}"
            )
            block = title + "\n" + _format_rows(rows)
            whole = [
                f"{row.tracker} {row.num_frames / row.call_seconds:.0f}"
                for row in rows
                if row.tracker in ("emtrack", "emtrack-offline") and row.call_seconds > 0
            ]
            if whole:
                block += (
                    "\n(emtrack: frames/s counts the per-frame updates only; with the fit to "
                    "the input before them, and the offline pass after them: "
                    + ", ".join(whole)
                    + " frames/s)"
                )
            block += _learned_minus_iou(rows)
            blocks.append(block)
        return "\n\n".join(blocks)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no NaN or infinity: those become ``null``)."""
        return {
            "benchmark": "emtrack bench track",
            "settings": self.settings,
            "roots": [
                {
                    "path": str(root.path),
                    "layout": root.layout,
                    "detections": root.detections,
                    "noise": root.noise,
                    "sequences": [sequence.name for sequence in root.sequences],
                    "num_frames": root.num_frames,
                }
                for root in self.roots
            ],
            "trackers": list(self.trackers),
            "skipped": list(self.skipped),
            "notes": list(self.notes),
            "rows": [row.to_dict() for row in self.rows],
            **self.environment,
        }


def _learned_minus_iou(rows: Sequence[BenchRow]) -> str:
    """A line with the learned association's lead over IoU (HOTA, IDF1), where both ran."""
    by_name = {row.tracker: row.scores for row in rows}
    parts = []
    for learned, iou, mode in (
        ("emtrack", "emtrack-iou", "online"),
        ("emtrack-offline", "emtrack-iou-offline", "offline"),
    ):
        if learned in by_name and iou in by_name:
            a, b = by_name[learned], by_name[iou]
            parts.append(f"{mode} HOTA {a.hota - b.hota:+.2f}, IDF1 {a.idf1 - b.idf1:+.2f}")
    return "\n(learned minus IoU association: " + "; ".join(parts) + ")" if parts else ""


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _format_rows(rows: Sequence[BenchRow]) -> str:
    headers = ["tracker", "HOTA", "MOTA", "IDF1", "IDSW", "frames/s", f"vs {REFERENCE_TRACKER}"]
    body = [
        [
            row.tracker,
            f"{row.scores.hota:.2f}",
            f"{row.scores.mota:.2f}",
            f"{row.scores.idf1:.2f}",
            f"{row.scores.idsw:d}",
            f"{row.fps:.0f}" if math.isfinite(row.fps) else "inf",
            "-" if row.fps_vs_reference is None else f"{row.fps_vs_reference:.2f}x",
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]
    lines = [
        "  ".join(
            [
                line[0].ljust(widths[0]),
                *(cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)),
            ]
        )
        for line in [headers, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def default_trackers() -> tuple[str, ...]:
    """The trackers :func:`run_track_bench` runs when none are named: :data:`TRACKERS`,
    without the ``boxmot`` peers when ``boxmot`` is not importable."""
    if boxmot_unavailable() is None:
        return TRACKERS
    return tuple(name for name in TRACKERS if name not in BOXMOT_PEERS)


def _boxmot_note(reason: str, skipped: Sequence[str]) -> str:
    what = f"peers skipped ({', '.join(skipped)})" if skipped else "boxmot peers not run"
    return (
        f"{what}: the optional 'boxmot' package is not importable ({reason}); it is a "
        "benchmark peer only (AGPL-3.0), installed as the README's tracking benchmark says"
    )


def _outside_unit(scores: np.ndarray) -> bool:
    return bool(len(scores)) and bool(np.any((scores < 0) | (scores > 1)))


def _check_trackers(trackers: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(trackers))  # drop repeats, keep order
    unknown = [name for name in names if name not in TRACKERS]
    if unknown:
        raise EmtrackInputError(
            f"unknown tracker(s) {', '.join(unknown)}; expected some of {', '.join(TRACKERS)}"
        )
    if not names:
        raise EmtrackInputError("no trackers to run")
    return names


def run_track_bench(
    roots: Sequence[str | os.PathLike[str]],
    trackers: Sequence[str] | None = None,
    *,
    det_name: str = "det.txt",
    model: Any = None,
    tracker_config: Any = None,
    seed: int = 0,
    noise: Any = None,
    results_dir: str | os.PathLike[str] | None = None,
    repeats: int = 1,
    progress: bool | None = None,
    frame_stride: int = 1,
) -> BenchReport:
    """Run and score every tracker on every ROOT.

    Args:
        roots: Folders of sequences (see the module docstring for the two layouts).
        trackers: Names from :data:`TRACKERS`; ``emtrack`` is the online tracker,
            ``emtrack-offline`` the same followed by the offline pass, ``emtrack-iou`` and
            ``emtrack-iou-offline`` the same two with ``association="iou"`` (the tracker
            config's other settings unchanged); ``None``: :func:`default_trackers`.
        det_name: Detection file name inside ``<seq>/det/``.
        model: emtrack weights (``.npz``/``.pt`` path or loaded), ``None`` for the shipped model.
        tracker_config: emtrack's :class:`~emtrack.track.TrackerConfig` (``None``: defaults).
        seed: Seed of the detections derived for gt-only ROOTs.
        noise: :class:`~emtrack.synth.DetectionNoiseConfig` for gt-only ROOTs (``None``:
            defaults).
        results_dir: Keep derived detections and result files here (``<i>-<root name>/det``
            and ``.../<tracker>/<seq>.txt``); default: a temporary folder, removed at the end.
        repeats: Track each sequence this many times and keep the fastest time (the results
            of the first run are scored); more repeats make the speed less noisy.
        progress: A progress bar on stderr over (ROOT, tracker) runs: ``None`` (default)
            shows it only when stderr is a terminal, ``False`` never.
        frame_stride: Keep every ``frame_stride``-th frame of every sequence (1: all); see
            the module docstring.

    Returns:
        The report (rows, notes, settings, environment).

    Raises:
        EmtrackInputError: Unknown tracker, a ROOT without usable sequences, a file that does
            not parse, or anything TrackEval rejects.
    """
    from emtrack.eval import EvalSequence, evaluate
    from emtrack.synth import DetectionNoiseConfig

    by_default = trackers is None
    names = _check_trackers(default_trackers() if trackers is None else trackers)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise EmtrackInputError(f"repeats must be an integer >= 1, got {repeats!r}")
    if isinstance(frame_stride, bool) or not isinstance(frame_stride, int) or frame_stride < 1:
        raise EmtrackInputError(f"frame_stride must be an integer >= 1, got {frame_stride!r}")
    if noise is None:
        noise = DetectionNoiseConfig()
    notes: list[str] = []
    skipped: tuple[str, ...] = ()
    if importlib.util.find_spec("trackers") is None:
        skipped = tuple(name for name in names if name in PEERS)
        names = tuple(name for name in names if name not in PEERS)
        if skipped:
            notes.append(
                f"peers skipped ({', '.join(skipped)}): the 'trackers' package is not installed "
                "(pip install 'emtrack[bench]')"
            )
    if by_default or any(name in BOXMOT_PEERS for name in names):
        reason = boxmot_unavailable()
        if reason is not None:
            missing = tuple(name for name in names if name in BOXMOT_PEERS)
            skipped += missing
            names = tuple(name for name in names if name not in BOXMOT_PEERS)
            notes.append(_boxmot_note(reason, missing))
    if not names:
        raise EmtrackInputError("none of the requested trackers can run")
    if REFERENCE_TRACKER not in names:
        notes.append(f"{REFERENCE_TRACKER} did not run, so there are no speed ratios")

    with ExitStack() as stack:
        if results_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emtrack-bench-")))
        else:
            work = Path(results_dir)
            work.mkdir(parents=True, exist_ok=True)
        # Every input is found (and derived) before any tracker runs.
        labels = [f"{i}-{Path(root).resolve().name or 'root'}" for i, root in enumerate(roots)]
        bench_roots = tuple(
            prepare_root(Path(root), det_name, seed, noise, work / label / "det", frame_stride)
            for root, label in zip(roots, labels, strict=True)
        )
        if any(root.layout == "gt-only" for root in bench_roots):
            notes.append(
                "ROOTs without det/ files: detections derived from the gt pedestrians "
                f"(load_gt_objects) with {noise!r}, rng default_rng([{seed}, crc32(sequence "
                "name)]), ids removed; scored against the original gt"
            )

        weights = None
        if any(name in _EMTRACK_VARIANTS for name in names):
            from emtrack.track import load_model

            weights = load_model(model)

        rows: list[BenchRow] = []
        # One step per (ROOT, tracker); None shows the bar only when stderr is a terminal.
        bar = tqdm(
            total=len(bench_roots) * len(names),
            desc="bench track",
            unit="run",
            disable=True if progress is False else None,
        )
        for root, label in zip(bench_roots, labels, strict=True):
            detections = {seq.name: read_mot(seq.det_path) for seq in root.sequences}
            boxmot_names = [name for name in names if name in BOXMOT_PEERS]
            if boxmot_names and any(_outside_unit(table.scores) for table in detections.values()):
                notes.append(
                    f"{root.path}: detection scores outside [0, 1] are clipped to [0, 1] for "
                    f"the boxmot peers (boxmot refuses them); the other trackers get them as is"
                )
            root_rows = []
            for name in names:
                # Untimed warm-up on the start of the first sequence (lazy imports, caches),
                # so the first tracker to run is not penalised.
                first = root.sequences[0]
                warm_up(name, detections[first.name], first.seqinfo, weights, tracker_config)
                seconds = call_seconds = 0.0
                frames = 0
                eval_sequences = []
                for seq in root.sequences:
                    best_update = best_call = math.inf
                    for repeat in range(repeats):
                        start = time.perf_counter()
                        run_result, update_seconds, num_frames = run_tracker(
                            name, detections[seq.name], seq.seqinfo, weights, tracker_config
                        )
                        best_call = min(best_call, time.perf_counter() - start)
                        best_update = min(best_update, update_seconds)
                        if repeat == 0:
                            result = run_result
                    call_seconds += best_call
                    seconds += best_update
                    frames += num_frames
                    result_path = work / label / name / f"{seq.name}.txt"
                    write_mot(result_path, result)
                    eval_sequences.append(
                        EvalSequence(seq.name, seq.gt_path, result_path, seq.seqinfo)
                    )
                report = evaluate(eval_sequences)
                logger.info(
                    "%s: %s HOTA %.2f, %.0f frames/s",
                    root.path,
                    name,
                    report.combined.hota,
                    frames / seconds if seconds > 0 else math.inf,
                )
                bar.update()
                root_rows.append(
                    BenchRow(
                        root=str(root.path),
                        tracker=name,
                        scores=report.combined,
                        per_sequence=report.per_sequence,
                        num_frames=frames,
                        update_seconds=seconds,
                        call_seconds=call_seconds,
                    )
                )
            rows.extend(_with_speed_ratios(root_rows))
        bar.close()

    settings = {
        "roots": [str(root) for root in roots],
        "trackers": list(names),
        "det_name": det_name,
        "seed": seed,
        "model": None if model is None else str(model),
        "tracker_config": None if tracker_config is None else dataclasses.asdict(tracker_config),
        "noise": dataclasses.asdict(noise),
        "results_dir": None if results_dir is None else str(results_dir),
        "repeats": repeats,
        "frame_stride": frame_stride,
        "warm_up_frames": WARM_UP_FRAMES,
    }
    return BenchReport(
        roots=bench_roots,
        rows=tuple(rows),
        trackers=names,
        skipped=skipped,
        notes=tuple(notes),
        settings=settings,
        environment=environment_info(),
    )


def run_tracker(
    name: str, detections: MotTable, seqinfo: SeqInfo, weights: Any, tracker_config: Any
) -> tuple[MotTable, float, int]:
    """``(result, update_seconds, num_frames)`` of one tracker on one sequence.

    Args:
        name: ``emtrack``, ``emtrack-offline``, ``emtrack-iou``, ``emtrack-iou-offline`` or a
            peer (:data:`~emtrack.bench.peers.PEERS`,
            :data:`~emtrack.bench.boxmot_peers.BOXMOT_PEERS`).
        detections: The detection table (ids are ignored).
        seqinfo: Frame rate and length.
        weights: emtrack's loaded weights (ignored by the peers).
        tracker_config: emtrack's :class:`~emtrack.track.TrackerConfig` or None.

    Returns:
        The reported boxes, the wall time summed over the per-frame ``update`` calls only,
        and the number of frames.
    """
    if name in _EMTRACK_VARIANTS:
        from emtrack.track import TrackerConfig, track_sequence

        offline, association = _EMTRACK_VARIANTS[name]
        config = tracker_config or TrackerConfig()
        if config.association != association:
            config = dataclasses.replace(config, association=association)
        run = track_sequence(detections, seqinfo, model=weights, config=config, offline=offline)
        return run.result, run.update_seconds, run.num_frames
    peer = run_peer(name, detections, seqinfo)
    return peer.result, peer.update_seconds, peer.num_frames


WARM_UP_FRAMES = 20
"""Frames of the untimed run before a tracker is timed (:func:`warm_up`)."""


def warm_up(
    name: str, detections: MotTable, seqinfo: SeqInfo, weights: Any, tracker_config: Any
) -> None:
    """Run a tracker, untimed, on the first :data:`WARM_UP_FRAMES` frames of a sequence.

    Lazy imports, caches and one-time set-up (e.g. emtrack's far-pair bound) then do not count
    against the first tracker timed.
    """
    num_frames = min(WARM_UP_FRAMES, int(seqinfo.seq_length))
    head = detections.select(detections.frames <= num_frames)
    run_tracker(
        name, head, dataclasses.replace(seqinfo, seq_length=num_frames), weights, tracker_config
    )


def _with_speed_ratios(rows: list[BenchRow]) -> list[BenchRow]:
    reference = next((row for row in rows if row.tracker == REFERENCE_TRACKER), None)
    if reference is None or not (0 < reference.fps < math.inf):
        return rows
    return [
        dataclasses.replace(
            row, fps_vs_reference=row.fps / reference.fps if math.isfinite(row.fps) else None
        )
        for row in rows
    ]

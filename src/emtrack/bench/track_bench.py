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
import platform
import subprocess
import tempfile
import time
import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from emtrack.bench.boxmot_peers import BOXMOT_PEERS, boxmot_unavailable
from emtrack.bench.peers import PEERS, run_peer
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, find_sequences, read_mot, read_seqinfo, write_mot
from emtrack.io.atomic import atomic_write
from emtrack.io.atomic import write_json as io_write_json

__all__ = [
    "REFERENCE_TRACKER",
    "TRACKERS",
    "WARM_UP_FRAMES",
    "BenchReport",
    "BenchRoot",
    "BenchRow",
    "BenchSequence",
    "default_trackers",
    "environment_info",
    "run_track_bench",
    "run_tracker",
    "warm_up",
    "write_json",
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

_VERSIONED_PACKAGES = (
    "emtrack",
    "numpy",
    "scipy",
    "torch",
    "trackers",
    "trackeval",
    "supervision",
    "boxmot",
    "lapx",
)
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class BenchSequence:
    """One sequence of a ROOT, as the trackers see it.

    Attributes:
        name: Sequence name (folder name).
        det_path: The detection file every tracker reads.
        gt_path: The ground truth it is scored against.
        seqinfo: Frame rate and length.
    """

    name: str
    det_path: Path
    gt_path: Path
    seqinfo: SeqInfo


@dataclass(frozen=True)
class BenchRoot:
    """A ROOT folder and where its detections come from.

    Attributes:
        path: The folder as given.
        layout: ``"det"`` (detection files in the folder) or ``"gt-only"`` (detections
            derived from the ground truth).
        detections: One line saying where the detections come from (and the noise model).
        sequences: Its sequences, sorted by name.
        noise: The noise model's fields for a gt-only ROOT, else ``None``.
    """

    path: Path
    layout: str
    detections: str
    sequences: tuple[BenchSequence, ...]
    noise: dict[str, Any] | None = None

    @property
    def num_frames(self) -> int:
        return sum(int(sequence.seqinfo.seq_length) for sequence in self.sequences)


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
        environment: Versions, machine and git commit (see :func:`environment_info`).
    """

    roots: tuple[BenchRoot, ...]
    rows: tuple[BenchRow, ...]
    trackers: tuple[str, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def format_tables(self) -> str:
        """One plain-text table per ROOT (HOTA, MOTA, IDF1, IDSW, frames/s, speed ratio)."""
        blocks = []
        for root in self.roots:
            rows = [row for row in self.rows if row.root == str(root.path)]
            title = (
                f"{root.path}: {len(root.sequences)} sequences, {root.num_frames} frames; "
                f"detections: {root.detections}"
            )
            block = title + "\n" + _format_rows(rows)
            offline = next((row for row in rows if row.tracker == "emtrack-offline"), None)
            if offline is not None and offline.call_seconds > 0:
                block += (
                    "\n(emtrack-offline: frames/s counts the online updates only; with the "
                    f"offline pass {offline.num_frames / offline.call_seconds:.0f} frames/s)"
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
# Finding the sequences
# --------------------------------------------------------------------------------------------


def gt_sequences(root: Path) -> list[tuple[str, Path, SeqInfo]]:
    """``(name, gt path, seqinfo)`` of the sequences of a ROOT with gt files (or of one
    sequence), every ``seqinfo.ini`` read and checked before any sequence is used.

    Raises:
        EmtrackInputError: A sequence folder with ``gt/gt.txt`` but no ``seqinfo.ini``, or a
            malformed ``seqinfo.ini``.
    """
    candidates = [root] if (root / "gt" / "gt.txt").is_file() else sorted(root.iterdir())
    found = []
    for folder in candidates:
        if not (folder.is_dir() and (folder / "gt" / "gt.txt").is_file()):
            continue
        if not (folder / "seqinfo.ini").is_file():
            raise EmtrackInputError("no seqinfo.ini in this sequence folder", folder)
        found.append((folder.name, folder / "gt" / "gt.txt", read_seqinfo(folder / "seqinfo.ini")))
    return found


def _sequence_seed(seed: int, name: str) -> list[int]:
    """The per-sequence seed: independent of which other sequences or ROOTs are benchmarked."""
    return [int(seed), zlib.crc32(name.encode("utf-8"))]


def derived_detections(
    name: str, gt: MotTable, seqinfo: SeqInfo, noise: Any, seed: int
) -> MotTable:
    """The detection stream the benchmark derives from sequence ``name``'s gt (its evaluable
    pedestrians, :func:`~emtrack.synth.load_gt_objects`) with ``noise`` and ``seed``; the
    ``ids`` column still holds the gt identities (-1 for false positives): strip it before a
    tracker sees the stream."""
    from emtrack.synth import detections_from_gt, load_gt_objects

    rng = np.random.default_rng(_sequence_seed(seed, name))
    return detections_from_gt(load_gt_objects(gt), noise, rng, seqinfo)


def _prepare_root(
    root: Path, det_name: str, seed: int, noise: Any, work: Path, frame_stride: int = 1
) -> BenchRoot:
    """Find a ROOT's sequences; for a gt-only ROOT, write the derived detections under ``work``;
    with ``frame_stride > 1``, write every sequence's thinned detections and gt there."""
    bench_root = _find_root_sequences(root, det_name, seed, noise, work)
    if frame_stride == 1:
        return bench_root
    thinned = tuple(_thin_sequence(seq, frame_stride, work) for seq in bench_root.sequences)
    return dataclasses.replace(
        bench_root,
        sequences=thinned,
        detections=f"{bench_root.detections}; every {_ordinal(frame_stride)} frame "
        f"(frame rate / {frame_stride})",
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _thin_sequence(seq: BenchSequence, stride: int, work: Path) -> BenchSequence:
    """Every ``stride``-th frame of a sequence (renumbered from 1), written under ``work``."""
    detections = read_mot(seq.det_path)
    keep = (detections.frames - 1) % stride == 0
    thinned = detections.select(keep)
    thinned = dataclasses.replace(thinned, frames=(thinned.frames - 1) // stride + 1, path=None)
    det_path = work / seq.name / "det" / f"stride{stride}.txt"
    write_mot(det_path, thinned)
    gt_path = work / seq.name / "gt" / f"gt_stride{stride}.txt"
    read_mot(seq.gt_path)  # a malformed gt line fails here, with its path and line number
    lines = []
    for line in seq.gt_path.read_text(encoding="utf-8-sig").splitlines():
        frame_field, sep, rest = line.strip().partition(",")
        if not sep:
            continue  # blank line
        frame = int(float(frame_field))
        if (frame - 1) % stride == 0:
            lines.append(f"{(frame - 1) // stride + 1},{rest}\n")
    gt_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(gt_path) as out:
        out.write("".join(lines))
    info = seq.seqinfo
    seqinfo = dataclasses.replace(
        info,
        frame_rate=info.frame_rate / stride,
        seq_length=(int(info.seq_length) - 1) // stride + 1,
    )
    return BenchSequence(seq.name, det_path, gt_path, seqinfo)


def _find_root_sequences(root: Path, det_name: str, seed: int, noise: Any, work: Path) -> BenchRoot:
    """A ROOT's sequences as they are (derived detections written under ``work``)."""
    if not root.is_dir():
        what = "not found" if not root.exists() else "is not a folder"
        raise EmtrackInputError(f"benchmark ROOT {what}", root)
    has_det = (root / "det" / det_name).is_file() or any(
        (child / "det" / det_name).is_file() for child in root.iterdir() if child.is_dir()
    )
    if has_det:
        sequences = []
        for paths in find_sequences(root, det_name):
            folder = paths.det.parent.parent
            if paths.gt is None:
                raise EmtrackInputError(
                    "no gt/gt.txt in this sequence folder (needed to score)", folder
                )
            if paths.seqinfo is None:
                raise EmtrackInputError("no seqinfo.ini in this sequence folder", folder)
            sequences.append(
                BenchSequence(paths.name, paths.det, paths.gt, read_seqinfo(paths.seqinfo))
            )
        return BenchRoot(root, "det", f"det/{det_name} files", tuple(sequences))

    found = gt_sequences(root)
    if not found:
        raise EmtrackInputError(
            f"no sequences found: expected <seq>/det/{det_name} (with gt/gt.txt and seqinfo.ini) "
            "or <seq>/gt/gt.txt with seqinfo.ini",
            root,
        )
    sequences = []
    for name, gt_path, seqinfo in found:
        derived = derived_detections(name, read_mot(gt_path), seqinfo, noise, seed)
        # Identities are stripped before any tracker sees the stream.
        stream = MotTable.from_arrays(derived.frames, derived.boxes_xyxy, derived.scores)
        det_path = work / name / "det" / "det.txt"
        write_mot(det_path, stream)
        sequences.append(BenchSequence(name, det_path, gt_path, seqinfo))
    description = f"derived from gt.txt (noise model below, seed {seed}, ids removed)"
    return BenchRoot(
        root, "gt-only", description, tuple(sequences), noise=dataclasses.asdict(noise)
    )


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
            _prepare_root(Path(root), det_name, seed, noise, work / label / "det", frame_stride)
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


# --------------------------------------------------------------------------------------------
# Environment and JSON
# --------------------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _git_info() -> dict[str, Any] | None:
    """Commit of the emtrack checkout this code runs from (``None`` for an installed wheel)."""
    package_dir = Path(__file__).resolve().parent.parent
    top = _git(["rev-parse", "--show-toplevel"], package_dir)
    if top is None or not package_dir.is_relative_to(Path(top).resolve()):
        return None
    commit = _git(["rev-parse", "HEAD"], package_dir)
    if commit is None:
        return None
    status = _git(["status", "--porcelain"], package_dir)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def environment_info() -> dict[str, Any]:
    """Versions, machine and git commit, for the benchmark's JSON record."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            **{name: _package_version(name) for name in _VERSIONED_PACKAGES},
        },
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "usable_cpus": len(affinity(0)) if affinity is not None else None,
            "thread_variables": {name: os.environ.get(name) for name in _THREAD_VARIABLES},
        },
        "git": _git_info(),
    }


def write_json(report: BenchReport, path: str | os.PathLike[str]) -> None:
    """Write ``report.to_dict()`` as JSON, atomically (the parent folder is created)."""
    io_write_json(path, report.to_dict())

"""The benchmarks' inputs: a ROOT's sequences, detections derived from gt-only ROOTs, and
frame thinning.

Two ROOT layouts (see :mod:`emtrack.bench.track_bench`): ``<seq>/det/<det_name>`` with
``gt/gt.txt`` and ``seqinfo.ini`` (every tracker reads the det files), or ``gt/gt.txt`` and
``seqinfo.ini`` only: a noisy detection stream is derived from the gt pedestrians
(:func:`derived_detections`), seeded per sequence by
``numpy.random.default_rng([seed, crc32(name)])``, ids removed, and written into a work folder.
:func:`thin_sequence` keeps every S-th frame of a sequence's detections and gt alike.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, find_sequences, read_mot, read_seqinfo, write_mot
from emtrack.io.atomic import atomic_write

__all__ = [
    "BenchRoot",
    "BenchSequence",
    "derived_detections",
    "det_sequences",
    "find_root_sequences",
    "gt_sequences",
    "prepare_root",
    "thin_sequence",
]


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


def prepare_root(
    root: Path, det_name: str, seed: int, noise: Any, work: Path, frame_stride: int = 1
) -> BenchRoot:
    """Find a ROOT's sequences; for a gt-only ROOT, write the derived detections under ``work``;
    with ``frame_stride > 1``, write every sequence's thinned detections and gt there."""
    bench_root = find_root_sequences(root, det_name, seed, noise, work)
    if frame_stride == 1:
        return bench_root
    thinned = tuple(thin_sequence(seq, frame_stride, work) for seq in bench_root.sequences)
    return dataclasses.replace(
        bench_root,
        sequences=thinned,
        detections=f"{bench_root.detections}; every {_ordinal(frame_stride)} frame "
        f"(frame rate / {frame_stride})",
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def thin_sequence(seq: BenchSequence, stride: int, work: Path) -> BenchSequence:
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


def find_root_sequences(root: Path, det_name: str, seed: int, noise: Any, work: Path) -> BenchRoot:
    """A ROOT's sequences as they are (derived detections written under ``work``)."""
    if not root.is_dir():
        what = "not found" if not root.exists() else "is not a folder"
        raise EmtrackInputError(f"benchmark ROOT {what}", root)
    has_det = (root / "det" / det_name).is_file() or any(
        (child / "det" / det_name).is_file() for child in root.iterdir() if child.is_dir()
    )
    if has_det:
        return BenchRoot(root, "det", f"det/{det_name} files", tuple(det_sequences(root, det_name)))

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


def det_sequences(root: Path, det_name: str) -> list[BenchSequence]:
    """The sequences of a ROOT with ``<seq>/det/<det_name>`` files, each with its gt and
    ``seqinfo.ini`` (in :func:`~emtrack.io.find_sequences` order).

    Raises:
        EmtrackInputError: A sequence folder without ``gt/gt.txt`` or ``seqinfo.ini``, or a
            malformed ``seqinfo.ini``.
    """
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
    return sequences

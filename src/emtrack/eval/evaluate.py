"""Score tracking results against MOTChallenge ground truth with TrackEval.

emtrack never reimplements the metrics: :func:`evaluate` lays the files out the way
``trackeval.datasets.MotChallenge2DBox`` expects them, in a temporary folder, runs
``trackeval.Evaluator`` with HOTA, CLEAR and Identity, and reads the numbers back.

Benchmark conventions (TrackEval's, see ``MotChallenge2DBox.get_preprocessed_seq_data``):

* MOT15-style ground truth has 10 columns and no class (the 8th column is the -1 world
  coordinate). It is evaluated with ``BENCHMARK="MOT15"`` and ``DO_PREPROC=False``: every gt
  row with a non-zero conf column counts.
* MOT16/17/20-style ground truth has 9 columns, the 8th being the class. It is evaluated with
  preprocessing: only class 1 (pedestrian) rows with conf != 0 count, and tracker boxes
  matched (IoU >= 0.5) to a distractor (classes 2, 7, 8, 12; for MOT20 also 6) are removed
  before scoring.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trackeval
from trackeval.utils import TrackEvalException

from emtrack.errors import EmtrackInputError
from emtrack.eval.scores import EvalReport, TrackingScores
from emtrack.io import MotTable, SeqInfo, read_mot, read_seqinfo, write_mot

__all__ = ["BENCHMARKS", "EvalSequence", "evaluate", "evaluate_folder"]

BENCHMARKS: tuple[str, ...] = ("MOT15", "MOT16", "MOT17", "MOT20")
"""Values accepted for ``benchmark``: TrackEval's names for the MOTChallenge conventions."""

_TRACKER_NAME = "emtrack"
_SPLIT = "train"
_CLASS = "pedestrian"
_FORBIDDEN_IN_NAME = ("/", "\\", ",", os.sep)


@dataclass(frozen=True)
class EvalSequence:
    """One sequence to score: its ground truth, a tracker's result and its length.

    Attributes:
        name: Sequence name, e.g. ``"TUD-Campus"``; also the folder name TrackEval sees, so it
            must not contain path separators or commas.
        gt_path: MOTChallenge ``gt.txt`` (10-column MOT15 style or 9-column MOT17/20 style).
        result_path: The tracker's result file (MOTChallenge, 7 or more columns).
        seqinfo: The sequence's ``seqinfo.ini`` contents; ``seq_length`` bounds the frames.
    """

    name: str
    gt_path: Path
    result_path: Path
    seqinfo: SeqInfo

    def __post_init__(self) -> None:
        object.__setattr__(self, "gt_path", Path(self.gt_path))
        object.__setattr__(self, "result_path", Path(self.result_path))
        bad_name = (
            not self.name.strip()
            or self.name in (".", "..")
            or any(char in self.name for char in _FORBIDDEN_IN_NAME)
        )
        if bad_name:
            raise EmtrackInputError(
                f"sequence name {self.name!r} cannot be used as a folder name "
                "(empty, '.', '..', or contains '/', '\\' or ',')"
            )


def evaluate(sequences: Sequence[EvalSequence], benchmark: str | None = None) -> EvalReport:
    """Score tracking results with TrackEval (HOTA, CLEAR, Identity).

    Result rows with an id below 0 (unconfirmed boxes some trackers write as -1) are dropped
    with a warning. TrackEval's printing is silenced (its config flags are off and stdout and
    stderr are redirected while it runs, so do not call this from several threads at once);
    nothing is written outside a temporary folder.

    Args:
        sequences: The sequences to score, with distinct names; all must use one ground-truth
            style.
        benchmark: TrackEval's benchmark convention, one of :data:`BENCHMARKS`. ``None``
            detects it from the ground truth: class column -1 in every row means MOT15 style;
            otherwise MOT17, or MOT20 when every sequence name contains ``"MOT20"``.

    Returns:
        The per-sequence scores and TrackEval's combined scores.

    Raises:
        EmtrackInputError: No sequences, duplicate names, a file that does not parse, ground
            truth in mixed styles, an unknown ``benchmark``, or any error TrackEval reports
            (e.g. frames beyond ``seq_length``, an id twice in one frame).
    """
    sequences = list(sequences)
    if not sequences:
        raise EmtrackInputError("no sequences to evaluate")
    names = [sequence.name for sequence in sequences]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise EmtrackInputError(f"sequence names must be distinct; repeated: {duplicates}")

    gt_tables = [read_mot(sequence.gt_path) for sequence in sequences]
    if benchmark is None:
        benchmark = _detect_benchmark(sequences, gt_tables)
    elif benchmark not in BENCHMARKS:
        raise EmtrackInputError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")

    with tempfile.TemporaryDirectory(prefix="emtrack-eval-") as tmp:
        root = Path(tmp)
        gt_folder, trackers_folder = root / "gt", root / "trackers"
        gt_split = gt_folder / f"{benchmark}-{_SPLIT}"
        tracker_data = trackers_folder / f"{benchmark}-{_SPLIT}" / _TRACKER_NAME / "data"
        tracker_data.mkdir(parents=True)
        (gt_folder / "seqmaps").mkdir(parents=True)
        (gt_folder / "seqmaps" / f"{benchmark}-{_SPLIT}.txt").write_text(
            "\n".join(["name", *names]) + "\n"
        )
        for sequence in sequences:
            seq_dir = gt_split / sequence.name
            (seq_dir / "gt").mkdir(parents=True)
            _link_or_copy(sequence.gt_path, seq_dir / "gt" / "gt.txt")
            _write_seqinfo(seq_dir / "seqinfo.ini", sequence)
            _stage_result(sequence, tracker_data / f"{sequence.name}.txt")

        results = _run_trackeval(
            gt_folder=gt_folder,
            trackers_folder=trackers_folder,
            output_folder=root / "output",
            benchmark=benchmark,
        )

    per_sequence = {
        name: TrackingScores.from_trackeval(results[name][_CLASS]) for name in sorted(names)
    }
    combined = TrackingScores.from_trackeval(results["COMBINED_SEQ"][_CLASS])
    return EvalReport(per_sequence=per_sequence, combined=combined)


def evaluate_folder(
    gt_root: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    benchmark: str | None = None,
) -> EvalReport:
    """Score a folder of result files against a MOTChallenge folder of sequences.

    Sequences in ``gt_root`` without a result file are skipped with a warning, and so are
    result files that match no sequence; the rest are scored together.

    Args:
        gt_root: A folder of ``<seq>/gt/gt.txt`` and ``<seq>/seqinfo.ini``.
        results_dir: A folder of ``<seq>.txt`` result files.
        benchmark: As for :func:`evaluate`.

    Returns:
        The scores of the sequences that have both ground truth and a result.

    Raises:
        EmtrackInputError: A folder is missing, ``gt_root`` holds no sequence, no sequence has
            a result file, or anything :func:`evaluate` rejects.
    """
    gt_root, results_dir = Path(gt_root), Path(results_dir)
    for folder in (gt_root, results_dir):
        if not folder.is_dir():
            raise EmtrackInputError("not a folder", path=folder)
    gt_names = sorted(
        child.name
        for child in gt_root.iterdir()
        if (child / "gt" / "gt.txt").is_file() and (child / "seqinfo.ini").is_file()
    )
    if not gt_names:
        raise EmtrackInputError("no <seq>/gt/gt.txt with <seq>/seqinfo.ini found", path=gt_root)
    result_names = sorted(path.stem for path in results_dir.glob("*.txt") if path.is_file())

    missing = [name for name in gt_names if name not in result_names]
    unknown = [name for name in result_names if name not in gt_names]
    if missing:
        warnings.warn(
            f"{results_dir}: no result file for {len(missing)} sequence(s), not evaluated: "
            + ", ".join(missing),
            stacklevel=2,
        )
    if unknown:
        warnings.warn(
            f"{results_dir}: result file(s) with no ground truth in {gt_root}, ignored: "
            + ", ".join(f"{name}.txt" for name in unknown),
            stacklevel=2,
        )
    names = [name for name in gt_names if name in result_names]
    if not names:
        raise EmtrackInputError(
            f"no result file <seq>.txt for any of the {len(gt_names)} sequences in {gt_root}",
            path=results_dir,
        )
    sequences = [
        EvalSequence(
            name=name,
            gt_path=gt_root / name / "gt" / "gt.txt",
            result_path=results_dir / f"{name}.txt",
            seqinfo=read_seqinfo(gt_root / name / "seqinfo.ini"),
        )
        for name in names
    ]
    return evaluate(sequences, benchmark=benchmark)


def _detect_benchmark(sequences: list[EvalSequence], gt_tables: list[MotTable]) -> str:
    """Pick TrackEval's benchmark convention from the ground-truth files (see :func:`evaluate`)."""
    is_mot15 = [bool(np.all(table.classes == -1)) for table in gt_tables]
    if any(is_mot15) and not all(is_mot15):
        styles = ", ".join(
            f"{sequence.name}: {'MOT15 (no class)' if flag else 'MOT17/20 (class column)'}"
            for sequence, flag in zip(sequences, is_mot15, strict=True)
        )
        raise EmtrackInputError(
            "all sequences evaluated together must share one ground-truth style; got " + styles
        )
    if all(is_mot15):
        return "MOT15"
    is_mot20 = ["MOT20" in sequence.name for sequence in sequences]
    if any(is_mot20) and not all(is_mot20):
        raise EmtrackInputError(
            "MOT20 and other sequences mixed: MOT20 removes one more distractor class; "
            "evaluate them separately or pass benchmark="
        )
    return "MOT20" if all(is_mot20) else "MOT17"


def _link_or_copy(source: Path, target: Path) -> None:
    """Symlink ``target`` to ``source``, or copy it where symlinks are not allowed."""
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copyfile(source, target)


def _write_seqinfo(path: Path, sequence: EvalSequence) -> None:
    """Write the ``seqinfo.ini`` TrackEval reads ``seqLength`` from."""
    info = sequence.seqinfo
    lines = [
        "[Sequence]",
        f"name={sequence.name}",
        f"frameRate={info.frame_rate:g}",
        f"seqLength={int(info.seq_length)}",
    ]
    if info.im_width is not None:
        lines.append(f"imWidth={info.im_width}")
    if info.im_height is not None:
        lines.append(f"imHeight={info.im_height}")
    path.write_text("\n".join(lines) + "\n")


def _stage_result(sequence: EvalSequence, target: Path) -> None:
    """Put the result file where TrackEval looks, without rows whose id is below 0.

    The file is parsed first (so a malformed file fails with its path and line), checked for
    what TrackEval would reject without naming a line (a frame beyond ``seqLength``, one id
    twice in a frame), and written back with ``write_mot``, so TrackEval always reads one
    uniform 10-column form (the 7-column form and mixed rows are valid input here).
    """
    result = read_mot(sequence.result_path)
    negative = result.ids < 0
    if np.any(negative):
        warnings.warn(
            f"{sequence.result_path}: dropped {int(negative.sum())} of {len(result)} rows "
            "with id < 0 (unconfirmed tracks are not scored)",
            stacklevel=3,
        )
        result = result.select(~negative)
    length = int(sequence.seqinfo.seq_length)
    beyond = np.flatnonzero(result.frames > length)
    if len(beyond):
        frame = int(result.frames[beyond[0]])
        raise EmtrackInputError(
            f"frame {frame} is beyond the sequence's seqLength={length}",
            sequence.result_path,
            _line_of(sequence.result_path, frame),
        )
    pairs = result.frames.astype(np.int64) * (int(result.ids.max(initial=0)) + 1) + result.ids
    unique, counts = np.unique(pairs, return_counts=True)
    if np.any(counts > 1):
        row = int(np.flatnonzero(pairs == unique[np.argmax(counts > 1)])[0])
        frame, track = int(result.frames[row]), int(result.ids[row])
        lines = _lines_of(sequence.result_path, frame, track)
        raise EmtrackInputError(
            f"id {track} appears more than once in frame {frame} (also on line "
            f"{lines[1] if len(lines) > 1 else '?'})",
            sequence.result_path,
            lines[0] if lines else None,
        )
    write_mot(target, result)


def _lines_of(path: Path, frame: int, track: int | None = None) -> list[int]:
    """1-based numbers of the lines of a (valid) MOT file with this frame (and id)."""
    found = []
    with open(path, encoding="utf-8-sig", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split(",")
            if len(fields) < 2 or not fields[0].strip():
                continue
            if float(fields[0]) == frame and (track is None or float(fields[1]) == track):
                found.append(number)
    return found


def _line_of(path: Path, frame: int) -> int | None:
    lines = _lines_of(path, frame)
    return lines[0] if lines else None


def _run_trackeval(
    gt_folder: Path, trackers_folder: Path, output_folder: Path, benchmark: str
) -> dict[str, dict]:
    """Run TrackEval on a staged folder; return ``res[seq][cls][metric]`` incl. COMBINED_SEQ."""
    eval_config = {
        "USE_PARALLEL": False,
        "BREAK_ON_ERROR": True,
        "RETURN_ON_ERROR": False,
        "LOG_ON_ERROR": None,  # the default appends to a file inside the installed package
        "PRINT_RESULTS": False,
        "PRINT_ONLY_COMBINED": False,
        "PRINT_CONFIG": False,
        "TIME_PROGRESS": False,
        "DISPLAY_LESS_PROGRESS": True,
        "OUTPUT_SUMMARY": False,
        "OUTPUT_EMPTY_CLASSES": False,
        "OUTPUT_DETAILED": False,
        "PLOT_CURVES": False,
    }
    dataset_config = {
        "GT_FOLDER": str(gt_folder),
        "TRACKERS_FOLDER": str(trackers_folder),
        "OUTPUT_FOLDER": str(output_folder),
        "TRACKERS_TO_EVAL": [_TRACKER_NAME],
        "CLASSES_TO_EVAL": [_CLASS],
        "BENCHMARK": benchmark,
        "SPLIT_TO_EVAL": _SPLIT,
        "INPUT_AS_ZIP": False,
        "PRINT_CONFIG": False,
        "DO_PREPROC": benchmark != "MOT15",
        "TRACKER_SUB_FOLDER": "data",
        "OUTPUT_SUB_FOLDER": "",
        "SKIP_SPLIT_FOL": False,
    }
    metric_config = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            evaluator = trackeval.Evaluator(eval_config)
            dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
            metrics = [
                trackeval.metrics.HOTA(),
                trackeval.metrics.CLEAR(dict(metric_config)),
                trackeval.metrics.Identity(dict(metric_config)),
            ]
            output_res, _ = evaluator.evaluate([dataset], metrics)
    except TrackEvalException as error:
        raise EmtrackInputError(f"TrackEval: {error}") from error
    return output_res[dataset.get_name()][_TRACKER_NAME]

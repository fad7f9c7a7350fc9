"""``emtrack track`` and ``emtrack eval``: result files from detections, and their scores."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emtrack.cli.options import (
    BENCHMARKS,
    TRACKER_FLAGS,
    add_config_flags,
    add_det_name_option,
    add_model_option,
    positive_float,
    positive_int,
    tracker_config_from_args,
)
from emtrack.cli.output import is_quiet
from emtrack.cli.threads import TRACKING_THREADS, add_threads_option, thread_limit
from emtrack.errors import EmtrackInputError
from emtrack.io import (
    MotTable,
    SeqInfo,
    Timestamps,
    read_mot,
    read_seqinfo,
    read_timestamps,
    write_json,
)

_log = logging.getLogger(__name__)

#: ``--adapt``'s optimiser steps when none are given (emtrack.train.adapt.ADAPT_STEPS, kept
#: here so that building the parser does not import torch; a test checks they agree).
ADAPT_STEPS_DEFAULT = 20


_TRACK_EXAMPLES = """\
examples (from the repository root):
  # one det file; seqinfo.ini is read from <det>/../../seqinfo.ini
  emtrack track --det ../shared/data/MOT15/TUD-Campus/det/det.txt --out out/TUD-Campus.txt
  # every sequence of a folder into the folder out/ (one <seq>.txt each), offline mode
  emtrack track --det ../shared/data/MOT15 --out out/ --offline
  # one sequence to stdout
  emtrack track --det ../shared/data/MOT15/TUD-Campus/det/det.txt --out - -q | head -3
  # your own model (see 'emtrack train --help'), and score thresholds for your detector
  emtrack track --det ../shared/data/YOLOX-MOT17 --out out/yolox/ --model runs/mine.npz \\
      --high-score 0.5 --new-track-score 0.6
  # another frame rate than seqinfo.ini's (a det file without seqinfo.ini needs this; the
  # sequence then ends at its last detection)
  emtrack track --det ../shared/data/MOT15/TUD-Campus/det/det.txt --frame-rate 12.5 \\
      --out out/TUD-Campus-12fps.txt
"""

_EVAL_EXAMPLES = """\
examples (from the repository root, after the 'emtrack track' examples):
  emtrack eval --gt ../shared/data/MOT15 --results out/
  emtrack eval --gt ../shared/data/MOT15/TUD-Campus --results out/TUD-Campus.txt   # one sequence
  emtrack eval --gt ../shared/data/MOT15 --results out/ --benchmark MOT15 --json out/scores.json
"""


def register(commands: Any, common: dict[str, Any]) -> None:
    """Add the ``track`` and ``eval`` sub-commands."""
    track = commands.add_parser(
        "track",
        help="track detections; write MOTChallenge result files",
        description=(
            "Track a det file, or every sequence of a folder (<seq>/det/<det-name> with "
            "<seq>/seqinfo.ini), and write MOTChallenge result files. Without tracker options "
            "the tracker runs with TrackerConfig()'s defaults."
        ),
        epilog=_TRACK_EXAMPLES,
        **common,
    )
    track.add_argument(
        "--det",
        required=True,
        metavar="DET",
        help="a det file, or a folder of sequences <seq>/det/<det-name>",
    )
    track.add_argument(
        "--seqinfo",
        metavar="SEQINFO",
        help="seqinfo.ini of a single det file (default: <det>/../../seqinfo.ini); "
        "frame rate and sequence length come from it",
    )
    track.add_argument(
        "--frame-rate",
        type=positive_float,
        metavar="FPS",
        help="frames per second of every sequence tracked, instead of seqinfo.ini's frameRate; "
        "with it a sequence needs no seqinfo.ini (its length is then its det file's last "
        "frame)",
    )
    track.add_argument(
        "--out",
        required=True,
        metavar="RESULT",
        help="where the results go: a file for one det file; a folder (a name ending in '/', "
        "or an existing folder: one <seq>.txt per sequence) for a folder of sequences; '-' "
        "for stdout (one sequence)",
    )
    add_det_name_option(track)
    add_model_option(track)
    track.add_argument(
        "--offline",
        action="store_true",
        help="offline mode: after the online pass, re-link fragments and fill gaps",
    )
    track.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="track the sequences of a folder in N processes at once; the result files are "
        "the same as with 1 (default: 1)",
    )
    track.add_argument(
        "--strict",
        action="store_true",
        help="degenerate det rows (zero width or height, or entirely outside the image) are an "
        "error; by default they are skipped with one warning per file",
    )
    track.add_argument(
        "--class-agnostic",
        action="store_true",
        help="track detections of all classes together; by default, when the det file has a "
        "class column, each class is tracked on its own (ids unique across classes)",
    )
    track.add_argument(
        "--timestamps",
        metavar="FILE",
        help="the time of each frame: lines 'frame,seconds'; frames not listed are dropped "
        "frames (not frames without detections); with a folder of sequences, a folder of "
        "<seq>.txt files (see docs/inputs.md)",
    )
    track.add_argument(
        "--adapt",
        nargs="?",
        const=ADAPT_STEPS_DEFAULT,
        type=positive_int,
        metavar="STEPS",
        help="before tracking each sequence, fine-tune the model on its own detections by a "
        f"few steps of the self-supervised training loss (default {ADAPT_STEPS_DEFAULT} steps; "
        "needs emtrack[train])",
    )
    add_threads_option(track, TRACKING_THREADS)
    add_config_flags(track.add_argument_group("tracker settings"), TRACKER_FLAGS, "tracker")
    track.set_defaults(handler=_cmd_track)
    evaluate = commands.add_parser(
        "eval",
        help="score result files with TrackEval (HOTA, MOTA, IDF1, ...)",
        description=(
            "Score a folder of <seq>.txt result files against a folder of sequences "
            "(<seq>/gt/gt.txt and <seq>/seqinfo.ini) with TrackEval, or one result file "
            "against one sequence folder."
        ),
        epilog=_EVAL_EXAMPLES,
        **common,
    )
    evaluate.add_argument(
        "--gt",
        required=True,
        metavar="GT",
        help="a folder of sequences, or one sequence's folder (<seq>/gt/gt.txt, <seq>/seqinfo.ini)",
    )
    evaluate.add_argument(
        "--results",
        required=True,
        metavar="RESULTS",
        help="a folder of <seq>.txt results, or (with one sequence's --gt) its result file",
    )
    evaluate.add_argument(
        "--benchmark",
        choices=BENCHMARKS,
        help="TrackEval convention (default: detected from the gt: 10-column gt is MOT15, "
        "otherwise MOT17, or MOT20 when every sequence name contains MOT20)",
    )
    evaluate.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    evaluate.set_defaults(handler=_cmd_eval)


@dataclass(frozen=True)
class _TrackJob:
    name: str | None  # None for a single det file: its seqinfo.ini names it
    det: Path
    seqinfo: Path | None  # None: no seqinfo.ini, --frame-rate given
    out: Path | None  # None: stdout
    timestamps: Path | None = None

    def read(
        self, frame_rate: float | None, strict: bool = False
    ) -> tuple[MotTable, SeqInfo, Timestamps | None]:
        """The detections, the sequence's frame rate and length (``frame_rate`` wins), and
        the frame times if given; boxes outside the image are degenerate when its size is
        known."""
        stamps = None if self.timestamps is None else read_timestamps(self.timestamps)
        if self.seqinfo is not None:
            info = read_seqinfo(self.seqinfo)
            size = None
            if info.im_width is not None and info.im_height is not None:
                size = (info.im_width, info.im_height)
            detections = read_mot(self.det, strict=strict, image_size=size)
            if frame_rate is not None:
                info = dataclasses.replace(info, frame_rate=frame_rate)
            return detections, info, stamps
        assert frame_rate is not None
        detections = read_mot(self.det, strict=strict)
        name = self.name or (self.det.parent.parent.name if self.det.parent.name == "det" else "")
        length = int(detections.frames.max()) if len(detections) else 1
        if stamps is not None and len(stamps.frames):
            length = max(length, int(stamps.frames.max()))
        return detections, SeqInfo(name or self.det.stem, frame_rate, length), stamps


#: ``--out`` for stdout.
STDOUT = "-"


def out_is_folder(out: str) -> bool:
    """``--out`` names a folder: it ends with a path separator or is an existing folder."""
    return out.endswith(("/", os.sep)) or Path(out).is_dir()


def _sequence_name(det: Path) -> str:
    """The name a single det file's sequence goes by (``<seq>/det/det.txt`` -> ``<seq>``)."""
    return det.parent.parent.name if det.parent.name == "det" else det.stem


def _track_jobs(args: argparse.Namespace) -> list[_TrackJob]:
    """What ``emtrack track`` reads and writes, one job per sequence.

    ``--out`` is a folder when it ends with ``/`` or is an existing folder, stdout when it is
    ``-``, else a file; a folder ``--det`` needs a folder (or ``-`` for a folder of one
    sequence), a det file needs a file or ``-``.
    """
    from emtrack.io import find_sequences

    det, to_stdout = Path(args.det), args.out == STDOUT
    folder_out = not to_stdout and out_is_folder(args.out)
    if det.is_dir():
        if args.seqinfo is not None:
            raise EmtrackInputError(
                "--seqinfo is for a single det file; in a folder each sequence's own "
                "<seq>/seqinfo.ini is used",
                det,
            )
        sequences = find_sequences(det, args.det_name)
        if to_stdout and len(sequences) > 1:
            raise EmtrackInputError(
                f"--out - writes one sequence to stdout, and this folder holds "
                f"{len(sequences)}; give a folder, e.g. --out out/, or one det file",
                det,
            )
        if not (to_stdout or folder_out):
            raise EmtrackInputError(
                f"--det is a folder of sequences, so --out must be a folder: end it with "
                f"'/' (--out {args.out}/), or give an existing folder",
                det,
            )
        stamps_dir = None if args.timestamps is None else Path(args.timestamps)
        if stamps_dir is not None and not stamps_dir.is_dir():
            raise EmtrackInputError(
                "--timestamps must be a folder of <seq>.txt files when --det is a folder",
                stamps_dir,
            )
        jobs = []
        for sequence in sequences:
            if sequence.seqinfo is None and args.frame_rate is None:
                raise EmtrackInputError(
                    "no seqinfo.ini in this sequence folder (frame rate and length come from "
                    "it); add one, or give --frame-rate",
                    sequence.det.parent.parent,
                )
            stamps = None
            if stamps_dir is not None:
                stamps = stamps_dir / f"{sequence.name}.txt"
                if not stamps.is_file():
                    raise EmtrackInputError(
                        f"no timestamps file for sequence {sequence.name} (--timestamps is a "
                        "folder: one <seq>.txt per sequence)",
                        stamps,
                    )
            target = None if to_stdout else Path(args.out) / f"{sequence.name}.txt"
            jobs.append(_TrackJob(sequence.name, sequence.det, sequence.seqinfo, target, stamps))
        return jobs
    if not det.is_file():
        raise EmtrackInputError("det file not found", det)
    if folder_out:
        example = Path(args.out) / f"{_sequence_name(det)}.txt"
        raise EmtrackInputError(
            f"--out {args.out} is a folder, and --det is one det file: give the result "
            f"file's name, e.g. --out {example}",
            det,
        )
    stamps_file = None if args.timestamps is None else Path(args.timestamps)
    seqinfo: Path | None
    if args.seqinfo is not None:
        seqinfo = Path(args.seqinfo)
    else:
        seqinfo = det.parent.parent / "seqinfo.ini"
        if not seqinfo.is_file():
            if args.frame_rate is None:
                raise EmtrackInputError(
                    f"no seqinfo.ini at {seqinfo} (the default, <det>/../../seqinfo.ini); "
                    "give one with --seqinfo, or give --frame-rate",
                    det,
                )
            seqinfo = None
    return [_TrackJob(None, det, seqinfo, None if to_stdout else Path(args.out), stamps_file)]


def write_to_stdout(table: MotTable) -> None:
    """A result table on stdout, in exactly the format :func:`~emtrack.io.write_mot` writes."""
    import sys
    import tempfile

    from emtrack.io import write_mot

    with tempfile.TemporaryDirectory(prefix="emtrack-") as tmp:
        path = Path(tmp) / "result.txt"
        write_mot(path, table)
        sys.stdout.flush()
        sys.stdout.buffer.write(path.read_bytes())
        sys.stdout.buffer.flush()


def _cmd_track(args: argparse.Namespace) -> int:
    with thread_limit(args.threads):
        return _track(args)


def _track(args: argparse.Namespace) -> int:
    config = tracker_config_from_args(args)
    from tqdm import tqdm

    from emtrack.io import write_mot
    from emtrack.track import load_model
    from emtrack.track.run import track_sequences

    jobs = _track_jobs(args)
    # Read and check every input before tracking anything, and track everything before
    # writing anything: bad input leaves no output.
    inputs = [(job, *job.read(args.frame_rate, args.strict)) for job in jobs]
    model = load_model(args.model)
    runs = []
    # A bar over the sequences: hidden for one file, with -q, and when stderr is no terminal.
    quiet = is_quiet(args) or len(inputs) < 2
    if args.adapt:
        tracked = _adapted_runs(inputs, model, config, args)
    else:
        tracked = track_sequences(
            [(detections, seqinfo) for _, detections, seqinfo, _ in inputs],
            model=model,
            config=config,
            offline=args.offline,
            workers=args.workers,
            class_agnostic=args.class_agnostic,
            timestamps=[stamps for *_, stamps in inputs],
        )
    bar = tqdm(
        tracked, total=len(inputs), desc="tracking", unit="seq", disable=True if quiet else None
    )
    for (job, _, seqinfo, _), run in zip(inputs, bar, strict=True):
        runs.append((job.name or seqinfo.name, job, run))
    for name, job, run in runs:
        if job.out is None:
            write_to_stdout(run.result)
        else:
            write_mot(job.out, run.result)
        fps = run.num_frames / run.update_seconds if run.update_seconds > 0 else float("inf")
        num_tracks = len(set(run.result.ids.tolist()))
        _log.info(
            "%s: %d frames, %d boxes, %d tracks, %.0f frames/s -> %s",
            name,
            run.num_frames,
            len(run.result),
            num_tracks,
            fps,
            "stdout" if job.out is None else job.out,
        )
        # -v: what was fitted to this input.
        for class_id, fit in run.fits.items():
            label = name if class_id is None else f"{name} (class {class_id:g})"
            for line in fit.describe():
                _log.debug("%s: %s", label, line)
    return 0


def _adapted_runs(inputs: list, model: Any, config: Any, args: argparse.Namespace) -> Any:
    """``--adapt``: each sequence tracked with the model fine-tuned on its own detections."""
    from emtrack.track import AssociationWeights
    from emtrack.track.run import track_sequence
    from emtrack.train.adapt import adapt_weights

    for _, detections, seqinfo, stamps in inputs:
        arrays = adapt_weights(model.to_arrays(), detections, seqinfo, args.adapt)
        yield track_sequence(
            detections,
            seqinfo,
            AssociationWeights.from_arrays(arrays),
            config,
            args.offline,
            class_agnostic=args.class_agnostic,
            timestamps=stamps,
        )


def _is_sequence_folder(path: Path) -> bool:
    return (path / "gt" / "gt.txt").is_file() and (path / "seqinfo.ini").is_file()


def _evaluate(gt: Path, results: Path, benchmark: str | None) -> Any:
    """The report of ``emtrack eval``: a folder of sequences, or one sequence (see --help)."""
    from emtrack.eval import EvalSequence, evaluate, evaluate_folder

    if not _is_sequence_folder(gt):
        if results.is_file():
            raise EmtrackInputError(
                "--results is one result file, so --gt must be that sequence's folder "
                f"(with gt/gt.txt and seqinfo.ini), e.g. --gt {gt / results.stem}",
                gt,
            )
        return evaluate_folder(gt, results, benchmark=benchmark)
    if results.is_dir():
        results = results / f"{gt.name}.txt"
        if not results.is_file():
            raise EmtrackInputError(
                f"no result file {gt.name}.txt for the sequence {gt}; give the result file "
                "itself with --results",
                results.parent,
            )
    elif not results.is_file():
        raise EmtrackInputError("result file not found", results)
    sequence = EvalSequence(
        gt.name, gt / "gt" / "gt.txt", results, read_seqinfo(gt / "seqinfo.ini")
    )
    return evaluate([sequence], benchmark=benchmark)


def _cmd_eval(args: argparse.Namespace) -> int:
    report = _evaluate(Path(args.gt), Path(args.results), args.benchmark)
    print(report.format_table())
    if args.json:
        data = {
            "gt": str(args.gt),
            "results": str(args.results),
            "benchmark": args.benchmark,
            "per_sequence": {
                name: dataclasses.asdict(scores) for name, scores in report.per_sequence.items()
            },
            "combined": dataclasses.asdict(report.combined),
        }
        write_json(Path(args.json), data)
        _log.info("wrote %s", args.json)
    return 0

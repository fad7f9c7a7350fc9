"""``emtrack track`` and ``emtrack eval``: result files from detections, and their scores."""

from __future__ import annotations

import argparse
import dataclasses
import logging
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


_TRACK_EXAMPLES = """\
examples:
  # one det file; seqinfo.ini is read from <det>/../../seqinfo.ini
  emtrack track --det MOT15/TUD-Campus/det/det.txt --out out/TUD-Campus.txt
  # every sequence of a folder, offline mode (re-linking and gap filling)
  emtrack track --det ../shared/data/MOT15 --out out/ --offline
  # your own model, and score thresholds for your detector
  emtrack track --det seqs/ --out out/ --model runs/mine.npz --high-score 0.5 --new-track-score 0.6
  # a det file without seqinfo.ini: give the frame rate (the length is its last frame)
  emtrack track --det my_video_dets.txt --frame-rate 25 --out my_video_tracks.txt
"""

_EVAL_EXAMPLES = """\
examples:
  emtrack eval --gt ../shared/data/MOT15 --results out/
  emtrack eval --gt ../shared/data/MOT17 --results out/ --benchmark MOT17 --json scores.json
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
        help="result file; a folder (one <seq>.txt per sequence) when --det is a folder",
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
    add_config_flags(track.add_argument_group("tracker settings"), TRACKER_FLAGS, "tracker")
    track.set_defaults(handler=_cmd_track)
    evaluate = commands.add_parser(
        "eval",
        help="score result files with TrackEval (HOTA, MOTA, IDF1, ...)",
        description=(
            "Score a folder of <seq>.txt result files against a folder of sequences "
            "(<seq>/gt/gt.txt and <seq>/seqinfo.ini) with TrackEval."
        ),
        epilog=_EVAL_EXAMPLES,
        **common,
    )
    evaluate.add_argument("--gt", required=True, metavar="GT_ROOT", help="folder of sequences")
    evaluate.add_argument(
        "--results", required=True, metavar="RESULT_DIR", help="folder of <seq>.txt results"
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
    out: Path
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


def _track_jobs(args: argparse.Namespace) -> list[_TrackJob]:
    """What ``emtrack track`` reads and writes, one job per sequence."""
    from emtrack.io import find_sequences

    det, out = Path(args.det), Path(args.out)
    if det.is_dir():
        if args.seqinfo is not None:
            raise EmtrackInputError(
                "--seqinfo is for a single det file; in a folder each sequence's own "
                "<seq>/seqinfo.ini is used",
                det,
            )
        if out.exists() and not out.is_dir():
            raise EmtrackInputError("--out must be a folder when --det is a folder", out)
        stamps_dir = None if args.timestamps is None else Path(args.timestamps)
        if stamps_dir is not None and not stamps_dir.is_dir():
            raise EmtrackInputError(
                "--timestamps must be a folder of <seq>.txt files when --det is a folder",
                stamps_dir,
            )
        jobs = []
        for sequence in find_sequences(det, args.det_name):
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
            target = out / f"{sequence.name}.txt"
            jobs.append(_TrackJob(sequence.name, sequence.det, sequence.seqinfo, target, stamps))
        return jobs
    if not det.is_file():
        raise EmtrackInputError("det file not found", det)
    if out.is_dir():
        raise EmtrackInputError("--out is a folder; give the result file's name", out)
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
    return [_TrackJob(None, det, seqinfo, out, stamps_file)]


def _cmd_track(args: argparse.Namespace) -> int:
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
            job.out,
        )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from emtrack.eval import evaluate_folder

    report = evaluate_folder(args.gt, args.results, benchmark=args.benchmark)
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

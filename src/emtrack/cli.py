"""The ``emtrack`` command line: a thin layer over the public API.

Sub-commands: ``train``, ``track``, ``eval``, ``bench track`` and ``demo`` (``emtrack COMMAND
--help`` for each). Every option maps by hand to one field of a config dataclass
(:class:`~emtrack.train.TrainConfig`, :class:`~emtrack.track.TrackerConfig`) or to one argument
of a library call. An option that is left out is not passed at all, so the dataclass default
applies: defaults live in one place, and ``--help`` reads them from there.

Output: results (tables, one line per training epoch) go to stdout; notes and progress go to
stderr through :mod:`logging` (``-q`` keeps only warnings and errors, ``-v`` adds the library's
debug messages). Bad input (:class:`~emtrack.errors.EmtrackInputError`, or a ``ValueError`` from
config validation) is reported as one line ``emtrack: error: <message>`` on stderr with exit
status 2, and no output file is written; argparse usage errors also exit with 2.

Heavy modules (torch, TrackEval) are imported inside the commands, so ``emtrack --help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emtrack import __version__
from emtrack.errors import EmtrackInputError

__all__ = ["build_parser", "main", "tracker_config_from_args", "train_config_from_args"]

_log = logging.getLogger(__name__)

#: Exit status for bad input and usage errors (argparse's own convention).
EXIT_INPUT_ERROR = 2
#: Exit status when the environment fails (a file cannot be written, ...).
EXIT_OS_ERROR = 1

# Choices of ``--objective``; tests check this equals emtrack.model.loss.OBJECTIVES (kept here
# so that building the parser does not import torch).
_OBJECTIVES: tuple[str, ...] = ("smoothed", "filtered", "innovations")
# Choices of ``eval --benchmark``; tests check this equals emtrack.eval.BENCHMARKS.
_BENCHMARKS: tuple[str, ...] = ("MOT15", "MOT16", "MOT17", "MOT20")


# --------------------------------------------------------------------------------------------
# Options that set one config field each
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ConfigFlag:
    """One command-line option that sets one field of a config dataclass.

    Attributes:
        option: The option string, e.g. ``"--high-score"``.
        field: The config field it sets.
        help: What the field controls (the default is appended from the dataclass).
        type: Converter of the option's text (ignored when ``const`` is given).
        const: For a switch: the value the field gets when the switch is present.
        metavar: Placeholder shown in ``--help``.
        choices: Allowed values, if restricted.
    """

    option: str
    field: str
    help: str
    type: Callable[[str], Any] | None = None
    const: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None


def _int_tuple(text: str) -> tuple[int, ...]:
    """Parse ``"32,32"`` into ``(32, 32)``."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


_TRACKER_FLAGS: tuple[_ConfigFlag, ...] = (
    _ConfigFlag(
        "--high-score",
        "high_score",
        "detections at or above this score take part in the first association stage and may "
        "start tracks",
        float,
    ),
    _ConfigFlag(
        "--low-score",
        "low_score",
        "detections in [low-score, high-score) only extend confirmed tracks (second stage); "
        "below it they are ignored",
        float,
    ),
    _ConfigFlag("--new-track-score", "new_track_score", "minimum score to start a track", float),
    _ConfigFlag(
        "--min-hits", "min_hits", "consecutive matched frames before a track is reported", int
    ),
    _ConfigFlag(
        "--max-lost-s",
        "max_lost_s",
        "seconds a lost track is kept for recovery",
        float,
        metavar="SECONDS",
    ),
    _ConfigFlag(
        "--match-margin",
        "match_margin",
        "a pair is matched when its logit beats the learned dustbin logit by this margin",
        float,
    ),
    _ConfigFlag(
        "--low-match-margin",
        "low_match_margin",
        "the same margin for the second (low-score) stage",
        float,
    ),
    _ConfigFlag(
        "--max-gap-fill",
        "max_gap_fill",
        "offline mode: fill gaps of up to this many frames with interpolated boxes",
        int,
        metavar="FRAMES",
    ),
    _ConfigFlag(
        "--relink-max-s",
        "relink_max_s",
        "offline mode: re-link fragments separated by up to this many seconds",
        float,
        metavar="SECONDS",
    ),
    _ConfigFlag(
        "--relink-margin",
        "relink_margin",
        "offline mode: logit margin over the dustbin needed to re-link two fragments",
        float,
    ),
    _ConfigFlag(
        "--min-track-hits",
        "min_track_hits",
        "offline mode: drop tracks with fewer detections than this",
        int,
    ),
)

_TRAIN_FLAGS: tuple[_ConfigFlag, ...] = (
    _ConfigFlag(
        "--synthetic",
        "synthetic_scenes",
        "synthetic training scenes (0: train on the --det files only)",
        int,
        metavar="N",
    ),
    _ConfigFlag(
        "--synthetic-frames", "synthetic_frames", "frames per synthetic scene", int, metavar="N"
    ),
    _ConfigFlag(
        "--heldout-scenes",
        "heldout_scenes",
        "synthetic scenes for the held-out accuracy (0: no accuracy)",
        int,
        metavar="N",
    ),
    _ConfigFlag(
        "--heldout-clips",
        "heldout_clips",
        "clips drawn from the held-out scenes",
        int,
        metavar="N",
    ),
    _ConfigFlag("--epochs", "epochs", "number of epochs", int, metavar="E"),
    _ConfigFlag(
        "--steps-per-epoch", "steps_per_epoch", "optimiser steps per epoch", int, metavar="S"
    ),
    _ConfigFlag("--batch-size", "batch_size", "clips per step", int, metavar="B"),
    _ConfigFlag("--clip-length", "clip_length", "frames per clip", int, metavar="T"),
    _ConfigFlag(
        "--max-stride", "max_stride", "clips take every s-th frame, s in 1..N", int, metavar="N"
    ),
    _ConfigFlag(
        "--max-detections",
        "max_detections",
        "detections kept per frame (highest scores)",
        int,
        metavar="N",
    ),
    _ConfigFlag("--lr", "learning_rate", "Adam step size", float, metavar="LR"),
    _ConfigFlag(
        "--objective",
        "objective",
        "smoothed (the paper's), filtered (ablation) or innovations (exact marginal likelihood)",
        str,
        choices=_OBJECTIVES,
    ),
    _ConfigFlag(
        "--sinkhorn-iterations", "sinkhorn_iterations", "Sinkhorn rounds", int, metavar="N"
    ),
    _ConfigFlag(
        "--hidden", "hidden", "MLP hidden widths, comma-separated", _int_tuple, metavar="W,W"
    ),
    _ConfigFlag(
        "--no-learn-noise",
        "learn_noise",
        "keep Q, R and the initial velocity variance fixed instead of fitting them",
        const=False,
    ),
    _ConfigFlag("--seed", "seed", "seeds every random generator of the run", int, metavar="S"),
    _ConfigFlag("--float64", "float64", "train in double precision", const=True),
    _ConfigFlag("--device", "device", "torch device, e.g. cpu or cuda", str, metavar="DEV"),
)


def _config_class(name: str) -> type:
    """The config dataclass named ``"tracker"`` or ``"train"`` (imported on demand)."""
    if name == "tracker":
        from emtrack.track import TrackerConfig

        return TrackerConfig
    from emtrack.train import TrainConfig

    return TrainConfig


def _add_config_flags(
    parser: argparse.ArgumentParser, flags: Sequence[_ConfigFlag], config: str
) -> None:
    """Add one option per flag; each stores into ``<config>.<field>``, default ``None``."""
    for flag in flags:
        kwargs: dict[str, Any] = {"dest": f"{config}.{flag.field}", "default": None}
        if flag.const is not None:
            kwargs.update(action="store_const", const=flag.const)
        else:
            metavar = flag.metavar or (None if flag.choices else flag.field.upper())
            kwargs.update(type=flag.type, metavar=metavar, choices=flag.choices)
        action = parser.add_argument(flag.option, help=flag.help, **kwargs)
        # Read by _HelpFormatter, which looks the default up only when help is printed.
        action.config_default = (config, flag.field)  # type: ignore[attr-defined]


def _config_kwargs(args: argparse.Namespace, flags: Sequence[_ConfigFlag], config: str) -> dict:
    """The config fields the user gave explicitly (options left out are not passed)."""
    values = {flag.field: getattr(args, f"{config}.{flag.field}") for flag in flags}
    return {field: value for field, value in values.items() if value is not None}


def tracker_config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~emtrack.track.TrackerConfig` of parsed ``track``/``bench track`` options.

    Only options given on the command line are passed, so no options gives ``TrackerConfig()``.

    Raises:
        ValueError: The values are rejected by ``TrackerConfig.__post_init__``.
    """
    return _config_class("tracker")(**_config_kwargs(args, _TRACKER_FLAGS, "tracker"))


def train_config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~emtrack.train.TrainConfig` of parsed ``train`` options (see above)."""
    return _config_class("train")(**_config_kwargs(args, _TRAIN_FLAGS, "train"))


class _HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: ...)`` to config options, read from the config dataclass itself.

    The config class is imported only when help is printed (it may import torch).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help
        source = getattr(action, "config_default", None)
        if source is None or help_text is None:
            return help_text
        config, field = source
        default = next(f for f in dataclasses.fields(_config_class(config)) if f.name == field)
        value = default.default
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        # argparse %-formats help strings, so a literal % must be doubled.
        return f"{help_text} (default: {value})".replace("%", "%%")


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def _verbosity_parent() -> argparse.ArgumentParser:
    """``-q`` / ``-v``, accepted before and after the sub-command."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        default=argparse.SUPPRESS,
        help="only print warnings and errors on stderr (results still go to stdout)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        default=argparse.SUPPRESS,
        help="also print the library's debug messages, and tracebacks of errors",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``emtrack`` argument parser (sub-commands set ``handler``)."""
    verbosity = _verbosity_parent()
    common: dict[str, Any] = {"parents": [verbosity], "formatter_class": _HelpFormatter}
    parser = argparse.ArgumentParser(
        prog="emtrack",
        description="Self-supervised multi-object tracking with a learned association network.",
        epilog="Run 'emtrack COMMAND --help' for the options of a command.",
        **common,
    )
    parser.add_argument("--version", action="version", version=f"emtrack {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # train ------------------------------------------------------------------------------
    train = commands.add_parser(
        "train",
        help="train the association network (self-supervised, no identities needed)",
        description=(
            "Train the association network by EM on detection files and/or synthetic scenes. "
            "Identities in the files are never read. Prints one line per epoch; the "
            "checkpoint is written (atomically) after every epoch."
        ),
        **common,
    )
    train.add_argument(
        "--det",
        action="extend",
        nargs="+",
        default=[],
        metavar="PATH",
        help="det files or folders of sequences (<seq>/det/det.txt); may be repeated",
    )
    _add_config_flags(train, _TRAIN_FLAGS, "train")
    train.add_argument("--out", required=True, metavar="CKPT.pt", help="checkpoint to write")
    train.add_argument(
        "--export",
        metavar="WEIGHTS.npz",
        help="also write the trained weights for the tracker (use with 'emtrack track --model')",
    )
    train.set_defaults(handler=_cmd_train)

    # track ------------------------------------------------------------------------------
    track = commands.add_parser(
        "track",
        help="track detections; write MOTChallenge result files",
        description=(
            "Track a det file, or every sequence of a folder (<seq>/det/<det-name> with "
            "<seq>/seqinfo.ini), and write MOTChallenge result files. Without tracker options "
            "the tracker runs with TrackerConfig()'s defaults."
        ),
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
        "--out",
        required=True,
        metavar="RESULT",
        help="result file; a folder (one <seq>.txt per sequence) when --det is a folder",
    )
    track.add_argument(
        "--det-name",
        default="det.txt",
        metavar="NAME",
        help="file name of the detections inside each det/ folder (default: det.txt)",
    )
    _add_model_option(track)
    track.add_argument(
        "--offline",
        action="store_true",
        help="offline mode: after the online pass, re-link fragments and fill gaps",
    )
    _add_config_flags(track.add_argument_group("tracker settings"), _TRACKER_FLAGS, "tracker")
    track.set_defaults(handler=_cmd_track)

    # eval -------------------------------------------------------------------------------
    evaluate = commands.add_parser(
        "eval",
        help="score result files with TrackEval (HOTA, MOTA, IDF1, ...)",
        description=(
            "Score a folder of <seq>.txt result files against a folder of sequences "
            "(<seq>/gt/gt.txt and <seq>/seqinfo.ini) with TrackEval."
        ),
        **common,
    )
    evaluate.add_argument("--gt", required=True, metavar="GT_ROOT", help="folder of sequences")
    evaluate.add_argument(
        "--results", required=True, metavar="RESULT_DIR", help="folder of <seq>.txt results"
    )
    evaluate.add_argument(
        "--benchmark",
        choices=_BENCHMARKS,
        help="TrackEval convention (default: detected from the gt: 10-column gt is MOT15, "
        "otherwise MOT17, or MOT20 when every sequence name contains MOT20)",
    )
    evaluate.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    evaluate.set_defaults(handler=_cmd_eval)

    # bench ------------------------------------------------------------------------------
    bench = commands.add_parser(
        "bench", help="benchmarks (see 'emtrack bench track --help')", **common
    )
    bench_commands = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    bench_track = bench_commands.add_parser(
        "track",
        help="emtrack vs the peer trackers on the same detections",
        description=(
            "Run emtrack (online and offline) and the peer trackers of the 'trackers' package "
            "on the same detections, score each with TrackEval per ROOT (all of a ROOT's "
            "sequences combined), and print one table per ROOT. A ROOT with "
            "<seq>/det/<det-name> uses those files; a ROOT with ground truth only "
            "(<seq>/gt/gt.txt, MOT17/MOT20 layout) gets a noisy detection stream derived from "
            "the gt (ids removed) and is scored against the original gt. frames/s is frames "
            "divided by the time spent in the trackers' per-frame update calls."
        ),
        **common,
    )
    bench_track.add_argument(
        "roots",
        nargs="+",
        metavar="ROOT",
        help="folder of sequences with gt/gt.txt and seqinfo.ini (and det/<det-name>)",
    )
    bench_track.add_argument(
        "--det-name",
        default="det.txt",
        metavar="NAME",
        help="file name of the detections inside each det/ folder (default: det.txt)",
    )
    bench_track.add_argument(
        "--trackers",
        metavar="LIST",
        help="comma-separated trackers to run (default: all: "
        "emtrack,emtrack-offline,sort,bytetrack,ocsort,botsort)",
    )
    bench_track.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the detections derived from gt-only ROOTs (default: 0)",
    )
    bench_track.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="track each sequence N times and keep the fastest time, for steadier frames/s "
        "(default: 1)",
    )
    _add_model_option(bench_track)
    bench_track.add_argument(
        "--json", metavar="FILE", help="also write rows, versions, machine and commit as JSON"
    )
    bench_track.add_argument(
        "--results-dir",
        metavar="DIR",
        help="keep the derived detections and every tracker's result files here "
        "(default: a temporary folder, removed afterwards)",
    )
    _add_config_flags(
        bench_track.add_argument_group("emtrack tracker settings"), _TRACKER_FLAGS, "tracker"
    )
    bench_track.set_defaults(handler=_cmd_bench_track)

    # demo -------------------------------------------------------------------------------
    demo = commands.add_parser(
        "demo",
        help="track a synthetic scene and score it (no data needed)",
        description=(
            "Generate a synthetic street scene with noisy detections, track it with the "
            "shipped model and with SORT (plain IoU association, if the 'trackers' package is "
            "installed), and print both scores."
        ),
        **common,
    )
    demo.add_argument(
        "--frames", type=int, default=300, metavar="N", help="frames of the scene (default: 300)"
    )
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="scene seed (default: 0)")
    _add_model_option(demo)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="M",
        help="weights: an .npz from 'emtrack train --export' or a training checkpoint .pt "
        "(default: the model shipped with emtrack)",
    )


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}%"


def _cmd_train(args: argparse.Namespace) -> int:
    config = train_config_from_args(args)
    from emtrack.train import train

    out = Path(args.out)
    if out.is_dir():
        raise EmtrackInputError("--out is a folder; give the checkpoint's file name", out)
    epochs = config.epochs

    def on_epoch(record: Any) -> None:
        accuracy = ""
        if record.accuracy is not None:
            accuracy = (
                f"  accuracy {_percent(record.accuracy)}"
                f" (iou {_percent(record.iou_accuracy)},"
                f" oracle {_percent(record.oracle_accuracy)})"
            )
        print(
            f"epoch {record.epoch}/{epochs}  loss {record.loss:.4f}{accuracy}"
            f"  {record.clips_per_s:.1f} clips/s",
            flush=True,
        )

    _log.info(
        "training on %s%s synthetic scenes; checkpoint: %s",
        f"{len(args.det)} det path(s) and " if args.det else "",
        config.synthetic_scenes,
        out,
    )
    result = train(
        config,
        det_paths=args.det,
        checkpoint=out,
        progress=False if _is_quiet(args) else None,
        on_epoch=on_epoch,
    )
    _log.info("wrote %s", out)
    if config.heldout_scenes:
        from emtrack.train.trainer import gap_accuracy

        print("held-out link accuracy by frame gap (network / IoU+Hungarian / true-id Kalman):")
        for stride, acc in gap_accuracy(result.net, result.noise, config).items():
            print(
                f"  gap {stride}: {_percent(acc['accuracy'])} / {_percent(acc['iou_accuracy'])}"
                f" / {_percent(acc['oracle_accuracy'])}",
                flush=True,
            )
    if args.export:
        from emtrack.track import export_weights

        export_weights(result, args.export)
        _log.info("wrote %s", args.export)
    return 0


@dataclass(frozen=True)
class _TrackJob:
    name: str | None  # None for a single det file: its seqinfo.ini names it
    det: Path
    seqinfo: Path
    out: Path


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
        jobs = []
        for sequence in find_sequences(det, args.det_name):
            if sequence.seqinfo is None:
                raise EmtrackInputError(
                    "no seqinfo.ini in this sequence folder (frame rate and length come from it)",
                    sequence.det.parent.parent,
                )
            target = out / f"{sequence.name}.txt"
            jobs.append(_TrackJob(sequence.name, sequence.det, sequence.seqinfo, target))
        return jobs
    if not det.is_file():
        raise EmtrackInputError("det file not found", det)
    if out.is_dir():
        raise EmtrackInputError("--out is a folder; give the result file's name", out)
    if args.seqinfo is not None:
        seqinfo = Path(args.seqinfo)
    else:
        seqinfo = det.parent.parent / "seqinfo.ini"
        if not seqinfo.is_file():
            raise EmtrackInputError(
                f"no seqinfo.ini at {seqinfo} (the default, <det>/../../seqinfo.ini); "
                "give one with --seqinfo",
                det,
            )
    return [_TrackJob(None, det, seqinfo, out)]


def _cmd_track(args: argparse.Namespace) -> int:
    config = tracker_config_from_args(args)
    from emtrack.io import read_mot, read_seqinfo, write_mot
    from emtrack.track import load_model, track_sequence

    jobs = _track_jobs(args)
    # Read and check every input before tracking anything, and track everything before
    # writing anything: bad input leaves no output.
    inputs = [(job, read_mot(job.det), read_seqinfo(job.seqinfo)) for job in jobs]
    model = load_model(args.model)
    runs = []
    for job, detections, seqinfo in inputs:
        run = track_sequence(detections, seqinfo, model=model, config=config, offline=args.offline)
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
        _write_json(Path(args.json), data)
        _log.info("wrote %s", args.json)
    return 0


def _cmd_bench_track(args: argparse.Namespace) -> int:
    config = tracker_config_from_args(args)
    from emtrack.bench.track_bench import TRACKERS, run_track_bench, write_json

    if args.trackers is None:
        trackers = TRACKERS
    else:
        trackers = tuple(name.strip() for name in args.trackers.split(",") if name.strip())
    report = run_track_bench(
        args.roots,
        trackers=trackers,
        det_name=args.det_name,
        model=args.model,
        tracker_config=config,
        seed=args.seed,
        results_dir=args.results_dir,
        repeats=args.repeat,
    )
    for note in report.notes:
        print(note, file=sys.stderr)
    print(report.format_tables())
    if args.json:
        write_json(report, args.json)
        _log.info("wrote %s", args.json)
    return 0


def _demo_scene_config(num_frames: int) -> Any:
    """A moderately hard scene: 10 fps, about 25 people, misses, bursts and false positives."""
    from emtrack.synth import DetectionNoiseConfig, SceneConfig

    return SceneConfig(
        num_frames=num_frames,
        image_width=1280,
        image_height=720,
        frame_rate=10.0,
        mean_objects=25.0,
        noise=DetectionNoiseConfig(
            box_noise_frac=0.05, miss_prob=0.1, burst_start_prob=0.02, fp_per_frame=2.0
        ),
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.frames < 2:
        raise EmtrackInputError(f"--frames must be at least 2, got {args.frames}")
    if args.seed < 0:
        raise EmtrackInputError(f"--seed must be >= 0, got {args.seed}")
    import importlib.util

    from emtrack.eval import EvalSequence, evaluate
    from emtrack.io import MotTable, write_mot
    from emtrack.synth import generate_scene
    from emtrack.track import track_sequence

    start = time.perf_counter()
    config = _demo_scene_config(args.frames)
    scene = generate_scene(config, args.seed)
    info = scene.seqinfo
    # Trackers never see identities: keep frames, boxes and scores only.
    detections = MotTable.from_arrays(
        scene.detections.frames, scene.detections.boxes_xyxy, scene.detections.scores
    )
    print(
        f"scene {info.name}: {info.seq_length} frames at {info.frame_rate:g} fps, "
        f"{info.im_width}x{info.im_height}, {len(set(scene.gt.ids.tolist()))} people, "
        f"{len(scene.gt)} true boxes, {len(detections)} detections "
        f"({int((scene.detections.ids < 0).sum())} false positives)"
    )
    results: dict[str, tuple[MotTable, float, int]] = {}
    run = track_sequence(detections, info, model=args.model)
    results["emtrack"] = (run.result, run.update_seconds, run.num_frames)
    if importlib.util.find_spec("trackers") is not None:
        from emtrack.bench.peers import run_peer

        peer = run_peer("sort", detections, info)
        results["sort (IoU)"] = (peer.result, peer.update_seconds, peer.num_frames)
    else:
        print(
            "the 'trackers' package is not installed, so there is no SORT comparison "
            "(pip install 'emtrack[bench]')",
            file=sys.stderr,
        )

    rows = []
    with tempfile.TemporaryDirectory(prefix="emtrack-demo-") as tmp:
        gt_path = Path(tmp) / "gt.txt"
        write_mot(gt_path, scene.gt)
        for label, (result, seconds, frames) in results.items():
            result_path = Path(tmp) / f"{label.split()[0]}.txt"
            write_mot(result_path, result)
            report = evaluate([EvalSequence(info.name, gt_path, result_path, info)])
            fps = frames / seconds if seconds > 0 else float("inf")
            rows.append((label, report.combined, fps))
    print(_score_table(rows))
    _log.info("done in %.1f s", time.perf_counter() - start)
    return 0


def _score_table(rows: Sequence[tuple[str, Any, float]]) -> str:
    """Rows of (label, TrackingScores, frames/s) as an aligned text table."""
    headers = ["tracker", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "frames/s"]
    body = [
        [
            label,
            f"{s.hota:.2f}",
            f"{s.deta:.2f}",
            f"{s.assa:.2f}",
            f"{s.mota:.2f}",
            f"{s.idf1:.2f}",
            f"{s.idsw:d}",
            f"{fps:.0f}",
        ]
        for label, s, fps in rows
    ]
    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]
    lines = [
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
            ]
        )
        for row in [headers, *body]
    ]
    return "\n".join(lines)


def _write_json(path: Path, data: Any) -> None:
    from emtrack.io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


class _StderrFormatter(logging.Formatter):
    """The CLI's own notes as plain lines; library messages with their level and logger."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.levelno >= logging.WARNING:
            return f"emtrack: {record.levelname.lower()}: {message}"
        if record.name == __name__:
            return message
        return f"[{record.name}] {message}"


@contextlib.contextmanager
def _stderr_logging(verbosity: int) -> Iterator[None]:
    """Route ``emtrack.*`` log records to stderr for the duration of one command.

    Default: the CLI's info notes plus the library's warnings; ``-q`` (``verbosity < 0``):
    warnings and errors only; ``-v`` (``> 0``): everything down to debug. Levels and handlers
    are restored afterwards, so ``main`` can be called repeatedly in one process.
    """
    package, cli = logging.getLogger("emtrack"), logging.getLogger(__name__)
    saved = (package.level, package.propagate, cli.level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    package.addHandler(handler)
    package.propagate = False
    if verbosity > 0:
        package.setLevel(logging.DEBUG)
        cli.setLevel(logging.DEBUG)
    else:
        package.setLevel(logging.WARNING)
        cli.setLevel(logging.WARNING if verbosity < 0 else logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(saved[0])
        package.propagate = saved[1]
        cli.setLevel(saved[2])


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Print a library warning as one line, without the source location of the warn call."""
    print(f"emtrack: warning: {_one_line(str(message))}", file=sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _is_quiet(args: argparse.Namespace) -> bool:
    return getattr(args, "verbosity", 0) < 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``emtrack`` command line.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for bad input or usage, 1 when a file cannot be
        read or written for another reason (permissions, disk), 130 on Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version and usage errors
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_INPUT_ERROR)
    verbosity = getattr(args, "verbosity", 0)
    with _stderr_logging(verbosity), warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.handler(args)
        except (EmtrackInputError, ValueError) as error:
            _log.debug("traceback of the error below", exc_info=True)
            print(f"emtrack: error: {_one_line(str(error))}", file=sys.stderr)
            return EXIT_INPUT_ERROR
        except OSError as error:
            _log.debug("traceback of the error below", exc_info=True)
            message = str(error)
            if error.filename is not None and error.strerror:
                message = f"{error.filename}: {error.strerror}"
            print(f"emtrack: error: {_one_line(message)}", file=sys.stderr)
            return EXIT_OS_ERROR
        except KeyboardInterrupt:
            print("emtrack: interrupted", file=sys.stderr)
            return 130

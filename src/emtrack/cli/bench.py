"""``emtrack bench ...``: benchmarks whose figures go in the README."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from emtrack.cli.options import (
    TRACKER_FLAGS,
    add_config_flags,
    add_det_name_option,
    add_model_option,
    non_negative_float,
    non_negative_int,
    positive_int,
    positive_int_list,
    tracker_config_from_args,
)
from emtrack.cli.output import is_quiet

if TYPE_CHECKING:
    from emtrack.bench.report import Report

_log = logging.getLogger(__name__)


_BENCH_TRACK_EXAMPLES = """\
examples (from the repository root):
  emtrack bench track ../shared/data/MOT15 --json out/bench.json --plot out/bench.png
  emtrack bench track ../shared/data/MOT17 --trackers emtrack,sort,bytetrack --repeat 3
  emtrack bench track ../shared/data/YOLOX-MOT17 --model runs/mine.npz --high-score 0.5
  emtrack bench track ../shared/data/MOT15 --frame-stride 3   # the scenes at 1/3 the frame rate
"""


def register(commands: Any, common: dict[str, Any]) -> None:
    """Add ``bench`` and its sub-commands."""
    bench = commands.add_parser(
        "bench",
        help="benchmarks: 'bench track' (scores, speed vs peers), 'bench memory' (long runs), "
        "'bench train' (training speed), 'bench speed' (frames/s vs detections per frame), "
        "'bench accuracy' (held-out link accuracy of a model)",
        epilog=_BENCH_TRACK_EXAMPLES,
        **common,
    )
    bench_commands = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    bench_track = bench_commands.add_parser(
        "track",
        help="emtrack vs the peer trackers on the same detections",
        description=(
            "Run emtrack (online and offline) and the peer trackers of the 'trackers' package "
            "(and of the optional 'boxmot' package, where it is importable: benchmark only, "
            "AGPL-3.0) on the same detections, score each with TrackEval per ROOT (all of a ROOT's "
            "sequences combined), and print one table per ROOT. A ROOT with "
            "<seq>/det/<det-name> uses those files; a ROOT with ground truth only "
            "(<seq>/gt/gt.txt, MOT17/MOT20 layout) gets a noisy detection stream derived from "
            "the gt (ids removed) and is scored against the original gt. frames/s is frames "
            "divided by the time spent in the trackers' per-frame update calls."
        ),
        epilog=_BENCH_TRACK_EXAMPLES,
        **common,
    )
    bench_track.add_argument(
        "roots",
        nargs="+",
        metavar="ROOT",
        help="folder of sequences with gt/gt.txt and seqinfo.ini (and det/<det-name>)",
    )
    add_det_name_option(bench_track)
    bench_track.add_argument(
        "--trackers",
        metavar="LIST",
        help="comma-separated trackers to run (default: all: emtrack,emtrack-offline,"
        "emtrack-iou,emtrack-iou-offline, the 'trackers' peers sort,bytetrack,ocsort,botsort,"
        "cbiou and, where the optional boxmot package is importable, boxmot-boosttrack,"
        "boxmot-hybridsort,boxmot-ocsort,boxmot-bytetrack,boxmot-botsort)",
    )
    bench_track.add_argument(
        "--seed",
        type=non_negative_int,
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
    bench_track.add_argument(
        "--frame-stride",
        type=positive_int,
        default=1,
        metavar="S",
        help="keep every S-th frame of every sequence (renumbered; frame rate / S), detections "
        "and gt alike: the same scenes at a lower frame rate (default: 1, all frames)",
    )
    add_model_option(bench_track)
    _add_json_option(bench_track)
    bench_track.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw HOTA/IDF1 and frames/s bar charts per ROOT (needs emtrack[viz])",
    )
    bench_track.add_argument(
        "--results-dir",
        metavar="DIR",
        help="keep the derived detections and every tracker's result files here "
        "(default: a temporary folder, removed afterwards)",
    )
    add_config_flags(
        bench_track.add_argument_group("emtrack tracker settings"), TRACKER_FLAGS, "tracker"
    )
    bench_track.set_defaults(handler=_cmd_bench_track)
    bench_memory = bench_commands.add_parser(
        "memory",
        help="peak memory of the online tracker over long synthetic streams",
        description=(
            "Track a synthetic stream (about 20 walking objects, new ones all the time, "
            "generated frame by frame) online for each length in --frames, each in a fresh "
            "Python process, and print peak resident memory, live Python blocks, live tracks "
            "and frames/s; memory that stays flat from the shortest to the longest stream "
            "means nothing accumulates per frame or per track."
        ),
        **common,
    )
    bench_memory.add_argument(
        "--frames",
        type=positive_int_list,
        default=(10_000, 100_000),
        metavar="N,N",
        help="comma-separated stream lengths (default: 10000,100000)",
    )
    bench_memory.add_argument(
        "--objects",
        type=positive_int,
        default=20,
        metavar="K",
        help="objects in view at any time (default: 20)",
    )
    bench_memory.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="S", help="stream seed (default: 0)"
    )
    bench_memory.add_argument(
        "--trace-heap",
        action="store_true",
        help="also trace Python allocations with tracemalloc (about 6x slower)",
    )
    add_model_option(bench_memory)
    _add_json_option(bench_memory, "the runs")
    bench_memory.set_defaults(handler=_cmd_bench_memory)
    bench_train = bench_commands.add_parser(
        "train",
        help="training-step throughput: structured Kalman code vs the dense oracle",
        description=(
            "Time training steps (em_loss forward + backward + Adam step, as 'emtrack train' "
            "runs them) of the structured Kalman filter/smoother and of the dense joint-state "
            "oracle on the same synthetic clips (k objects = k detections per frame), print "
            "clips/s of both and their ratio per k, the same for the loss alone (the part that "
            "differs), and structured clips/s against clips per step. Before timing, each k "
            "checks that both sides give the same float64 loss and gradients; exit status 1 "
            "when they do not."
        ),
        **common,
    )
    bench_train.add_argument(
        "--k",
        dest="ks",
        type=positive_int_list,
        default=(5, 10, 20, 50, 100),
        metavar="K,K",
        help="objects (detections per frame) of the compared clips (default: 5,10,20,50,100)",
    )
    bench_train.add_argument(
        "--clip-length",
        type=positive_int,
        default=10,
        metavar="T",
        help="frames per clip (default: 10)",
    )
    bench_train.add_argument(
        "--batch-size",
        type=positive_int,
        default=16,
        metavar="B",
        help="clips per step in the comparison (default: 16, the trainer's)",
    )
    bench_train.add_argument(
        "--batch-sizes",
        type=positive_int_list,
        default=(1, 4, 16, 64),
        metavar="B,B",
        help="clips per step of the structured batch scaling (default: 1,4,16,64)",
    )
    bench_train.add_argument(
        "--scaling-k",
        type=positive_int,
        default=20,
        metavar="K",
        help="objects per clip of the batch scaling (default: 20)",
    )
    bench_train.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        metavar="N",
        help="timed runs per measurement, the fastest counts (default: 3)",
    )
    bench_train.add_argument(
        "--min-time",
        type=non_negative_float,
        default=1.0,
        metavar="S",
        help="seconds a timed run lasts at least (default: 1)",
    )
    bench_train.add_argument(
        "--dense-max-k",
        type=positive_int,
        default=100,
        metavar="K",
        help="skip the (slow) dense oracle above this k (default: 100)",
    )
    bench_train.add_argument(
        "--float64", action="store_true", help="time double precision (default: float32)"
    )
    bench_train.add_argument(
        "--no-optimizer-step",
        dest="optimizer_step",
        action="store_false",
        help="time forward + backward only, without the Adam step",
    )
    bench_train.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch threads during the run (default: torch's default)",
    )
    bench_train.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="seed of the clips and the initial weights (default: 0)",
    )
    _add_json_option(bench_train)
    bench_train.set_defaults(handler=_cmd_bench_train)
    bench_speed = bench_commands.add_parser(
        "speed",
        help="frames/s against detections per frame: emtrack vs ByteTrack and SORT",
        description=(
            "For each density, generate a synthetic pedestrian stream with about that many "
            "detections per frame (emtrack.synth, wide 1920x1080 view, 30 fps, ids removed), "
            "run emtrack's online tracker, ByteTrack and SORT on it with the per-frame update "
            "timing of 'bench track', and print frames/s and emtrack/ByteTrack per density."
        ),
        **common,
    )
    bench_speed.add_argument(
        "--dets",
        type=positive_int_list,
        default=(10, 30, 100, 300),
        metavar="D,D",
        help="comma-separated detections per frame, one stream each (default: 10,30,100,300)",
    )
    bench_speed.add_argument(
        "--frames",
        type=positive_int,
        default=200,
        metavar="N",
        help="frames per stream (default: 200)",
    )
    bench_speed.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        metavar="N",
        help="track each stream N times per tracker, the fastest counts (default: 1)",
    )
    bench_speed.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="S", help="stream seed (default: 0)"
    )
    add_model_option(bench_speed)
    _add_json_option(bench_speed)
    add_config_flags(
        bench_speed.add_argument_group("emtrack tracker settings"), TRACKER_FLAGS, "tracker"
    )
    bench_speed.set_defaults(handler=_cmd_bench_speed)
    bench_accuracy = bench_commands.add_parser(
        "accuracy",
        help="held-out link accuracy of a model vs IoU and a Kalman filter given the identities",
        description=(
            "Link the detections of held-out synthetic clips frame to frame with the model's "
            "network, with IoU >= 0.3 + Hungarian and with a Kalman filter given the true "
            "identities, and print the accuracies by frame gap and by frame rate (gap 1). "
            "The scenes are seeded as training seeds its held-out scenes (--seed), so they "
            "are never the scenes a model trained with that seed saw; --scenes 6 gives the "
            "gap figures training prints at its end. --gt adds rows by gap on real pedestrian "
            "motion: clips of the detection streams 'emtrack bench track' derives from those "
            "ground truths (its default noise model, seeded by --seed). --det adds rows by gap "
            "on real detection files: every detection gets the identity of the gt box it "
            "matches (Hungarian, IoU >= 0.5, TrackEval's distractor rule), for scoring only."
        ),
        **common,
    )
    add_model_option(bench_accuracy)
    bench_accuracy.add_argument(
        "--scenes",
        type=positive_int,
        default=30,
        metavar="N",
        help="synthetic scenes of 300 frames the clips come from (default: 30)",
    )
    bench_accuracy.add_argument(
        "--clips", type=positive_int, default=48, metavar="N", help="clips per row (default: 48)"
    )
    bench_accuracy.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="the training seed whose held-out scenes to use, and the noise seed of the --gt "
        "streams (default: 0)",
    )
    bench_accuracy.add_argument(
        "--gt",
        nargs="+",
        default=[],
        metavar="ROOT",
        help="folders of sequences with gt/gt.txt and seqinfo.ini (e.g. ../shared/data/MOT17): "
        "also score clips of the detection streams derived from their gt",
    )
    bench_accuracy.add_argument(
        "--det",
        nargs="+",
        default=[],
        metavar="ROOT",
        help="folders of sequences with det/<det-name>, gt/gt.txt and seqinfo.ini (e.g. "
        "../shared/data/DanceTrack): also score clips of those detections, each labelled with "
        "the identity of the gt box it matches (IoU >= 0.5), for scoring only",
    )
    add_det_name_option(bench_accuracy)
    _add_json_option(bench_accuracy)
    bench_accuracy.set_defaults(handler=_cmd_bench_accuracy)


def _add_json_option(parser: argparse.ArgumentParser, what: str = "rows") -> None:
    parser.add_argument(
        "--json", metavar="FILE", help=f"also write {what}, versions, machine and commit as JSON"
    )


def _print_report(report: Report, json_path: str | None) -> None:
    """Print the report's tables; with ``--json``, also write its record there."""
    from emtrack.bench.report import write_json

    print(report.format_table())
    if json_path:
        write_json(report, json_path)
        _log.info("wrote %s", json_path)


def _cmd_bench_memory(args: argparse.Namespace) -> int:
    from emtrack.bench.memory import StreamConfig, run_memory_bench

    report = run_memory_bench(
        args.frames,
        config=StreamConfig(objects=args.objects, seed=args.seed),
        model=args.model,
        trace_heap=args.trace_heap,
    )
    _print_report(report, args.json)
    return 0


def _cmd_bench_track(args: argparse.Namespace) -> int:
    config = tracker_config_from_args(args)
    from emtrack.bench.track_bench import run_track_bench

    if args.plot:  # fail before the benchmark runs, not after
        from emtrack.viz.bench_plot import check_plot_target

        check_plot_target(args.plot)

    trackers = None  # the default list
    if args.trackers is not None:
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
        frame_stride=args.frame_stride,
        progress=False if is_quiet(args) else None,
    )
    for note in report.notes:
        print(note, file=sys.stderr)
    _print_report(report, args.json)
    if args.plot:
        from emtrack.viz.bench_plot import plot_bench

        plot_bench(report, args.plot)
        _log.info("wrote %s", args.plot)
    return 0


def _cmd_bench_train(args: argparse.Namespace) -> int:
    from emtrack.bench.train_bench import TrainBenchConfig, run_train_bench
    from emtrack.train.allocator import reuse_freed_memory

    reuse_freed_memory()  # as emtrack train runs

    config = TrainBenchConfig(
        ks=args.ks,
        clip_length=args.clip_length,
        batch_size=args.batch_size,
        scaling_k=args.scaling_k,
        batch_sizes=args.batch_sizes,
        repeats=args.repeat,
        min_time_s=args.min_time,
        dense_max_k=args.dense_max_k,
        float64=args.float64,
        optimizer_step=args.optimizer_step,
        seed=args.seed,
        threads=args.threads,
    )
    report = run_train_bench(config, progress=_log.info)
    _print_report(report, args.json)
    if not report.all_agree:
        print("emtrack: error: structured and dense losses disagree (see above)", file=sys.stderr)
        return 1
    return 0


def _cmd_bench_speed(args: argparse.Namespace) -> int:
    config = tracker_config_from_args(args)
    from emtrack.bench.speed_bench import run_speed_bench

    report = run_speed_bench(
        args.dets,
        args.frames,
        model=args.model,
        tracker_config=config,
        seed=args.seed,
        repeats=args.repeat,
    )
    _print_report(report, args.json)
    return 0


def _cmd_bench_accuracy(args: argparse.Namespace) -> int:
    from emtrack.bench.accuracy_bench import run_accuracy_bench

    report = run_accuracy_bench(
        args.model,
        scenes=args.scenes,
        clips=args.clips,
        seed=args.seed,
        gt_roots=args.gt,
        det_roots=args.det,
        det_name=args.det_name,
    )
    _print_report(report, args.json)
    return 0

"""``emtrack bench ...``: benchmarks whose figures go in the README."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from emtrack.cli.options import (
    TRACKER_FLAGS,
    add_config_flags,
    add_det_name_option,
    add_model_option,
    tracker_config_from_args,
)

_log = logging.getLogger(__name__)


def register(commands: Any, common: dict[str, Any]) -> None:
    """Add ``bench`` and its sub-commands."""
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
    add_det_name_option(bench_track)
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
    add_model_option(bench_track)
    bench_track.add_argument(
        "--json", metavar="FILE", help="also write rows, versions, machine and commit as JSON"
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

"""``emtrack viz ...``: pictures and videos of tracks, training, the association and benchmarks.

Needs the optional extra ``pip install 'emtrack[viz]'`` (matplotlib, PyAV); without it the
commands stop with exit status 1 and say so.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from emtrack.cli.options import add_model_option, non_negative_int
from emtrack.cli.output import is_quiet
from emtrack.errors import EmtrackInputError

_log = logging.getLogger(__name__)

_TRACKS_EXAMPLES = """\
examples (from the repository root):
  # no data needed: a synthetic scene tracked with the shipped model, errors marked vs its gt
  emtrack viz tracks --out out/tracks.mp4 --sheet out/tracks.png
  # a real sequence: track it, then draw the result on a blank canvas of its size
  # (--images <seq>/img1 draws on its own frames)
  emtrack track --det ../shared/data/MOT15/TUD-Campus/det/det.txt --out out/TUD-Campus.txt
  emtrack viz tracks --result out/TUD-Campus.txt \\
      --seqinfo ../shared/data/MOT15/TUD-Campus/seqinfo.ini \\
      --gt ../shared/data/MOT15/TUD-Campus/gt/gt.txt --out out/tud.mp4
  # PNG frames 1-50 at half size into a folder
  emtrack viz tracks --result out/TUD-Campus.txt \\
      --seqinfo ../shared/data/MOT15/TUD-Campus/seqinfo.ini --frames 1:50 --scale 0.5 \\
      --out out/frames/
"""

_TRAINING_EXAMPLES = """\
examples (from the repository root):
  emtrack train --synthetic 4 --epochs 3 --steps-per-epoch 10 --out runs/tiny.pt
  emtrack viz training runs/tiny.pt --out out/training.png
"""

_ASSOC_EXAMPLES = """\
examples (from the repository root):
  # no data needed: a synthetic scene; white squares mark the true assignment
  emtrack viz assoc --out out/assoc.png
  # detections of a real sequence, frames 20 and 21, with your own model
  emtrack viz assoc --det ../shared/data/MOT15/TUD-Campus/det/det.txt --frame 20 \\
      --model runs/mine.npz --out out/assoc.png
"""

_BENCH_EXAMPLES = """\
examples (from the repository root):
  emtrack bench track ../shared/data/MOT15 --json out/bench.json
  emtrack viz bench out/bench.json --out out/bench.png
  emtrack bench track ../shared/data/MOT15 --plot out/bench.png   # the same in one go
"""


def register(commands: Any, common: dict[str, Any]) -> None:
    """Add ``viz`` and its sub-commands (``tracks``, ``training``, ``assoc``, ``bench``)."""
    viz = commands.add_parser(
        "viz",
        help="pictures and videos: tracks, training curves, the association, benchmarks",
        description=(
            "Draw what emtrack does. Needs the optional extra: pip install 'emtrack[viz]' "
            "(matplotlib and PyAV). Every command works without data on a synthetic scene."
        ),
        epilog="Run 'emtrack viz PICTURE --help' for each one's options and examples.",
        **common,
    )
    pictures = viz.add_subparsers(dest="viz_command", metavar="PICTURE", required=True)
    _register_tracks(pictures, common)
    _register_training(pictures, common)
    _register_assoc(pictures, common)
    _register_bench(pictures, common)


def _register_tracks(pictures: Any, common: dict[str, Any]) -> None:
    tracks = pictures.add_parser(
        "tracks",
        help="tracks drawn over the frames: MP4 or PNG frames, and a contact sheet",
        description=(
            "Draw a result file: one colour per identity, ids, motion trails (the last "
            "--trail bottom centres), over the sequence's images or a blank canvas of its "
            "size. With --gt, false positives (red), misses (yellow dashed gt boxes) and "
            "identity switches (magenta) are marked (IoU >= 0.5 matching per frame, as CLEAR "
            "MOT). Without --result and --seqinfo, a synthetic scene is generated, tracked "
            "with --model and compared with its own ground truth."
        ),
        epilog=_TRACKS_EXAMPLES,
        **common,
    )
    tracks.add_argument("--result", metavar="RESULT", help="MOTChallenge result file to draw")
    tracks.add_argument(
        "--seqinfo", metavar="SEQINFO", help="the sequence's seqinfo.ini (size, frame rate)"
    )
    tracks.add_argument(
        "--images",
        metavar="DIR",
        help="the sequence's img1/ folder (000001.jpg ...); default: a blank canvas",
    )
    tracks.add_argument(
        "--gt", metavar="GT", help="ground truth: mark false positives, misses, id switches"
    )
    tracks.add_argument(
        "--out",
        metavar="FILE.mp4|DIR",
        help="an .mp4 video, or a folder for one 000001.png per frame",
    )
    tracks.add_argument(
        "--sheet", metavar="FILE.png", help="also a one-page contact sheet of 9 frames (< 300 KB)"
    )
    tracks.add_argument(
        "--frames",
        metavar="A:B",
        help="frames A to B (1-based, inclusive; A: or :B open-ended; default: all)",
    )
    tracks.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="F",
        help="video size relative to the images, rounded to even pixels (default: 1.0)",
    )
    tracks.add_argument(
        "--trail", type=int, default=15, metavar="N", help="trail length in frames (default: 15)"
    )
    synthetic = tracks.add_argument_group("synthetic scene (without --result/--seqinfo)")
    synthetic.add_argument(
        "--synthetic-frames",
        type=int,
        default=100,
        metavar="N",
        help="frames of the scene (default: 100)",
    )
    synthetic.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="S", help="scene seed (default: 0)"
    )
    add_model_option(synthetic)
    tracks.set_defaults(handler=_cmd_tracks)


def _register_training(pictures: Any, common: dict[str, Any]) -> None:
    training = pictures.add_parser(
        "training",
        help="loss and association accuracy per epoch, with both baselines",
        description=(
            "Plot a training run: the loss, and the held-out link accuracy of the network "
            "next to IoU + Hungarian and a Kalman filter given the true identities, per "
            "epoch. Reads the history stored in a checkpoint of 'emtrack train --out', or a "
            "JSON file holding a list of epoch records (or an object with a 'history' list)."
        ),
        epilog=_TRAINING_EXAMPLES,
        **common,
    )
    training.add_argument("source", metavar="CHECKPOINT_OR_LOG", help="a .pt checkpoint or .json")
    training.add_argument("--out", required=True, metavar="FILE.png", help="the picture")
    training.add_argument("--title", help="figure title (default: the file name)")
    training.set_defaults(handler=_cmd_training)


def _register_assoc(pictures: Any, common: dict[str, Any]) -> None:
    assoc = pictures.add_parser(
        "assoc",
        help="the learned association matrix (with dustbin) of two frames, next to IoU",
        description=(
            "Score the detections of frame F+1 against those of frame F with the association "
            "network, normalise with Sinkhorn (dustbin row and column, as in training) and "
            "draw the assignment next to the IoU matrix and the boxes. Without --det: a "
            "synthetic scene, with the true assignment marked."
        ),
        epilog=_ASSOC_EXAMPLES,
        **common,
    )
    add_model_option(assoc)
    assoc.add_argument("--det", metavar="DET", help="a det file (default: a synthetic scene)")
    assoc.add_argument(
        "--seqinfo",
        metavar="SEQINFO",
        help="seqinfo.ini of --det (default: <det>/../../seqinfo.ini)",
    )
    assoc.add_argument(
        "--frame",
        type=int,
        metavar="F",
        help="frame F; frames F and F+1 are shown (default: 1, synthetic: 10)",
    )
    assoc.add_argument(
        "--min-score",
        type=float,
        metavar="S",
        help="only detections with at least this score (default: the tracker's high score)",
    )
    assoc.add_argument(
        "--max-boxes",
        type=int,
        default=20,
        metavar="N",
        help="at most N detections per frame, the highest scores (default: 20)",
    )
    assoc.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="synthetic scene seed (default: 0)",
    )
    assoc.add_argument("--out", required=True, metavar="FILE.png", help="the picture")
    assoc.set_defaults(handler=_cmd_assoc)


def _register_bench(pictures: Any, common: dict[str, Any]) -> None:
    bench = pictures.add_parser(
        "bench",
        help="bar charts of a benchmark JSON: HOTA/IDF1 and frames/s per tracker",
        description=(
            "Plot the rows of a benchmark JSON (written by 'emtrack bench ... --json'): per "
            "ROOT, HOTA and IDF1 bars and frames/s bars, one per tracker."
        ),
        epilog=_BENCH_EXAMPLES,
        **common,
    )
    bench.add_argument("source", metavar="BENCH.json", help="benchmark JSON")
    bench.add_argument("--out", required=True, metavar="FILE.png", help="the picture")
    bench.add_argument("--title", help="figure title (default: the file name)")
    bench.set_defaults(handler=_cmd_bench)


def _progress(args: argparse.Namespace) -> bool | None:
    """Progress bars: off with -q, else when stderr is a terminal."""
    return False if is_quiet(args) else None


def _cmd_tracks(args: argparse.Namespace) -> int:
    from emtrack.io import read_mot, read_seqinfo
    from emtrack.viz._common import parse_frame_range
    from emtrack.viz.tracks import draw_tracks

    if args.out is None and args.sheet is None:
        raise EmtrackInputError("nothing to write: give --out (FILE.mp4 or DIR) and/or --sheet")
    if (args.result is None) != (args.seqinfo is None):
        raise EmtrackInputError("give --result and --seqinfo together (or neither: synthetic)")
    if args.scale <= 0:
        raise EmtrackInputError(f"--scale must be > 0, got {args.scale}")
    if args.result is None:
        if args.images is not None or args.gt is not None:
            raise EmtrackInputError("--images and --gt need --result and --seqinfo")
        if args.synthetic_frames < 2:
            raise EmtrackInputError(f"--synthetic-frames must be >= 2, got {args.synthetic_frames}")
        from emtrack.viz.synthetic import synthetic_example

        example = synthetic_example(args.synthetic_frames, args.seed, args.model)
        result, gt, seqinfo = example.result, example.gt, example.seqinfo
    else:
        result, seqinfo = read_mot(args.result), read_seqinfo(args.seqinfo)
        gt = None if args.gt is None else read_mot(args.gt)
    frames = parse_frame_range(args.frames, seqinfo.seq_length)
    summary = draw_tracks(
        result,
        seqinfo,
        args.out,
        sheet=args.sheet,
        images=args.images,
        gt=gt,
        frames=frames,
        scale=args.scale,
        trail_frames=args.trail,
        progress=_progress(args),
    )
    if summary.counts is not None:
        c = summary.counts
        _log.info(
            "against the gt: %d matches, %d false positives, %d misses, %d identity switches",
            c["matches"],
            c["false_positives"],
            c["misses"],
            c["id_switches"],
        )
    for path in (summary.out, summary.sheet):
        if path is not None:
            _log.info("wrote %s", path)
    return 0


def _cmd_training(args: argparse.Namespace) -> int:
    from emtrack.viz.training import load_history, plot_training

    history = load_history(args.source)
    plot_training(history, args.out, args.title or Path(args.source).name)
    _log.info("wrote %s", args.out)
    return 0


def _cmd_assoc(args: argparse.Namespace) -> int:
    from emtrack.track import TrackerConfig, load_model
    from emtrack.viz.assoc import association_view, frame_pair, plot_association

    if args.max_boxes < 1:
        raise EmtrackInputError(f"--max-boxes must be >= 1, got {args.max_boxes}")
    weights = load_model(args.model)
    min_score = TrackerConfig().high_score if args.min_score is None else args.min_score
    if args.det is None:
        if args.seqinfo is not None:
            raise EmtrackInputError("--seqinfo needs --det")
        from emtrack.viz.synthetic import synthetic_scene

        scene = synthetic_scene(num_frames=30, seed=args.seed, mean_objects=6.0)
        detections, seqinfo, by_identity = scene.detections, scene.seqinfo, True
        frame = 10 if args.frame is None else args.frame
        title = f"synthetic scene (seed {args.seed}), model: {args.model or 'shipped'}"
    else:
        from emtrack.io import read_mot, read_seqinfo

        det = Path(args.det)
        seqinfo_path = Path(args.seqinfo) if args.seqinfo else det.parent.parent / "seqinfo.ini"
        if not seqinfo_path.is_file():
            raise EmtrackInputError(
                f"no seqinfo.ini at {seqinfo_path}; give one with --seqinfo", det
            )
        detections, seqinfo, by_identity = read_mot(det), read_seqinfo(seqinfo_path), False
        frame = 1 if args.frame is None else args.frame
        title = f"{seqinfo.name} ({det.name}), model: {args.model or 'shipped'}"
    ref, cur, ref_ids, cur_ids = frame_pair(
        detections, seqinfo, frame, min_score, args.max_boxes, by_identity
    )
    size = (seqinfo.im_width, seqinfo.im_height) if seqinfo.im_width and seqinfo.im_height else None
    view = association_view(
        weights,
        ref,
        cur,
        1.0 / seqinfo.frame_rate,
        frame,
        ref_ids=ref_ids if by_identity else None,
        cur_ids=cur_ids if by_identity else None,
        image_size=size,  # type: ignore[arg-type]
    )
    plot_association(view, args.out, title)
    _log.info("wrote %s", args.out)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from emtrack.viz.bench_plot import plot_bench

    plot_bench(args.source, args.out, args.title or Path(args.source).name)
    _log.info("wrote %s", args.out)
    return 0

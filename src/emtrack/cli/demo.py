"""``emtrack demo``: track a synthetic scene and score it, with no data needed."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from emtrack.cli.options import add_model_option
from emtrack.cli.output import score_table
from emtrack.errors import EmtrackInputError

_log = logging.getLogger(__name__)


_DEMO_EXAMPLES = """\
examples (from the repository root):
  emtrack demo
  emtrack demo --frames 600 --seed 3 --model runs/mine.npz   # a model from 'emtrack train'
  emtrack viz tracks --sheet out/demo.png   # see a synthetic scene's tracks
"""


def register(commands: Any, common: dict[str, Any]) -> None:
    """Add the ``demo`` sub-command."""
    demo = commands.add_parser(
        "demo",
        help="track a synthetic scene and score it (no data needed)",
        description=(
            "Generate a synthetic street scene with noisy detections, track it with the "
            "shipped model and with SORT (plain IoU association, if the 'trackers' package is "
            "installed), and print both scores."
        ),
        epilog=_DEMO_EXAMPLES,
        **common,
    )
    demo.add_argument(
        "--frames", type=int, default=300, metavar="N", help="frames of the scene (default: 300)"
    )
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="scene seed (default: 0)")
    add_model_option(demo)
    demo.set_defaults(handler=_cmd_demo)


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
    print(score_table(rows))
    _log.info("done in %.1f s", time.perf_counter() - start)
    return 0

"""``emtrack train``: self-supervised training of the association network."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from emtrack.cli.options import TRAIN_FLAGS, add_config_flags, train_config_from_args
from emtrack.cli.output import is_quiet, percent
from emtrack.cli.threads import TRAINING_THREADS, add_threads_option, thread_limit
from emtrack.errors import EmtrackInputError

_log = logging.getLogger(__name__)


_TRAIN_EXAMPLES = """\
examples (from the repository root):
  # your own detections plus synthetic scenes, starting from the shipped model's weights;
  # export weights for the tracker, then track with them
  emtrack train --det ../shared/data/YOLOX-MOT17 --out runs/mine.pt --export runs/mine.npz
  emtrack track --det ../shared/data/YOLOX-MOT17 --out out/yolox/ --model runs/mine.npz
  # a tiny run on synthetic scenes only, then plot it
  emtrack train --synthetic 4 --epochs 3 --steps-per-epoch 10 --out runs/tiny.pt
  emtrack viz training runs/tiny.pt --out out/training.png
  # from random weights: the shipped model's own recipe
  emtrack train --init scratch --det ../shared/data/MOT15 --epochs 6 --out runs/scratch.pt
  # checkpoint every 50 steps; after a crash or Ctrl-C, continue where it stopped
  emtrack train --synthetic 24 --checkpoint-every 50 --out runs/long.pt
  emtrack train --out runs/long.pt --resume
  # data-parallel on 4 processes (PyTorch DDP; see the README for several machines)
  torchrun --standalone --nproc_per_node=4 -m emtrack train --synthetic 24 --out runs/ddp.pt
"""


def register(commands: Any, common: dict[str, Any]) -> None:
    """Add the ``train`` sub-command."""
    train = commands.add_parser(
        "train",
        help="train the association network (self-supervised, no identities needed)",
        description=(
            "Train the association network by EM on detection files and/or synthetic scenes. "
            "Identities in the files are never read. Prints one line per epoch; the "
            "checkpoint is written (atomically) after every epoch and every "
            "--checkpoint-every steps. Ctrl-C (or SIGTERM) stops at the next step, writes the "
            "checkpoint and exits with status 130 (143); --resume continues the run so that "
            "it ends with exactly the weights of an uninterrupted one. Under torchrun the run "
            "is data-parallel (DDP); only rank 0 writes and prints. At the end the network "
            "is compared with IoU+Hungarian (held-out synthetic clips; the links IoU is sure "
            "of in the --det files): a network that links worse gets a WARNING, and the "
            "verdict is recorded in the checkpoint and the export. Needs PyTorch: pip "
            "install 'emtrack[train]'."
        ),
        epilog=_TRAIN_EXAMPLES,
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
    add_config_flags(train, TRAIN_FLAGS, "train")
    train.add_argument("--out", required=True, metavar="CKPT.pt", help="checkpoint to write")
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="CKPT.pt",
        help="continue the run of a checkpoint (default: the --out checkpoint); its config is "
        "used, and only --epochs, --checkpoint-every and --device may change; without --det, "
        "the detection paths recorded in it are used",
    )
    train.add_argument(
        "--export",
        metavar="WEIGHTS.npz",
        help="also write the trained weights for the tracker (use with 'emtrack track --model')",
    )
    add_threads_option(train, TRAINING_THREADS)
    train.set_defaults(handler=_cmd_train)


def _explicit_train_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given on the command line (the others are left out)."""
    values = {flag.field: getattr(args, f"train.{flag.field}") for flag in TRAIN_FLAGS}
    return {name: value for name, value in values.items() if value is not None}


def _cmd_train(args: argparse.Namespace) -> int:
    with thread_limit(args.threads, torch=True):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from emtrack.train import train
    from emtrack.train.allocator import reuse_freed_memory
    from emtrack.train.checkpoint import check_resumable, resume_config
    from emtrack.train.distributed import env_rank
    from emtrack.train.trainer import TrainingInterrupted
    from emtrack.train.verdict import TrainingVerdictWarning

    out = Path(args.out)
    for option, value in (("--out", args.out), ("--export", args.export)):
        if value is not None and (value.endswith(("/", os.sep)) or Path(value).is_dir()):
            name = "runs/mine.pt" if option == "--out" else "runs/mine.npz"
            raise EmtrackInputError(
                f"{option} is a folder; give the file's name, e.g. {option} {name}", value
            )
    main_process = env_rank() == 0
    reuse_freed_memory()
    resume: Path | None = None
    if args.resume is not None:
        from emtrack.model.checkpoint import load_checkpoint

        resume = out if args.resume is True else Path(args.resume)
        saved = load_checkpoint(resume)
        config = resume_config(saved["config"], _explicit_train_fields(args))
        check_resumable(saved, config, resume)
        del saved
    else:
        config = train_config_from_args(args)
        if out.exists() and main_process:
            _log.warning("%s exists and will be overwritten (use --resume to continue it)", out)
    epochs = config.epochs
    _note_short_scratch_run(config, main_process and resume is None)

    def on_epoch(record: Any) -> None:
        accuracy = ""
        if record.accuracy is not None:
            accuracy = (
                f"  accuracy {percent(record.accuracy)}"
                f" (iou {percent(record.iou_accuracy)},"
                f" oracle {percent(record.oracle_accuracy)})"
            )
        print(
            f"epoch {record.epoch}/{epochs}  loss {record.loss:.4f}{accuracy}"
            f"  {record.clips_per_s:.1f} clips/s",
            flush=True,
        )

    if main_process:
        _log.info(
            "%s on %s%s synthetic scenes; checkpoint: %s",
            f"resuming {resume}" if resume is not None else "training",
            f"{len(args.det)} det path(s) and " if args.det else "",
            config.synthetic_scenes,
            out,
        )
    try:
        with warnings.catch_warnings():
            # The verdict is reported below as a block, not as a one-line warning.
            warnings.simplefilter("ignore", TrainingVerdictWarning)
            result = train(
                config,
                det_paths=args.det,
                checkpoint=out,
                progress=False if is_quiet(args) else None,
                on_epoch=on_epoch,
                resume=resume,
            )
    except TrainingInterrupted as stop:
        if main_process:
            where = (
                f"checkpoint of step {stop.step} written to {stop.checkpoint}; continue with: "
                f"emtrack train --out {stop.checkpoint} --resume"
                if stop.checkpoint is not None
                else "no checkpoint written"
            )
            print(
                f"emtrack: interrupted after step {stop.step} of {stop.total_steps}; {where}",
                file=sys.stderr,
                flush=True,
            )
        return stop.exit_status
    if not result.is_main:
        return 0
    _log.info("wrote %s", out)
    verdict = result.verdict
    if verdict is not None:
        print_verdict_figures(verdict)
    if args.export:
        from emtrack.track import export_weights

        export_weights(result, args.export)
        _log.info("wrote %s", args.export)
    if verdict is not None:
        report_verdict(verdict, out, args.export)
    return 0


def _note_short_scratch_run(config: Any, starting: bool) -> None:
    """Warn before a run from random weights that is too short to be likely to train."""
    from emtrack.train.init import SCRATCH_MIN_STEPS

    steps = config.epochs * config.steps_per_epoch
    if starting and config.init == "scratch" and steps < SCRATCH_MIN_STEPS:
        _log.warning(
            "--init scratch with %d optimiser steps: from random weights, runs of fewer than "
            "%d steps often end linking worse than IoU (the verdict at the end will say); "
            "without --init scratch training starts from the shipped model's weights",
            steps,
            SCRATCH_MIN_STEPS,
        )


def print_verdict_figures(verdict: Any) -> None:
    """The held-out accuracy by gap and the agreement on the training detections (stdout)."""
    if verdict.gaps:
        print("held-out link accuracy by frame gap (network / IoU+Hungarian / true-id Kalman):")
        for gap, acc in verdict.gaps.items():
            print(
                f"  gap {gap}: {percent(acc['accuracy'])} / {percent(acc['iou_accuracy'])}"
                f" / {percent(acc['oracle_accuracy'])}"
            )
    if verdict.own_agreement is not None:
        print(
            f"training detections: the network makes {percent(verdict.own_agreement)} of the "
            f"{verdict.own_links} links IoU makes with confidence"
        )
    sys.stdout.flush()


def report_verdict(verdict: Any, checkpoint: Path, export: str | None) -> None:
    """One verdict line, or a WARNING block on stderr when the network links worse than IoU."""
    if verdict.ok is None:
        _log.info("verdict: none (no held-out scenes and no detection files to judge on)")
        return
    if verdict.ok:
        _log.info("verdict: ok, the network links at least as well as IoU+Hungarian")
        return
    files = f"{checkpoint} and {export}" if export else str(checkpoint)
    rule = "=" * 78
    lines = [
        rule,
        "WARNING: the trained network links WORSE than IoU+Hungarian:",
        *(f"  - {problem}" for problem in verdict.problems),
        "Tracking with this model will be worse than 'emtrack track --association iou'.",
        "Train longer (more --epochs or --steps-per-epoch), or start from the shipped",
        "model's weights (--init auto, the default), or keep tracking with the shipped model.",
        f"This verdict is recorded in {files}; 'emtrack track --model' warns about it.",
        rule,
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)

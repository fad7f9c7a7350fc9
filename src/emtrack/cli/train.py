"""``emtrack train``: self-supervised training of the association network."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from emtrack.cli.options import TRAIN_FLAGS, add_config_flags, train_config_from_args
from emtrack.cli.output import is_quiet, percent
from emtrack.errors import EmtrackInputError

_log = logging.getLogger(__name__)


def register(commands: Any, common: dict[str, Any]) -> None:
    """Add the ``train`` sub-command."""
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
    add_config_flags(train, TRAIN_FLAGS, "train")
    train.add_argument("--out", required=True, metavar="CKPT.pt", help="checkpoint to write")
    train.add_argument(
        "--export",
        metavar="WEIGHTS.npz",
        help="also write the trained weights for the tracker (use with 'emtrack track --model')",
    )
    train.set_defaults(handler=_cmd_train)


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
                f"  accuracy {percent(record.accuracy)}"
                f" (iou {percent(record.iou_accuracy)},"
                f" oracle {percent(record.oracle_accuracy)})"
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
        progress=False if is_quiet(args) else None,
        on_epoch=on_epoch,
    )
    _log.info("wrote %s", out)
    if config.heldout_scenes:
        from emtrack.train.trainer import gap_accuracy

        print("held-out link accuracy by frame gap (network / IoU+Hungarian / true-id Kalman):")
        for stride, acc in gap_accuracy(result.net, result.noise, config).items():
            print(
                f"  gap {stride}: {percent(acc['accuracy'])} / {percent(acc['iou_accuracy'])}"
                f" / {percent(acc['oracle_accuracy'])}",
                flush=True,
            )
    if args.export:
        from emtrack.track import export_weights

        export_weights(result, args.export)
        _log.info("wrote %s", args.export)
    return 0

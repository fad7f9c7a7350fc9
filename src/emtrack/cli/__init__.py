"""The ``emtrack`` command line: a thin layer over the public API.

Sub-commands: ``train``, ``track``, ``eval``, ``bench ...``, ``demo`` and ``viz ...``
(``emtrack COMMAND --help`` for each, with examples). Every option maps by hand to one field of
a config dataclass
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
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from emtrack import __version__
from emtrack.cli import bench, demo, track, train, viz
from emtrack.cli.options import (
    HelpFormatter,
    tracker_config_from_args,
    train_config_from_args,
    verbosity_parent,
)
from emtrack.cli.output import one_line, show_warning, stderr_logging
from emtrack.cli.parser import Parser
from emtrack.errors import EmtrackInputError

__all__ = ["build_parser", "main", "tracker_config_from_args", "train_config_from_args"]

_log = logging.getLogger(__name__)

#: Exit status for bad input and usage errors (argparse's own convention).
EXIT_INPUT_ERROR = 2
#: Exit status when the environment fails (a file cannot be written, ...).
EXIT_OS_ERROR = 1

#: Modules with a ``register(commands, common)`` that adds their sub-commands, in help order.
_COMMAND_MODULES: tuple[Any, ...] = (train, track, bench, demo, viz)


_EXAMPLES = """\
examples (from the repository root; ../shared/data holds the MOTChallenge sequences):
  emtrack demo                          # no data needed: track a synthetic scene
  emtrack track --det ../shared/data/MOT15/TUD-Campus/det/det.txt --out out/TUD-Campus.txt
  emtrack track --det ../shared/data/MOT15 --out out/ --offline   # every sequence of a folder
  emtrack eval --gt ../shared/data/MOT15 --results out/
  emtrack train --det ../shared/data/YOLOX-MOT17 --out runs/mine.pt --export runs/mine.npz
  emtrack viz tracks --out out/tracks.mp4 --sheet out/tracks.png
  emtrack bench track ../shared/data/MOT15 --plot out/bench.png

Run 'emtrack COMMAND --help' for the options and examples of a command.
exit status: 0 ok, 2 bad input or usage, 1 environment error (a file that cannot be written,
a missing optional package), 130 interrupted (Ctrl-C).
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``emtrack`` argument parser (sub-commands set ``handler``)."""
    verbosity = verbosity_parent()
    common: dict[str, Any] = {"parents": [verbosity], "formatter_class": HelpFormatter}
    parser = Parser(
        prog="emtrack",
        description="Self-supervised multi-object tracking with a learned association network.",
        epilog=_EXAMPLES,
        **common,
    )
    parser.add_argument("--version", action="version", version=f"emtrack {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for module in _COMMAND_MODULES:
        module.register(commands, common)
    return parser


#: The extra that installs each optional top-level module (``pip install 'emtrack[EXTRA]'``).
EXTRA_OF_MODULE: dict[str, tuple[str, str]] = {
    "torch": ("train", "PyTorch"),
    "trackers": ("bench", "the 'trackers' package"),
    "matplotlib": ("viz", "matplotlib"),
    "av": ("viz", "PyAV"),
}


def missing_extra_message(error: ImportError, args: argparse.Namespace) -> str:
    """One line naming the command, the missing package and the extra that installs it."""
    module = (error.name or "").split(".")[0]
    if module not in EXTRA_OF_MODULE:
        return one_line(str(error))
    extra, package = EXTRA_OF_MODULE[module]
    words = [getattr(args, "command", None)]
    words += [getattr(args, key, None) for key in ("bench_command", "viz_command")]
    command = " ".join(["emtrack", *(w for w in words if w)])
    return (
        f"{command} needs {package}, which is not installed: pip install 'emtrack[{extra}]' "
        "(or 'emtrack[dev]' for everything)"
    )


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
    with stderr_logging(verbosity), warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return args.handler(args)
        except (EmtrackInputError, ValueError) as error:
            _log.debug("traceback of the error below", exc_info=True)
            print(f"emtrack: error: {one_line(str(error))}", file=sys.stderr)
            return EXIT_INPUT_ERROR
        except ImportError as error:  # a missing optional package (emtrack[viz], ...)
            _log.debug("traceback of the error below", exc_info=True)
            print(f"emtrack: error: {missing_extra_message(error, args)}", file=sys.stderr)
            return EXIT_OS_ERROR
        except OSError as error:
            _log.debug("traceback of the error below", exc_info=True)
            message = str(error)
            if error.filename is not None and error.strerror:
                message = f"{error.filename}: {error.strerror}"
            print(f"emtrack: error: {one_line(message)}", file=sys.stderr)
            return EXIT_OS_ERROR
        except KeyboardInterrupt:
            print("emtrack: interrupted", file=sys.stderr)
            return 130

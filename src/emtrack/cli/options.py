"""Options shared by several sub-commands: config flags, ``--model``, ``-q``/``-v``.

Every option maps by hand to one field of a config dataclass
(:class:`~emtrack.train.TrainConfig`, :class:`~emtrack.track.TrackerConfig`) or to one argument
of a library call. An option that is left out is not passed at all, so the dataclass default
applies: defaults live in one place, and ``--help`` reads them from there. The choices of the
training options are the values of :class:`~emtrack.train.TrainConfig`'s ``Literal`` field
types (``typing.get_args``), read from the torch-free :mod:`emtrack.train.config`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from emtrack.model.choices import Association, Objective
from emtrack.train.config import INIT_CHOICES, LrSchedule

__all__ = [
    "BENCHMARKS",
    "TRACKER_FLAGS",
    "TRAIN_FLAGS",
    "ConfigFlag",
    "HelpFormatter",
    "add_config_flags",
    "add_det_name_option",
    "add_model_option",
    "non_negative_float",
    "non_negative_int",
    "positive_int",
    "positive_int_list",
    "tracker_config_from_args",
    "train_config_from_args",
    "verbosity_parent",
]

# Choices of ``--score-norm`` (tests check this equals emtrack.track.SCORE_NORMALISATIONS).
SCORE_NORMALISATIONS: tuple[str, ...] = ("auto", "rank", "none")
# Choices of ``--output-boxes`` (tests check this equals emtrack.track.OUTPUT_BOXES).
OUTPUT_BOXES: tuple[str, ...] = ("auto", "filtered", "detections")
# Choices of ``--measurement-noise`` (tests check this equals emtrack.track.MEASUREMENT_NOISES).
MEASUREMENT_NOISES: tuple[str, ...] = ("score", "constant")
# Choices of ``--camera-model`` and ``--noise`` (tests check they equal the library's).
CAMERA_MODELS: tuple[str, ...] = ("auto", "shift", "none")
NOISES: tuple[str, ...] = ("fit", "model")
# Choices of ``track --association`` (tests check this equals emtrack.track.ASSOCIATIONS).
TRACK_ASSOCIATIONS: tuple[str, ...] = ("learned", "iou")


# Choices of ``eval --benchmark``; tests check this equals emtrack.eval.BENCHMARKS.
BENCHMARKS: tuple[str, ...] = ("MOT15", "MOT16", "MOT17", "MOT20")


@dataclass(frozen=True)
class ConfigFlag:
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


def _whole_number(text: str, minimum: int) -> int:
    """Parse a whole number >= ``minimum``; argparse reports a bad one as a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number >= {minimum}, got {text!r}"
        ) from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """Parse a whole number >= 0 (seeds)."""
    return _whole_number(text, 0)


def positive_int(text: str) -> int:
    """Parse a whole number >= 1 (counts, sizes, workers)."""
    return _whole_number(text, 1)


def positive_int_list(text: str) -> tuple[int, ...]:
    """Parse ``"10000,100000"``: one or more whole numbers >= 1."""
    parts = [part.strip().replace("_", "") for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected one or more whole numbers >= 1")
    return tuple(positive_int(part) for part in parts)


def _finite_number(text: str, zero_allowed: bool) -> float:
    """Parse a finite number >= 0 (or > 0); argparse reports a bad one as a usage error."""
    bound = ">= 0" if zero_allowed else "> 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number {bound}, got {text!r}") from None
    above = value >= 0.0 if zero_allowed else value > 0.0
    if not (above and value != float("inf")):  # NaN fails the comparison
        raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """Parse a finite number >= 0."""
    return _finite_number(text, zero_allowed=True)


def positive_float(text: str) -> float:
    """Parse a finite number > 0 (frame rates)."""
    return _finite_number(text, zero_allowed=False)


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


TRACKER_FLAGS: tuple[ConfigFlag, ...] = (
    ConfigFlag(
        "--high-score",
        "high_score",
        "detections at or above this score take part in the first association stage and may "
        "start tracks",
        float,
    ),
    ConfigFlag(
        "--low-score",
        "low_score",
        "detections in [low-score, high-score) only extend confirmed tracks (second stage); "
        "below it they are ignored",
        float,
    ),
    ConfigFlag("--new-track-score", "new_track_score", "minimum score to start a track", float),
    ConfigFlag(
        "--score-norm",
        "score_normalisation",
        "what the score thresholds compare: auto (the probability that a detection is a real "
        "object, fitted to each file without labels; works for probabilities, logits, raw or "
        "0/1 scores), rank (each score's rank in the file: the fraction of its detections "
        "scoring at most as high) or none (the scores as given)",
        str,
        choices=SCORE_NORMALISATIONS,
    ),
    ConfigFlag(
        "--output-boxes",
        "output_boxes",
        "boxes of the online result: filtered (each track's Kalman estimate after its "
        "detection, as SORT reports) or detections (the matched detections' own boxes); "
        "--offline always writes its smoothed boxes",
        str,
        choices=OUTPUT_BOXES,
    ),
    ConfigFlag(
        "--measurement-noise",
        "measurement_noise",
        "position variance of a detection in the online Kalman filter (updates and new "
        "tracks): score (the model's r h^2 divided by the detection's score, clipped to "
        "[0.1, 1]: less confident detections move their tracks less) or constant (r h^2 for "
        "all)",
        str,
        choices=MEASUREMENT_NOISES,
    ),
    ConfigFlag(
        "--camera-model",
        "camera_model",
        "whether the camera-motion estimate is applied: auto (chosen per file by the "
        "likelihood of its tracks with and without it), shift (always) or none (never)",
        str,
        choices=CAMERA_MODELS,
    ),
    ConfigFlag(
        "--noise",
        "noise",
        "the motion model's noise constants: fit (fitted to each file, per box coordinate, "
        "by the likelihood of its tracks) or model (the model's own)",
        str,
        choices=NOISES,
    ),
    ConfigFlag(
        "--association",
        "association",
        "how (detection, track) pairs are scored, online and when re-linking: learned (the "
        "association network) or iou (IoU of the track's predicted box and the detection, "
        "gated at --iou-gate / --low-iou-gate; everything else unchanged)",
        str,
        choices=TRACK_ASSOCIATIONS,
    ),
    ConfigFlag(
        "--iou-gate",
        "iou_gate",
        "with --association iou: least IoU of a first-stage or re-linked pair",
        float,
    ),
    ConfigFlag(
        "--low-iou-gate",
        "low_iou_gate",
        "with --association iou: least IoU of a second-stage (low-score) pair",
        float,
    ),
    ConfigFlag(
        "--camera-motion-s",
        "camera_motion_s",
        "camera-motion compensation from the tracks themselves: time constant of the running "
        "estimate of how much the camera moves (a static camera gets no shift); 0 turns it off",
        float,
        metavar="SECONDS",
    ),
    ConfigFlag(
        "--min-hits", "min_hits", "consecutive matched frames before a track is reported", int
    ),
    ConfigFlag(
        "--max-lost-s",
        "max_lost_s",
        "seconds a lost track is kept for recovery",
        float,
        metavar="SECONDS",
    ),
    ConfigFlag(
        "--match-margin",
        "match_margin",
        "a pair is matched when its logit beats the learned dustbin logit by this margin",
        float,
    ),
    ConfigFlag(
        "--low-match-margin",
        "low_match_margin",
        "the same margin for the second (low-score) stage",
        float,
    ),
    ConfigFlag(
        "--max-gap-fill-s",
        "max_gap_fill_s",
        "offline mode: fill gaps of up to this many seconds with interpolated boxes",
        float,
        metavar="SECONDS",
    ),
    ConfigFlag(
        "--max-gap-fill",
        "max_gap_fill",
        "offline mode: the same limit in frames, replacing --max-gap-fill-s when given",
        int,
        metavar="FRAMES",
    ),
    ConfigFlag(
        "--relink-max-s",
        "relink_max_s",
        "offline mode: re-link fragments separated by up to this many seconds",
        float,
        metavar="SECONDS",
    ),
    ConfigFlag(
        "--relink-margin",
        "relink_margin",
        "offline mode: logit margin over the dustbin needed to re-link two fragments",
        float,
    ),
    ConfigFlag(
        "--min-track-hits",
        "min_track_hits",
        "offline mode: drop tracks with fewer detections than this",
        int,
    ),
    ConfigFlag(
        "--min-track-score-rank",
        "min_track_score_rank",
        "offline mode: drop trajectories of clutter: those the fitted score calibration judges "
        "more likely clutter than real (--score-norm auto), else those whose detections' mean "
        "score rank (the fraction of the sequence's detections scoring at most as high) is "
        "below this; 0 keeps all",
        float,
        metavar="RANK",
    ),
)


TRAIN_FLAGS: tuple[ConfigFlag, ...] = (
    ConfigFlag(
        "--synthetic",
        "synthetic_scenes",
        "synthetic training scenes (0: train on the --det files only)",
        int,
        metavar="N",
    ),
    ConfigFlag(
        "--synthetic-frames", "synthetic_frames", "frames per synthetic scene", int, metavar="N"
    ),
    ConfigFlag(
        "--heldout-scenes",
        "heldout_scenes",
        "synthetic scenes for the held-out accuracy (0: no accuracy)",
        int,
        metavar="N",
    ),
    ConfigFlag(
        "--heldout-clips",
        "heldout_clips",
        "clips drawn from the held-out scenes",
        int,
        metavar="N",
    ),
    ConfigFlag("--epochs", "epochs", "number of epochs", int, metavar="E"),
    ConfigFlag(
        "--steps-per-epoch", "steps_per_epoch", "optimiser steps per epoch", int, metavar="S"
    ),
    ConfigFlag("--batch-size", "batch_size", "clips per step", int, metavar="B"),
    ConfigFlag("--clip-length", "clip_length", "frames per clip", int, metavar="T"),
    ConfigFlag(
        "--max-stride", "max_stride", "clips take every s-th frame, s in 1..N", int, metavar="N"
    ),
    ConfigFlag(
        "--max-detections",
        "max_detections",
        "detections kept per frame (highest scores)",
        int,
        metavar="N",
    ),
    ConfigFlag("--lr", "learning_rate", "Adam step size", float, metavar="LR"),
    ConfigFlag(
        "--lr-schedule",
        "lr_schedule",
        "constant, or cosine (the step size decays from --lr to 0 over the run)",
        str,
        choices=get_args(LrSchedule),
    ),
    ConfigFlag(
        "--objective",
        "objective",
        "smoothed (the paper's), filtered (ablation) or innovations (exact marginal likelihood)",
        str,
        choices=get_args(Objective),
    ),
    ConfigFlag(
        "--association",
        "association",
        "chain (the paper's: adjacent frames, chained) or predicted (each frame's detections "
        "against the slots' Kalman-predicted boxes, as the tracker links)",
        str,
        choices=get_args(Association),
    ),
    ConfigFlag(
        "--clutter-scale",
        "clutter_scale",
        "multiplies the loss's density of clutter/new detections (1/image area); above 1 the "
        "network leaves more detections unlinked",
        float,
        metavar="X",
    ),
    ConfigFlag(
        "--clutter-warmup-epochs",
        "clutter_warmup_epochs",
        "epochs over which the clutter scale grows from 1 to --clutter-scale",
        float,
        metavar="E",
    ),
    ConfigFlag("--sinkhorn-iterations", "sinkhorn_iterations", "Sinkhorn rounds", int, metavar="N"),
    ConfigFlag(
        "--hidden", "hidden", "MLP hidden widths, comma-separated", _int_tuple, metavar="W,W"
    ),
    ConfigFlag(
        "--no-learn-noise",
        "learn_noise",
        "keep Q, R and the initial velocity variance fixed instead of fitting them",
        const=False,
    ),
    ConfigFlag(
        "--init",
        "init",
        "the weights training starts from: auto (the shipped model's, when --hidden matches "
        "it; else random), shipped, scratch (random), or a model file (.npz or .pt)",
        str,
        metavar="|".join((*INIT_CHOICES, "FILE")),
    ),
    ConfigFlag(
        "--seed", "seed", "seeds every random generator of the run", non_negative_int, metavar="S"
    ),
    ConfigFlag("--float64", "float64", "train in double precision", const=True),
    ConfigFlag("--device", "device", "torch device, e.g. cpu or cuda", str, metavar="DEV"),
    ConfigFlag(
        "--checkpoint-every",
        "checkpoint_every",
        "also write the checkpoint every N optimiser steps (0: at the end of each epoch only)",
        int,
        metavar="N",
    ),
)


def _config_class(name: str) -> type:
    """The config dataclass named ``"tracker"`` or ``"train"`` (imported on demand)."""
    if name == "tracker":
        from emtrack.track import TrackerConfig

        return TrackerConfig
    from emtrack.train.config import TrainConfig

    return TrainConfig


def add_config_flags(
    parser: argparse.ArgumentParser, flags: Sequence[ConfigFlag], config: str
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
        # Read by HelpFormatter, which looks the default up only when help is printed.
        action.config_default = (config, flag.field)  # type: ignore[attr-defined]


def _config_kwargs(args: argparse.Namespace, flags: Sequence[ConfigFlag], config: str) -> dict:
    """The config fields the user gave explicitly (options left out are not passed)."""
    values = {flag.field: getattr(args, f"{config}.{flag.field}") for flag in flags}
    return {field: value for field, value in values.items() if value is not None}


def tracker_config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~emtrack.track.TrackerConfig` of parsed ``track``/``bench track`` options.

    Only options given on the command line are passed, so no options gives ``TrackerConfig()``.

    Raises:
        ValueError: The values are rejected by ``TrackerConfig.__post_init__``.
    """
    return _config_class("tracker")(**_config_kwargs(args, TRACKER_FLAGS, "tracker"))


def train_config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~emtrack.train.TrainConfig` of parsed ``train`` options (see above)."""
    return _config_class("train")(**_config_kwargs(args, TRAIN_FLAGS, "train"))


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: ...)`` to config options, read from the config dataclass itself.

    Switches (``--float64``, ``--no-learn-noise``) get no default: they are off unless given.

    The config class is imported only when help is printed.
    Descriptions (one paragraph) are wrapped to the terminal; text with line breaks, such as
    the ``examples:`` epilogs, is printed as written (like ``RawDescriptionHelpFormatter``).
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help
        source = getattr(action, "config_default", None)
        if source is None or help_text is None:
            return help_text
        if action.nargs == 0:
            # A switch: its help says what it turns on or off; "(default: True)" after
            # --no-learn-noise would read as if the switch were on by default.
            return help_text.replace("%", "%%")
        config, field = source
        config_class = _config_class(config)
        default = next(f for f in dataclasses.fields(config_class) if f.name == field)
        value = default.default
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        # argparse %-formats help strings, so a literal % must be doubled.
        return f"{help_text} (default: {value})".replace("%", "%%")


def verbosity_parent() -> argparse.ArgumentParser:
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


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="M",
        help="weights: an .npz from 'emtrack train --export', or a training checkpoint .pt "
        "(needs emtrack[train]) (default: the model shipped with emtrack)",
    )


def add_det_name_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--det-name",
        default="det.txt",
        metavar="NAME",
        help="file name of the detections inside each det/ folder (default: det.txt)",
    )

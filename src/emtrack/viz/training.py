"""Training curves: loss and held-out association accuracy per epoch, with both baselines."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emtrack.errors import EmtrackInputError
from emtrack.viz._common import new_figure, plot_style, require, save_figure

__all__ = ["load_history", "plot_training"]

_REQUIRED = ("epoch", "loss")


def load_history(path: str | Path) -> list[dict[str, Any]]:
    """The per-epoch history of a training run.

    Args:
        path: A training checkpoint (``.pt``, written by ``emtrack train --out``; its
            ``history`` holds one :class:`~emtrack.train.EpochRecord` per epoch), or a
            JSON file: a list of such records, or an object with a ``"history"`` list (e.g. a
            checkpoint's history saved with ``json.dump``).

    Returns:
        One dict per epoch, in epoch order, each with at least ``epoch`` and ``loss``.

    Raises:
        EmtrackInputError: Not found, not a checkpoint or JSON history, or records without
            ``epoch``/``loss``.
    """
    path = Path(path)
    if not path.is_file():
        raise EmtrackInputError("file not found", path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            raise EmtrackInputError(f"not valid JSON ({exc})", path, line) from exc
    else:
        from emtrack.model.checkpoint import load_checkpoint

        data = load_checkpoint(path)
    history = data.get("history") if isinstance(data, dict) else data
    if not isinstance(history, list) or not history:
        raise EmtrackInputError("no training history (a non-empty list of epoch records)", path)
    for k, record in enumerate(history):
        if not isinstance(record, dict) or any(key not in record for key in _REQUIRED):
            raise EmtrackInputError(
                f"history record {k} is not an epoch record with 'epoch' and 'loss'", path
            )
        values = [record[key] for key in _REQUIRED]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise EmtrackInputError(f"history record {k}: epoch and loss must be numbers", path)
    return sorted(history, key=lambda record: record["epoch"])


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of the records where ``key`` is a number."""
    pairs = [
        (float(r["epoch"]), float(r[key]))
        for r in history
        if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_training(
    history: Sequence[dict[str, Any]], out: str | Path, title: str | None = None
) -> Path:
    """Loss (left) and held-out link accuracy (right) per epoch, as a PNG.

    The accuracy panel has three lines: the learned network, IoU + Hungarian, and a Kalman
    filter given the true identities (the two baselines of ``emtrack train``); it is left out
    when the run had no held-out scenes.

    Args:
        history: From :func:`load_history`.
        out: The ``.png`` to write (atomically).
        title: Figure title (default: none).
    """
    matplotlib = require("matplotlib", "plotting the training history")
    has_accuracy = bool(_series(history, "accuracy")[0])
    with matplotlib.rc_context(plot_style()):
        figure = new_figure(8.0 if has_accuracy else 4.5, 3.2)
        axes = figure.subplots(1, 2 if has_accuracy else 1, squeeze=False)[0]
        loss_axes = axes[0]
        for key, label, style in (
            ("loss", "total loss", "-o"),
            ("association_nll", "association NLL", "--"),
            ("noise_nll", "noise NLL", ":"),
        ):
            epochs, values = _series(history, key)
            if epochs:
                loss_axes.plot(epochs, values, style, label=label, markersize=4)
        loss_axes.set(xlabel="epoch", ylabel="loss", title="training loss")
        loss_axes.legend()
        if has_accuracy:
            acc_axes = axes[1]
            for key, label, style, colour in (
                ("accuracy", "learned network", "-o", "C0"),
                ("iou_accuracy", "IoU + Hungarian", "--s", "C1"),
                ("oracle_accuracy", "Kalman, true identities", ":^", "C2"),
            ):
                epochs, values = _series(history, key)
                if epochs:
                    acc_axes.plot(
                        epochs,
                        [100.0 * v for v in values],
                        style,
                        color=colour,
                        label=label,
                        markersize=4,
                    )
            acc_axes.set(
                xlabel="epoch", ylabel="links right (%)", title="held-out association accuracy"
            )
            acc_axes.legend(loc="best")
        for ax in axes:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if title:
            figure.suptitle(title)
        return save_figure(figure, out, dpi=110)

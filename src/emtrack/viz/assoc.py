"""What the network learned: its soft assignment (with dustbin) between two frames, next to IoU.

For frames F and F+1, every detection of F+1 (rows) is scored against every detection of F
(columns) by the association network, exactly as the tracker scores detections against track
predictions (:meth:`emtrack.track.AssociationWeights.logits`); log-space Sinkhorn with a dustbin
row and column (:func:`emtrack.model.sinkhorn.log_sinkhorn_dustbin`, the training-time
normalisation) turns the scores into the soft assignment shown. The IoU matrix of the same
boxes is drawn beside it: where IoU is ambiguous (crossings, small or fast objects) the learned
assignment should not be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo
from emtrack.model.features import box_iou
from emtrack.track.weights import AssociationWeights
from emtrack.viz._common import new_figure, plot_style, require, save_figure

__all__ = ["AssociationView", "association_view", "frame_pair", "plot_association"]

#: Matrices up to this size get their values written in the cells.
_ANNOTATE_MAX = 14


@dataclass(frozen=True)
class AssociationView:
    """The network's view of one pair of frames.

    Attributes:
        frame: F (the reference frame; rows are detections of F + 1).
        ref_boxes: ``(N, 4)`` xyxy detections of frame F (columns).
        cur_boxes: ``(M, 4)`` xyxy detections of frame F + 1 (rows).
        logits: ``(M, N)`` association logits; ``dustbin_logit`` is the learned "no match".
        dustbin_logit: The network's dustbin score.
        assignment: ``(M + 1, N + 1)`` Sinkhorn probabilities, dustbin row and column last.
        iou: ``(M, N)`` IoU of the same pairs.
        true_match: ``(M + 1, N + 1)`` bool, the right assignment when identities are known
            (a birth or false positive of F + 1 belongs in the dustbin column; an object of F
            that is gone in the dustbin row), else None.
        image_size: ``(width, height)`` of the frames, if known.
    """

    frame: int
    ref_boxes: np.ndarray
    cur_boxes: np.ndarray
    logits: np.ndarray
    dustbin_logit: float
    assignment: np.ndarray
    iou: np.ndarray
    true_match: np.ndarray | None = None
    image_size: tuple[int, int] | None = None

    @property
    def accuracy(self) -> float | None:
        """Share of rows and columns whose most likely entry is the true one (None: no ids)."""
        if self.true_match is None:
            return None
        m, n = self.logits.shape
        rows = self.assignment[:m].argmax(1)
        cols = self.assignment[:, :n].argmax(0)
        right = (
            self.true_match[np.arange(m), rows].sum() + self.true_match[cols, np.arange(n)].sum()
        )
        return float(right) / max(1, m + n)


def association_view(
    weights: AssociationWeights,
    ref_boxes: np.ndarray,
    cur_boxes: np.ndarray,
    gap_s: float,
    frame: int = 1,
    iterations: int = 20,
    ref_ids: np.ndarray | None = None,
    cur_ids: np.ndarray | None = None,
    image_size: tuple[int, int] | None = None,
) -> AssociationView:
    """Score two frames' detections with the network and normalise with Sinkhorn.

    Args:
        weights: The association network (from :func:`emtrack.track.load_model`).
        ref_boxes: ``(N, 4)`` xyxy boxes of frame F.
        cur_boxes: ``(M, 4)`` xyxy boxes of frame F + 1.
        gap_s: Time between the frames in seconds (1 / frame rate).
        frame: F, for the titles.
        iterations: Sinkhorn rounds (training uses 20).
        ref_ids, cur_ids: True identities (``(N,)``, ``(M,)``; < 1 = false positive) to mark
            the right assignment, or None.
        image_size: ``(width, height)`` for the scene panel.
    """
    import torch

    from emtrack.model.sinkhorn import log_sinkhorn_dustbin

    ref_boxes = np.asarray(ref_boxes, float).reshape(-1, 4)
    cur_boxes = np.asarray(cur_boxes, float).reshape(-1, 4)
    m, n = len(cur_boxes), len(ref_boxes)
    logits = weights.logits(ref_boxes, cur_boxes, gap_s) if m and n else np.zeros((m, n))
    log_assignment = log_sinkhorn_dustbin(
        torch.as_tensor(logits, dtype=torch.float64),
        torch.tensor(weights.dustbin_logit, dtype=torch.float64),
        torch.ones(m, dtype=torch.bool),
        torch.ones(n, dtype=torch.bool),
        iterations,
    )
    assignment = log_assignment.exp().numpy()
    true_match = None
    if ref_ids is not None and cur_ids is not None:
        true_match = np.zeros((m + 1, n + 1), bool)
        for j, identity in enumerate(np.asarray(cur_ids).tolist()):
            hits = np.flatnonzero((np.asarray(ref_ids) == identity) & (identity >= 1))
            true_match[j, hits[0] if len(hits) else n] = True
        for i, identity in enumerate(np.asarray(ref_ids).tolist()):
            if identity < 1 or identity not in np.asarray(cur_ids).tolist():
                true_match[m, i] = True
    iou = box_iou(cur_boxes[:, None], ref_boxes[None]) if m and n else np.zeros((m, n))
    return AssociationView(
        frame,
        ref_boxes,
        cur_boxes,
        logits,
        float(weights.dustbin_logit),
        assignment,
        iou,
        true_match,
        image_size,
    )


def frame_pair(
    detections: MotTable,
    seqinfo: SeqInfo,
    frame: int,
    min_score: float | None = None,
    max_boxes: int = 20,
    by_identity: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detections of frames F and F+1 as ``(ref_boxes, cur_boxes, ref_ids, cur_ids)``.

    Keeps detections with score >= ``min_score`` (None: all), at most ``max_boxes`` per frame
    (the highest scores), ordered by identity (``by_identity``, false positives last) or else
    left to right.

    Raises:
        EmtrackInputError: F or F+1 outside the sequence, or no detections left in F or F+1.
    """
    if not 1 <= frame < seqinfo.seq_length:
        raise EmtrackInputError(
            f"--frame must be in 1..{seqinfo.seq_length - 1} (frames F and F+1 are shown), "
            f"got {frame}",
            seqinfo.path,
        )
    picked = []
    for f in (frame, frame + 1):
        rows = np.flatnonzero(detections.frames == f)
        if min_score is not None:
            rows = rows[detections.scores[rows] >= min_score]
        rows = rows[np.argsort(-detections.scores[rows], kind="stable")[:max_boxes]]
        if len(rows) == 0:
            raise EmtrackInputError(
                f"no detections in frame {f}"
                + (f" with score >= {min_score:g}" if min_score is not None else ""),
                detections.path,
            )
        boxes = detections.boxes_xyxy[rows]
        if by_identity:
            ids = detections.ids[rows]
            order = np.lexsort((ids, ids < 1))
        else:
            order = np.argsort(boxes[:, 0] + boxes[:, 2], kind="stable")
        picked.append((boxes[order], detections.ids[rows][order]))
    (ref_boxes, ref_ids), (cur_boxes, cur_ids) = picked
    return ref_boxes, cur_boxes, ref_ids, cur_ids


def _heatmap(ax: Any, matrix: np.ndarray, labels_y: list[str], labels_x: list[str]) -> Any:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=1.0, aspect="equal")
    ax.set_xticks(range(len(labels_x)), labels_x, fontsize=8, rotation=90)
    ax.set_yticks(range(len(labels_y)), labels_y, fontsize=8)
    ax.grid(False)
    ax.tick_params(length=0)
    if max(matrix.shape) <= _ANNOTATE_MAX:
        for (r, c), value in np.ndenumerate(matrix):
            if value >= 0.005:  # NaN (the dustbin-dustbin corner) is not >= anything
                ax.text(
                    c,
                    r,
                    f"{value:.2f}"[1:] if value < 0.995 else "1",
                    ha="center",
                    va="center",
                    fontsize=8 if max(matrix.shape) <= 10 else 6,
                    color="black" if value > 0.6 else "white",
                )
    return image


def plot_association(view: AssociationView, out: str | Path, title: str | None = None) -> Path:
    """A PNG: the two frames' boxes above, the learned assignment and the IoU matrix below.

    Rows are the detections ``b1 …`` of frame F+1, columns the detections ``a1 …`` of frame F;
    the last row and column (``∅``) are the dustbins. White squares mark the right answer
    when identities are known (synthetic scenes).
    """
    matplotlib = require("matplotlib", "plotting the association matrix")
    from matplotlib.patches import Rectangle

    m, n = view.logits.shape
    rows = [f"b{j + 1}" for j in range(m)]
    cols = [f"a{i + 1}" for i in range(n)]
    with matplotlib.rc_context(plot_style()):
        figure = new_figure(10.0, 8.4)
        grid = figure.add_gridspec(2, 2, height_ratios=[0.8, 1.0])
        scene = figure.add_subplot(grid[0, :])
        _draw_scene(scene, view, Rectangle)
        axes = figure.add_subplot(grid[1, 0])
        shown = view.assignment.copy()
        shown[m, n] = np.nan  # dustbin to dustbin: no meaning (it only balances the masses)
        image = _heatmap(axes, shown, [*rows, "∅"], [*cols, "∅"])
        axes.axhline(m - 0.5, color="white", linewidth=1.0)
        axes.axvline(n - 0.5, color="white", linewidth=1.0)
        if view.true_match is not None:
            for r, c in zip(*np.nonzero(view.true_match), strict=True):
                axes.add_patch(
                    Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="white", lw=1.2)
                )
        accuracy = view.accuracy
        axes.set_title(
            "learned assignment (Sinkhorn, dustbin ∅)"
            + ("" if accuracy is None else f"\nwhite: right answer; argmax right {accuracy:.0%}")
        )
        axes.set(xlabel=f"detections of frame {view.frame}", ylabel=f"frame {view.frame + 1}")
        iou_axes = figure.add_subplot(grid[1, 1])
        _heatmap(iou_axes, view.iou, rows, cols)
        iou_axes.set_title("IoU of the same boxes")
        iou_axes.set(xlabel=f"detections of frame {view.frame}", ylabel=f"frame {view.frame + 1}")
        figure.colorbar(image, ax=[axes, iou_axes], shrink=0.8, label="probability / IoU")
        if title:
            figure.suptitle(title)
        return save_figure(figure, out, dpi=100)


def _draw_scene(ax: Any, view: AssociationView, rectangle: type) -> None:
    """Boxes of frame F (dashed, ``a…``) and F+1 (solid, ``b…``), cropped to where they are."""
    boxes = np.concatenate([view.ref_boxes, view.cur_boxes])
    for i, box in enumerate(view.ref_boxes):
        ax.add_patch(
            rectangle(
                (box[0], box[1]), box[2] - box[0], box[3] - box[1],
                fill=False, edgecolor="0.45", linestyle="--", lw=1.0,
            )
        )  # fmt: skip
        ax.text(box[0], box[3], f"a{i + 1}", color="0.35", fontsize=8, va="top")
    for j, box in enumerate(view.cur_boxes):
        ax.add_patch(
            rectangle(
                (box[0], box[1]), box[2] - box[0], box[3] - box[1],
                fill=False, edgecolor=f"C{j % 10}", lw=1.4,
            )
        )  # fmt: skip
        ax.text(box[0], box[1], f"b{j + 1}", color=f"C{j % 10}", fontsize=8, va="bottom")
    lo, hi = boxes[:, :2].min(0), boxes[:, 2:].max(0)
    margin = 0.05 * (hi - lo).max() + 10
    ax.set_xlim(lo[0] - margin, hi[0] + margin)
    ax.set_ylim(hi[1] + margin, lo[1] - margin)
    ax.set_aspect("equal")
    ax.set_title(f"frame {view.frame} (dashed, a…) and frame {view.frame + 1} (solid, b…)")
    ax.tick_params(labelsize=7)

"""Held-out association accuracy of a trained model, by frame gap and by frame rate.

The figures of training's "held-out link accuracy" for any model file — the shipped one by
default — without retraining it: clips from the trainer's own held-out synthetic scenes
(:func:`emtrack.train.heldout.heldout_scenes`, never the scenes a model trained with the same
``--seed`` saw) are linked frame to frame by the learned
network, by IoU ≥ 0.3 + Hungarian and by a Kalman filter given the true identities
(:mod:`emtrack.train.accuracy`). Rows per frame gap (clips of every ``s``-th frame), then per
frame rate at gap 1: where objects move further between frames (low frame rates), overlap
says less and the learned association gains most. With ``gt_roots``, rows per gap on real
pedestrian motion too: clips of the detection streams that ``emtrack bench track`` derives
from those ground truths (its noise model and seed), whose identities are known.

With ``det_roots``, rows per gap on real detections: clips of the ``<seq>/det/<det_name>``
files of each ROOT (every detection of the file, whatever its score), each detection labelled
with a gt identity by IoU matching per frame (:mod:`emtrack.bench.gt_labels`: Hungarian,
IoU >= 0.5, TrackEval's distractor rule where the gt has a class column), for scoring only.
The linkers see every detection; a detection matched to a distractor is not scored (as
TrackEval drops such boxes), an unmatched one is a false positive whose right link is "none".
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emtrack.bench.environment import environment_info
from emtrack.bench.gt_labels import IGNORED, label_detections
from emtrack.bench.roots import derived_detections, det_sequences, gt_sequences
from emtrack.errors import EmtrackInputError
from emtrack.io import read_mot
from emtrack.model.loss import association_log_assignment
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.synth import DetectionNoiseConfig, Scene
from emtrack.track.weights import AssociationWeights, load_model
from emtrack.train.accuracy import (
    iou_links,
    network_links,
    oracle_kalman_links,
    true_links,
)
from emtrack.train.config import TrainConfig
from emtrack.train.heldout import evaluate_accuracy, heldout_labelled_clips, heldout_scenes

__all__ = ["AccuracyReport", "AccuracyRow", "run_accuracy_bench", "torch_modules"]


@dataclass(frozen=True)
class AccuracyRow:
    """Link accuracy of the three linkers on one set of clips.

    Attributes:
        group: ``"gap"`` (all scenes, clips of every ``value``-th frame), ``"fps"`` (the
            scenes of frame rate ``value``, gap 1), ``"gt"`` (clips of every ``value``-th
            frame of the streams derived from the ground truths of ``root``) or ``"det"``
            (the same of the real detection files of ``root``).
        value: The gap in frames, or the frame rate.
        scenes: Scenes (sequences) the clips were drawn from.
        detections: Detections scored (every real detection of clip frames 1 … T-1; for
            ``"det"`` rows without those matched to a distractor).
        network: The learned network's accuracy (0–1).
        iou: IoU ≥ 0.3 + Hungarian.
        oracle: Kalman filter given the true identities.
        root: The ROOT of a ``"gt"`` or ``"det"`` row, else ``None``.
    """

    group: str
    value: float
    scenes: int
    detections: int
    network: float
    iou: float
    oracle: float
    root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields, an accuracy of no scored detection (NaN) as ``None``."""
        return {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class AccuracyReport:
    """One run of :func:`run_accuracy_bench`.

    Attributes:
        rows: The gap rows (increasing gap), then the frame-rate rows (increasing rate).
        settings: The run's settings.
        environment: Versions, machine and git commit.
    """

    rows: tuple[AccuracyRow, ...]
    settings: dict[str, Any]
    environment: dict[str, Any]

    def format_table(self) -> str:
        """Plain-text tables: by frame gap, by frame rate (gap 1), then by gap for each gt
        ROOT's derived streams and for each ROOT's real detections."""
        lines = [f"held-out link accuracy, model {self.settings['model']}"]
        tables = [(("gap", None), "gap (frames)"), (("fps", None), "frame rate (gap 1)")]
        for group in ("gt", "det"):
            for root in dict.fromkeys(row.root for row in self.rows if row.group == group):
                tables.append(((group, root), "gap (frames)"))
        labels = {entry["root"]: entry for entry in self.settings.get("det_labels", [])}
        for (group, root), title in tables:
            rows = [row for row in self.rows if row.group == group and row.root == root]
            if not rows:
                continue
            if group == "gt":
                lines += [
                    "",
                    f"streams derived from the gt of {root} (scenes = its sequences; noise "
                    f"seed {self.settings['seed']})",
                ]
            if group == "det":
                lines += ["", _det_title(root, self.settings["det_name"], labels.get(root))]
            lines += [
                "",
                f"{title:<20}  scenes  detections  network     iou  true-id KF  network-iou",
                f"{'-' * 20}  ------  ----------  -------  ------  ----------  -----------",
            ]
            for row in rows:
                value = f"{row.value:g}"
                lines.append(
                    f"{value:<20}  {row.scenes:>6}  {row.detections:>10}  "
                    f"{100 * row.network:>6.1f}%  {100 * row.iou:>5.1f}%  "
                    f"{100 * row.oracle:>9.1f}%  {100 * (row.network - row.iou):>+10.1f}"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": "accuracy",
            "settings": self.settings,
            "rows": [row.to_dict() for row in self.rows],
            **self.environment,
        }


def _det_title(root: str | None, det_name: str, labels: dict[str, Any] | None) -> str:
    """The heading of a ROOT's real-detection table, with how its detections were labelled."""
    title = (
        f"real detections of {root} (det/{det_name}; scenes = its sequences; identities from "
        "the gt by IoU >= 0.5 matching, for scoring only)"
    )
    if labels and labels["detections"]:
        share = {
            key: 100 * labels[key] / labels["detections"]
            for key in ("matched", "false_positives", "ignored")
        }
        title += (
            f"\n{labels['detections']} detections: {share['matched']:.1f} % matched to a gt "
            f"identity, {share['false_positives']:.1f} % false positives, "
            f"{share['ignored']:.1f} % on distractors (not scored)"
        )
    return title


def torch_modules(weights: AssociationWeights) -> tuple[AssociationNet, NoiseModel]:
    """The torch network and noise model holding exported weights (float64)."""
    hidden = tuple(int(w.shape[1]) for w, _ in weights.layers[:-1])
    net = AssociationNet(hidden).double()
    linears = [m for m in net.mlp if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for linear, (w, b) in zip(linears, weights.layers, strict=True):
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            linear.bias.copy_(torch.from_numpy(np.asarray(b)))
        net.dustbin_logit.fill_(float(weights.dustbin_logit))
        noise = NoiseModel().double()
        # Set in float64: NoiseModel(q, ...) would round the logs to float32 first.
        noise.log_q.fill_(math.log(weights.noise_q))
        noise.log_r.fill_(math.log(weights.noise_r))
        noise.log_p_vel.fill_(math.log(weights.noise_p_vel))
    return net, noise


def run_accuracy_bench(
    model: str | os.PathLike[str] | AssociationWeights | None = None,
    *,
    scenes: int = 30,
    clips: int = 48,
    clip_length: int = 10,
    gaps: Sequence[int] = (1, 2, 3, 4),
    seed: int = 0,
    gt_roots: Sequence[str | os.PathLike[str]] = (),
    det_roots: Sequence[str | os.PathLike[str]] = (),
    det_name: str = "det.txt",
) -> AccuracyReport:
    """Score the model and both baselines on held-out synthetic clips (and derived streams,
    and real detections).

    Args:
        model: ``.npz`` export, training checkpoint (``.pt``), loaded weights, or None for
            the shipped model.
        scenes: Synthetic scenes (300 frames each) the clips are drawn from. The first six
            are the trainer's held-out scenes of the same seed, so ``scenes=6`` gives the
            gap rows that training prints at its end.
        clips: Clips per row.
        clip_length: Frames per clip.
        gaps: Frame gaps of the gap rows.
        seed: Seed of scenes and clips (the trainer's ``--seed``), and of the noise of the
            streams derived from ``gt_roots`` (``emtrack bench track --seed``).
        gt_roots: Folders of sequences with ``gt/gt.txt`` and ``seqinfo.ini`` (MOT15, MOT17
            or MOT20 layout): each adds a row per gap on the detection streams that
            ``emtrack bench track`` derives from them (default noise model), identities known.
        det_roots: Folders of sequences with ``det/<det_name>``, ``gt/gt.txt`` and
            ``seqinfo.ini``: each adds a row per gap on its real detections, labelled from
            the gt (see the module docstring).
        det_name: The detection file name inside ``<seq>/det/``.

    Raises:
        EmtrackInputError: A count below 1 (``clip_length`` below 2), an unreadable model, a
            gt or det ROOT without sequences long enough for a clip, or a det ROOT's sequence
            without gt or seqinfo.ini.
    """
    for name, value, low in (
        ("scenes", scenes, 1),
        ("clips", clips, 1),
        ("clip_length", clip_length, 2),
    ):
        if value < low:
            raise EmtrackInputError(f"{name} must be >= {low}, got {value}")
    if not gaps or min(gaps) < 1:
        raise EmtrackInputError(f"gaps must be >= 1, got {list(gaps)}")
    weights = load_model(model)
    config = TrainConfig(clip_length=clip_length, seed=seed)
    net, noise = torch_modules(weights)
    net, noise = net.to(config.dtype), noise.to(config.dtype)
    scene_list = heldout_scenes(config, scenes)
    rows = [
        _score("gap", gap, scene_list, net, noise, config, clips, gap) for gap in sorted(set(gaps))
    ]
    rates = sorted({scene.seqinfo.frame_rate for scene in scene_list})
    for rate in rates:
        group = [scene for scene in scene_list if scene.seqinfo.frame_rate == rate]
        rows.append(_score("fps", rate, group, net, noise, config, clips, 1))
    for root in gt_roots:
        streams = _derived_scenes(Path(root), seed, (clip_length - 1) * max(gaps))
        for gap in sorted(set(gaps)):
            row = _score("gt", gap, streams, net, noise, config, clips, gap)
            rows.append(dataclasses.replace(row, root=str(root)))
    det_labels = []
    for root in det_roots:
        labelled_scenes, counts = _det_scenes(Path(root), det_name, (clip_length - 1) * max(gaps))
        det_labels.append({"root": str(root), **counts})
        for gap in sorted(set(gaps)):
            row = _score_labelled("det", gap, labelled_scenes, net, noise, config, clips, gap)
            rows.append(dataclasses.replace(row, root=str(root)))
    if model is None:
        model_name = "shipped default"
    elif isinstance(model, AssociationWeights):
        model_name = "weights given"
    else:
        model_name = str(model)
    settings = {
        "model": model_name,
        "scenes": scenes,
        "clips": clips,
        "clip_length": clip_length,
        "gaps": sorted(set(gaps)),
        "seed": seed,
        "sinkhorn_iterations": config.sinkhorn_iterations,
        "gt_roots": [str(root) for root in gt_roots],
        "det_roots": [str(root) for root in det_roots],
        "det_name": det_name,
    }
    if gt_roots:
        settings["gt_noise"] = dataclasses.asdict(DetectionNoiseConfig())
    if det_roots:
        settings["det_labels"] = det_labels
    return AccuracyReport(tuple(rows), settings, environment_info())


def _derived_scenes(root: Path, seed: int, span: int) -> list[Scene]:
    """The sequences of a gt ROOT as scenes: the benchmark's derived detections, ids kept.

    Only sequences longer than ``span`` frames (a clip at the largest gap) are kept.
    """
    if not root.is_dir():
        raise EmtrackInputError(
            f"gt ROOT {'is not a folder' if root.exists() else 'not found'}", root
        )
    scenes = []
    for name, gt_path, seqinfo in gt_sequences(root):
        if seqinfo.seq_length <= span:
            continue
        gt = read_mot(gt_path)
        detections = derived_detections(name, gt, seqinfo, DetectionNoiseConfig(), seed)
        if len(detections):
            scenes.append(Scene(detections, gt, seqinfo))
    if not scenes:
        raise EmtrackInputError(
            f"no sequence with gt/gt.txt, seqinfo.ini, detections and more than {span} frames "
            "(one clip at the largest gap)",
            root,
        )
    return scenes


def _det_scenes(root: Path, det_name: str, span: int) -> tuple[list[Scene], dict[str, int]]:
    """The sequences of a det ROOT as scenes: the file's detections with gt identities.

    Only sequences longer than ``span`` frames (a clip at the largest gap) are kept; the
    counts (detections, matched, false positives, ignored) are over the kept ones.
    """
    if not root.is_dir():
        raise EmtrackInputError(
            f"det ROOT {'is not a folder' if root.exists() else 'not found'}", root
        )
    scenes = []
    counts = {"detections": 0, "matched": 0, "false_positives": 0, "ignored": 0}
    for sequence in det_sequences(root, det_name):
        seqinfo = sequence.seqinfo
        if seqinfo.seq_length <= span:
            continue
        detections, gt = read_mot(sequence.det_path), read_mot(sequence.gt_path)
        if not len(detections):
            continue
        labels = label_detections(detections, gt, mot20="MOT20" in sequence.name)
        scenes.append(Scene(dataclasses.replace(detections, ids=labels.ids), gt, seqinfo))
        counts["detections"] += len(detections)
        counts["matched"] += labels.matched
        counts["false_positives"] += labels.false_positives
        counts["ignored"] += labels.ignored
    if not scenes:
        raise EmtrackInputError(
            f"no sequence with det/{det_name}, gt/gt.txt, seqinfo.ini and more than {span} "
            "frames (one clip at the largest gap)",
            root,
        )
    return scenes, counts


@torch.no_grad()
def _score_labelled(
    group: str,
    value: float,
    scenes: list[Scene],
    net: AssociationNet,
    noise: NoiseModel,
    config: TrainConfig,
    num_clips: int,
    stride: int,
) -> AccuracyRow:
    """Like :func:`_score` (the same clips, linkers and rule), with the detections labelled
    :data:`~emtrack.bench.gt_labels.IGNORED` seen by the linkers but not scored."""
    labelled = heldout_labelled_clips(scenes, config, num_clips, stride)
    mask = labelled.batch.mask.numpy()
    scored = mask[:, 1:] & (labelled.ids[:, 1:] != IGNORED)
    truth = true_links(labelled.ids, mask)
    log_assignment = association_log_assignment(
        net, labelled.batch.to(config.device, config.dtype), config.sinkhorn_iterations
    )
    params = noise.params()
    links = {
        "network": network_links(log_assignment.cpu(), mask),
        "iou": iou_links(labelled.batch),
        "oracle": oracle_kalman_links(
            labelled, float(params.q), float(params.r), float(params.p_vel)
        ),
    }
    accuracy = {name: _accuracy(found, truth, scored) for name, found in links.items()}
    return AccuracyRow(
        group=group,
        value=float(value),
        scenes=len(scenes),
        detections=int(scored.sum()),
        **accuracy,
    )


def _accuracy(links: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> float:
    """Fraction of the ``scored`` detections whose link is the true one (NaN if none)."""
    return float((links == truth)[scored].mean()) if scored.any() else math.nan


def _score(
    group: str,
    value: float,
    scenes: list[Scene],
    net: AssociationNet,
    noise: NoiseModel,
    config: TrainConfig,
    num_clips: int,
    stride: int,
) -> AccuracyRow:
    labelled = heldout_labelled_clips(scenes, config, num_clips, stride)
    scores = evaluate_accuracy(net, noise, labelled, config, baselines=True)
    return AccuracyRow(
        group=group,
        value=float(value),
        scenes=len(scenes),
        detections=int(labelled.batch.mask[:, 1:].sum()),
        network=float(scores["accuracy"]),
        iou=float(scores["iou_accuracy"]),
        oracle=float(scores["oracle_accuracy"]),
    )

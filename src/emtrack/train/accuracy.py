"""Held-out association accuracy on synthetic clips (where the truth is known).

The accuracy of a linker is the fraction of real detections in frames 1 … T-1 whose link to
the previous clip frame is right: the detection of frame t-1 with the same identity, or "none"
when that identity was not detected there (births, false positives). Three linkers are scored
on the same clips: the learned network (Hungarian on its dustbin assignment), IoU ≥ 0.3 with
Hungarian, and a Kalman filter that is *given the true identities* of frames 0 … t-1 and links
frame t by Hungarian on the Mahalanobis distance of its predictions (gated at χ²₂ 99%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from emtrack.model.features import box_heights, box_iou, box_positions
from emtrack.model.loss import ClipBatch
from emtrack.synth import Scene
from emtrack.train.clips import pad_clips

_CHI2_2D_99 = 9.21


@dataclass(frozen=True)
class LabelledClips:
    """Evaluation clips with their true identities (never used for training).

    Attributes:
        batch: the padded clips.
        ids: ``(B, T, N)`` identity of each slot, -1 for false positives and padding.
    """

    batch: ClipBatch
    ids: np.ndarray


def labelled_clips(
    scenes: list[Scene],
    num_clips: int,
    clip_length: int,
    rng: np.random.Generator,
    stride: int = 1,
) -> LabelledClips:
    """Random clips (frames ``start + k * stride``) from synthetic scenes, with identities."""
    clips: list[list[np.ndarray]] = []
    clip_ids: list[list[np.ndarray]] = []
    dts, areas = [], []
    while len(clips) < num_clips:
        scene = scenes[int(rng.integers(len(scenes)))]
        det = scene.detections
        n_frames = scene.seqinfo.seq_length
        span = (clip_length - 1) * stride
        if n_frames <= span:
            continue
        start = int(rng.integers(1, n_frames - span + 1))
        index = det.frame_index(n_frames)
        rows = [index[start - 1 + k * stride] for k in range(clip_length)]
        if len(rows[0]) == 0:
            continue
        clips.append([det.boxes_xyxy[r] for r in rows])
        clip_ids.append([det.ids[r] for r in rows])
        dts.append(stride / scene.seqinfo.frame_rate)
        width = scene.seqinfo.im_width or 1920
        height = scene.seqinfo.im_height or 1080
        areas.append(float(width * height))
    batch = pad_clips(clips, np.array(dts), np.array(areas))
    ids = np.full(batch.mask.shape, -1, dtype=np.int64)
    for b, frames in enumerate(clip_ids):
        for t, frame_ids in enumerate(frames):
            ids[b, t, : len(frame_ids)] = frame_ids
    return LabelledClips(batch, ids)


def true_links(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(B, T-1, N)``: index in frame t-1 of the same identity, -1 if none (or padding)."""
    prev, cur = ids[:, :-1], ids[:, 1:]
    same = (cur[..., :, None] == prev[..., None, :]) & (cur[..., :, None] >= 0)
    same &= mask[:, 1:, :, None] & mask[:, :-1, None, :]
    return np.where(same.any(-1), same.argmax(-1), -1)


def hungarian_links(score: np.ndarray, accept: np.ndarray) -> np.ndarray:
    """Maximum-score matching per frame pair, keeping only accepted pairs.

    Args:
        score: ``(B, T-1, M, N)`` higher is better; accept: same shape, bool.

    Returns:
        ``(B, T-1, M)`` matched column or -1.
    """
    links = np.full(score.shape[:-1], -1, dtype=np.int64)
    for b in range(score.shape[0]):
        for t in range(score.shape[1]):
            ok = accept[b, t]
            if not ok.any():
                continue
            cost = np.where(ok, -score[b, t], 1e9)
            rows, cols = linear_sum_assignment(cost)
            good = ok[rows, cols]
            links[b, t, rows[good]] = cols[good]
    return links


def network_links(log_assignment: torch.Tensor, mask: np.ndarray) -> np.ndarray:
    """Links from a dustbin assignment ``(B, T-1, M+1, N+1)``: a match must beat both dustbins."""
    la = log_assignment.detach().double().cpu().numpy()
    real = la[..., :-1, :-1]
    accept = (real > la[..., :-1, -1:]) & (real > la[..., -1:, :-1])
    accept &= mask[:, 1:, :, None] & mask[:, :-1, None, :]
    return hungarian_links(real, accept)


def iou_links(batch: ClipBatch, threshold: float = 0.3) -> np.ndarray:
    """IoU ≥ ``threshold`` + Hungarian between adjacent clip frames."""
    boxes = batch.boxes_xyxy.double().numpy()
    mask = batch.mask.numpy()
    iou = box_iou(boxes[:, :-1, None, :, :], boxes[:, 1:, :, None, :])  # (B, T-1, M, N)
    accept = (iou >= threshold) & mask[:, 1:, :, None] & mask[:, :-1, None, :]
    return hungarian_links(iou, accept)


def oracle_kalman_links(clips: LabelledClips, q: float, r: float, p_vel: float) -> np.ndarray:
    """A constant-velocity Kalman filter per true identity (frames < t), Mahalanobis + Hungarian."""
    batch = clips.batch
    pos = box_positions(batch.boxes_xyxy.double()).numpy()
    hgt = box_heights(batch.boxes_xyxy.double()).numpy()
    mask = batch.mask.numpy()
    dts = batch.dt.double().numpy()
    b_count, t_count, n = mask.shape
    score = np.full((b_count, t_count - 1, n, n), -np.inf)
    for b in range(b_count):
        dt = dts[b]
        f = np.array([[1.0, dt], [0.0, 1.0]])
        q_unit = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
        states: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}  # id -> mean (2,2), cov, h
        for t in range(t_count):
            # Predict all known identities to frame t.
            if t > 0:
                for key, (mean, cov, h) in states.items():
                    states[key] = (f @ mean, f @ cov @ f.T + q * h * h * q_unit, h)
                for i in np.flatnonzero(mask[b, t - 1]):
                    key = int(clips.ids[b, t - 1, i])
                    if key < 0 or key not in states:
                        continue
                    mean, cov, _ = states[key]
                    for j in np.flatnonzero(mask[b, t]):
                        var = cov[0, 0] + r * hgt[b, t, j] ** 2
                        d2 = float(((pos[b, t, j] - mean[0]) ** 2).sum() / var)
                        if d2 <= _CHI2_2D_99:
                            score[b, t - 1, j, i] = -d2
            # Update with the true identities of frame t.
            for j in np.flatnonzero(mask[b, t]):
                key = int(clips.ids[b, t, j])
                if key < 0:
                    continue
                h = float(hgt[b, t, j])
                z = pos[b, t, j]
                if key not in states:
                    mean = np.stack([z, np.zeros(2)])
                    cov = np.diag([r * h * h, p_vel * h * h])
                    states[key] = (mean, cov, h)
                    continue
                mean, cov, h0 = states[key]
                var = cov[0, 0] + r * h * h
                gain = cov[:, 0] / var
                mean = mean + gain[:, None] * (z - mean[0])[None, :]
                cov = cov - np.outer(gain, cov[0])
                states[key] = (mean, cov, h0)
    return hungarian_links(score, np.isfinite(score))


def link_accuracy(links: np.ndarray, clips: LabelledClips) -> float:
    """Fraction of real detections of frames 1 … T-1 whose link is right."""
    mask = clips.batch.mask.numpy()[:, 1:]
    truth = true_links(clips.ids, clips.batch.mask.numpy())
    return float((links == truth)[mask].mean())

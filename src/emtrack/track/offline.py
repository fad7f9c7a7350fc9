"""Offline pass: keep confirmed tracks whole, re-link fragments, drop the trajectories made of
the detector's least confident detections, RTS-smooth and fill gaps."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from emtrack.io import MotTable
from emtrack.track import motion
from emtrack.track.calibration import ScoreCalibration
from emtrack.track.config import TrackerConfig
from emtrack.track.iou import IOU_SCORER
from emtrack.track.tracker import TrackHistory
from emtrack.track.weights import AssociationWeights, model_noise


def _final_state(
    frames: np.ndarray, boxes: np.ndarray, fps: float, noise: motion.MotionNoise
) -> np.ndarray:
    """Filtered ``(2, 4)`` state at the track's last detection."""
    mean, cov = motion.initial_tracks(boxes[:1], noise.r, noise.p_vel)
    for k in range(1, len(frames)):
        motion.predict_tracks(mean, cov, float((frames[k] - frames[k - 1]) / fps), noise.q)
        mean, cov = motion.update_tracks(mean, cov, boxes[k : k + 1], noise.r)
    return mean[0]


def relink(
    tracks: list[TrackHistory],
    weights: AssociationWeights,
    fps: float,
    config: TrackerConfig,
    noise: motion.MotionNoise | None = None,
) -> list[list[int]]:
    """Chains of track indices judged to be one object by the association network.

    A track ending at frame e may continue as a track starting at s, with
    ``0 < s - e <= relink_max_s * fps``; the network scores the first track's state predicted
    to s against the second track's first box (the gap feature capped at the network's
    ``max_gap_s``, as online), and Hungarian picks the links. With
    ``config.association="iou"`` the score is the IoU of those two boxes, gated at
    ``iou_gate``, as online. ``noise``: the motion model's constants (None: the model's).
    """
    noise = noise or model_noise(weights)
    n = len(tracks)
    if n < 2:
        return [[k] for k in range(n)]
    starts = np.array([t.frames[0] for t in tracks])
    ends = np.array([t.frames[-1] for t in tracks])
    max_gap = config.relink_max_s * fps
    gap = starts[None, :] - ends[:, None]  # (ending a, starting b)
    cand_a, cand_b = np.nonzero((gap > 0) & (gap <= max_gap))
    if len(cand_a) == 0:
        return [[k] for k in range(n)]
    finals = {}
    for a in np.unique(cand_a):
        t = tracks[a]
        finals[a] = _final_state(np.array(t.frames), np.array(t.boxes), fps, noise)
    gap_s = gap[cand_a, cand_b] / fps
    pred = np.stack([finals[a][0] + finals[a][1] * g for a, g in zip(cand_a, gap_s, strict=True)])
    ref = motion.state_to_boxes(pred)[:, None, :]
    cur = np.stack([tracks[b].boxes[0] for b in cand_b])[:, None, :]
    gap_feature = np.minimum(gap_s, weights.max_gap_s)  # as the online tracker does
    if config.association == "iou":
        scorer, margin = IOU_SCORER, config.iou_gate
    else:
        scorer, margin = weights, config.relink_margin
    logits = scorer.logits(ref, cur, gap_feature[:, None, None])[:, 0, 0]
    gain = np.full((n, n), -1e3)
    gain[cand_a, cand_b] = logits - scorer.dustbin_logit - margin
    rows, cols = linear_sum_assignment(-gain)
    ok = gain[rows, cols] > 0
    successor = dict(zip(rows[ok].tolist(), cols[ok].tolist(), strict=True))
    has_pred = set(successor.values())
    chains = []
    for k in range(n):
        if k in has_pred:
            continue
        chain = [k]
        while chain[-1] in successor:
            chain.append(successor[chain[-1]])
        chains.append(chain)
    return chains


def mean_score_ranks(scores: list[np.ndarray], reference: np.ndarray) -> np.ndarray:
    """Mean rank of each trajectory's detection scores among ``reference``.

    Args:
        scores: one non-empty ``(L_i,)`` array of detection scores per trajectory.
        reference: ``(N,)`` the scores of every detection of the sequence.

    Returns:
        ``(len(scores),)`` means of the ranks, a rank being the fraction of ``reference``
        scoring at most as high (as :func:`~emtrack.track.normalised_scores` ranks);
        1 for every trajectory when ``reference`` is empty.
    """
    lengths = np.array([len(s) for s in scores], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError("mean_score_ranks: every trajectory needs at least one score")
    if len(reference) == 0 or len(scores) == 0:
        return np.ones(len(scores))
    ranks = np.searchsorted(np.sort(reference), np.concatenate(scores), side="right")
    starts = np.cumsum(lengths) - lengths
    return np.add.reduceat(ranks, starts) / (lengths * len(reference))


def gap_fill_frames(config: TrackerConfig, fps: float) -> int:
    """The longest gap (frames) the offline pass fills: ``max_gap_fill``, else the frames
    in ``max_gap_fill_s`` seconds at ``fps``."""
    if config.max_gap_fill is not None:
        return config.max_gap_fill
    return max(0, round(config.max_gap_fill_s * fps))


def offline_tracks(
    history: dict[int, TrackHistory],
    weights: AssociationWeights,
    fps: float,
    config: TrackerConfig,
    score_reference: np.ndarray,
    noise: motion.MotionNoise | None = None,
    reported_scores: dict[int, np.ndarray] | None = None,
    detection_boxes: bool = False,
    calibration: ScoreCalibration | None = None,
) -> MotTable:
    """The offline result: smoothed, gap-filled, re-linked trajectories with ids 1 … K.

    Args:
        history: every track's matches (:attr:`Tracker.history`).
        weights: the association weights (re-linking) and noise constants (smoothing).
        fps: frames per second.
        config: tracker settings (the offline ones: ``min_track_hits``, ``relink_*``,
            ``min_track_score_rank``, ``max_gap_fill*``).
        score_reference: ``(N,)`` the scores of all the sequence's detections, as the tracker
            compared them; ``min_track_score_rank`` ranks a trajectory's scores among these.
        noise: the motion model's constants for re-linking and smoothing (None: the model's).
        reported_scores: the score column to write for each track's detections, by track id
            (e.g. the file's own scores when the tracker compared calibrated ones); None: the
            history's scores.
        detection_boxes: report the detections' own boxes in the frames a trajectory was
            detected (the smoothed boxes fill its gaps), for an input whose detections
            estimate the objects better than the filter does (``output_boxes``).
        calibration: the score calibration fitted to the input, if any: with it (and
            ``reported_scores``, the raw scores it reads) a trajectory is dropped when its
            mixture (:meth:`ScoreCalibration.track_log_odds`) judges it more likely clutter
            than a real object, instead of by ``min_track_score_rank`` (0 still keeps all).
    """
    noise = noise or model_noise(weights)
    tracks = [
        h
        for h in sorted(history.values(), key=lambda h: h.track_id)
        if h.confirmed and len(h.frames) >= config.min_track_hits
    ]
    chains = relink(tracks, weights, fps, config, noise)
    if config.min_track_score_rank > 0 and chains:
        odds = None
        if calibration is not None and reported_scores is not None:
            # The fitted mixture judges each trajectory as a whole, by its detections'
            # scores and its length: kept when a real object is the likelier class.
            odds = calibration.track_log_odds(
                [np.concatenate([reported_scores[tracks[k].track_id] for k in c]) for c in chains]
            )
        if odds is not None:
            chains = [c for c, o in zip(chains, odds, strict=True) if o >= 0.0]
        else:
            # Persistent detector false positives form trajectories of low-confidence
            # detections; true objects score higher on average.
            ranks = mean_score_ranks(
                [np.concatenate([np.asarray(tracks[k].scores) for k in c]) for c in chains],
                np.asarray(score_reference, dtype=np.float64),
            )
            chains = [
                c for c, r in zip(chains, ranks, strict=True) if r >= config.min_track_score_rank
            ]
    chains.sort(key=lambda c: tracks[c[0]].frames[0])
    out_frames, out_ids, out_boxes, out_scores = [], [], [], []
    for new_id, chain in enumerate(chains, start=1):
        frames = np.concatenate([np.asarray(tracks[k].frames) for k in chain])
        boxes = np.concatenate([np.asarray(tracks[k].boxes) for k in chain])
        scores = np.concatenate(
            [
                np.asarray(
                    tracks[k].scores
                    if reported_scores is None
                    else reported_scores[tracks[k].track_id]
                )
                for k in chain
            ]
        )
        f_out, b_out = motion.smooth_track(
            frames,
            boxes,
            fps,
            noise,
            gap_fill_frames(config, fps),
        )
        s_out = np.zeros(len(f_out))
        detected = np.searchsorted(f_out, frames)
        s_out[detected] = scores
        if detection_boxes:
            b_out[detected] = boxes  # the smoothed boxes fill the gaps only
        out_frames.append(f_out)
        out_ids.append(np.full(len(f_out), new_id))
        out_boxes.append(b_out)
        out_scores.append(s_out)
    if not out_frames:
        return MotTable.from_arrays(
            np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
        )
    return MotTable.from_arrays(
        np.concatenate(out_frames),
        np.concatenate(out_boxes),
        np.concatenate(out_scores),
        np.concatenate(out_ids),
    )

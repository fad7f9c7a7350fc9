"""What a training run samples from: detection streams of files and synthetic scenes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emtrack.io import SequencePaths, find_sequences, read_mot, read_seqinfo
from emtrack.synth import default_training_scenes
from emtrack.train.clips import ClipSampler, DetectionStream
from emtrack.train.config import TrainConfig

__all__ = ["data_fingerprint", "streams_from_paths", "synthetic_streams", "trained_max_gap_s"]

logger = logging.getLogger(__name__)


def streams_from_paths(
    paths: Sequence[str | Path], det_name: str = "det.txt"
) -> list[DetectionStream]:
    """Detection streams from det files or sequence folders (identities are dropped)."""
    streams: list[DetectionStream] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            seqinfo_path = path.parent.parent / "seqinfo.ini"
            seqs = [
                SequencePaths(
                    path.parent.parent.name,
                    path,
                    seqinfo_path if seqinfo_path.exists() else None,
                    None,
                )
            ]
        else:
            seqs = find_sequences(path, det_name)
        for seq in seqs:
            table = read_mot(seq.det)
            if seq.seqinfo is not None:
                info = read_seqinfo(seq.seqinfo)
                size = (info.im_width, info.im_height) if info.im_width and info.im_height else None
                streams.append(
                    DetectionStream.from_table(
                        seq.name, table, info.frame_rate, info.seq_length, size
                    )
                )
            else:
                logger.warning("%s: no seqinfo.ini beside it, assuming 30 fps", seq.det)
                streams.append(DetectionStream.from_table(seq.name, table, 30.0))
    return streams


def synthetic_streams(config: TrainConfig) -> list[DetectionStream]:
    """Detection streams of the run's ``config.synthetic_scenes`` synthetic training scenes."""
    scenes = default_training_scenes(config.synthetic_scenes, config.seed, config.synthetic_frames)
    out = []
    for scene in scenes:
        info = scene.seqinfo
        out.append(
            DetectionStream.from_table(
                info.name,
                scene.detections,
                info.frame_rate,
                info.seq_length,
                (info.im_width, info.im_height),
            )
        )
    return out


def data_fingerprint(streams: Sequence[DetectionStream]) -> str:
    """SHA-256 of what training samples from: every stream's boxes per frame, frame rate and
    image area, in order (names and paths are left out, so moved files still match)."""
    digest = hashlib.sha256()
    for stream in streams:
        counts = np.array([len(frame) for frame in stream.frames], dtype=np.int64)
        boxes = [np.asarray(frame, dtype=np.float64).reshape(-1, 4) for frame in stream.frames]
        digest.update(np.array([len(counts)], dtype=np.int64).tobytes())
        digest.update(np.array([stream.frame_rate, stream.image_area], dtype=np.float64).tobytes())
        digest.update(counts.tobytes())
        digest.update(np.concatenate([np.zeros((0, 4)), *boxes]).tobytes())
    return digest.hexdigest()


def trained_max_gap_s(sampler: ClipSampler, config: TrainConfig) -> float:
    """The longest time gap (s) the network sees in training: between linked clip frames
    (``chain``), or from a slot's frame-0 detection to the last clip frame (``predicted``,
    whose gap feature counts the time since the slot was last detected)."""
    frames = config.clip_length - 1 if config.association == "predicted" else 1
    return sampler.max_gap_s * frames

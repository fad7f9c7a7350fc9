"""The built-in synthetic scene every ``emtrack viz`` command falls back to (no data needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emtrack.io import MotTable, SeqInfo
from emtrack.synth import DetectionNoiseConfig, Scene, SceneConfig, generate_scene

__all__ = ["SyntheticExample", "synthetic_example", "synthetic_scene"]


def synthetic_scene(num_frames: int = 100, seed: int = 0, mean_objects: float = 12.0) -> Scene:
    """A 1280x720, 10 fps street with misses, short bursts of misses and false positives."""
    config = SceneConfig(
        num_frames=num_frames,
        image_width=1280,
        image_height=720,
        frame_rate=10.0,
        mean_objects=mean_objects,
        noise=DetectionNoiseConfig(
            box_noise_frac=0.05, miss_prob=0.1, burst_start_prob=0.02, fp_per_frame=1.0
        ),
    )
    return generate_scene(config, seed)


@dataclass(frozen=True)
class SyntheticExample:
    """A synthetic scene and emtrack's result on it.

    Attributes:
        result: Tracks from the online tracker (the detections' identities are never shown
            to it).
        gt: The true boxes with identities.
        detections: The noisy detections (``ids``: true identity, -1 for false positives).
        seqinfo: Size, frame rate and length.
    """

    result: MotTable
    gt: MotTable
    detections: MotTable
    seqinfo: SeqInfo


def synthetic_example(
    num_frames: int = 100, seed: int = 0, model: str | Path | None = None
) -> SyntheticExample:
    """Generate :func:`synthetic_scene` and track it (online) with ``model`` (default: shipped)."""
    from emtrack.track import track_sequence

    scene = synthetic_scene(num_frames, seed)
    d = scene.detections
    anonymous = MotTable.from_arrays(d.frames, d.boxes_xyxy, d.scores)
    run = track_sequence(anonymous, scene.seqinfo, model=model)
    return SyntheticExample(run.result, scene.gt, scene.detections, scene.seqinfo)

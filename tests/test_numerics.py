"""Numerical safety: float32 training stays finite on extreme but valid clips; float64 works.

Thousands of random clips mix the extremes of issue 5: 1–2 px and 5000 px boxes, 0.5 px jitter
and 500 px jumps, one detection and 300 detections per frame, frames without any detection and
objects unseen for most of the clip, frame gaps from 1/60 s to 4 s, and noise constants anywhere
within (and at the corners of) :class:`~emtrack.model.network.NoiseModel`'s bounds. Each batch
goes through the EM loss forward and backward in float32; the loss and every gradient must be
finite. (Before ``safe_cholesky`` jittered only the failing matrices up to diagonal dominance,
some of these batches raised ``FloatingPointError``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from emtrack.cli import main
from emtrack.model.checkpoint import load_checkpoint
from emtrack.model.loss import OBJECTIVES, ClipBatch, em_loss
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.train import TrainConfig, train
from emtrack.train.clips import pad_clips

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Extremes:
    """What one random clip may contain (each field is drawn per clip from these choices).

    Attributes:
        heights: ``tiny`` (1–2 px), ``huge`` (4000–5000 px) or ``mixed`` (log-uniform 1–5000 px).
        motion: ``jitter`` (±0.5 px per frame), ``jump`` (±500 px) or ``mixed``.
        visibility: probability that an object is detected in a frame.
        empty_frame: probability that a frame (after the first) has no detection at all.
    """

    heights: tuple[str, ...] = ("tiny", "huge", "mixed")
    motion: tuple[str, ...] = ("jitter", "jump", "mixed")
    visibility: tuple[float, ...] = (1.0, 0.5, 0.1)
    empty_frame: float = 0.3


def extreme_clip(
    rng: np.random.Generator, clip_length: int, objects: int, extremes: Extremes = Extremes()
) -> tuple[list[np.ndarray], float, float]:
    """One clip: ``clip_length`` arrays ``(n_t, 4)`` of xyxy boxes, its frame gap (s), image area.

    The first frame always has a detection (as :class:`~emtrack.train.clips.ClipSampler`
    guarantees); later frames may be empty.
    """
    regime = rng.choice(extremes.heights)
    if regime == "tiny":
        heights = rng.uniform(1.0, 2.0, objects)
    elif regime == "huge":
        heights = rng.uniform(4000.0, 5000.0, objects)
    else:
        heights = np.exp(rng.uniform(0.0, math.log(5000.0), objects))
    widths = np.maximum(heights * np.exp(rng.uniform(math.log(0.2), math.log(5.0), objects)), 1.0)
    position = rng.uniform(-500.0, 6000.0, (objects, 2))  # partly outside the image is valid
    motion = rng.choice(extremes.motion)
    visibility = float(rng.choice(extremes.visibility))
    frames = []
    for step in range(clip_length):
        if step > 0:
            jitter = rng.uniform(-0.5, 0.5, position.shape)
            jump = rng.uniform(-500.0, 500.0, position.shape)
            if motion == "jitter":
                position = position + jitter
            elif motion == "jump":
                position = position + jump
            else:
                position = position + np.where(rng.uniform(size=(objects, 1)) < 0.3, jump, jitter)
        seen = rng.uniform(size=objects) < visibility
        if step == 0:
            seen[0] = True
        elif rng.uniform() < extremes.empty_frame:
            seen[:] = False
        x, y = position[:, 0], position[:, 1]
        boxes = np.stack([x - widths / 2, y - heights, x + widths / 2, y], -1)
        frames.append(boxes[seen])
    frame_gap_s = float(rng.choice([1.0, 2.0, 4.0])) / float(rng.choice([1.0, 7.0, 30.0, 60.0]))
    area = float(rng.choice([640.0 * 480.0, 1920.0 * 1080.0, 1e4 * 1e4]))
    return frames, frame_gap_s, area


def extreme_batch(
    rng: np.random.Generator, clips: int, clip_length: int, max_objects: int
) -> ClipBatch:
    """A padded float64 batch of :func:`extreme_clip` clips with 1 … ``max_objects`` objects."""
    drawn = []
    for _ in range(clips):
        objects = int(rng.choice([1, 2, int(rng.integers(1, max_objects + 1)), max_objects]))
        drawn.append(extreme_clip(rng, clip_length, objects))
    frames, gaps, areas = zip(*drawn, strict=True)
    return pad_clips(list(frames), np.array(gaps), np.array(areas))


def extreme_noise(rng: np.random.Generator) -> NoiseModel:
    """Noise constants log-uniform within the model's bounds, or at one of their corners."""
    values = {}
    for name, (low, high) in NoiseModel._BOUNDS.items():
        if rng.uniform() < 0.3:
            values[name] = float(rng.choice([low, high]))
        else:
            values[name] = float(np.exp(rng.uniform(math.log(low), math.log(high))))
    return NoiseModel(**values)


def assert_finite_loss_and_gradients(
    batch: ClipBatch, objective: str, seed: int, dtype: torch.dtype = torch.float32
) -> None:
    torch.manual_seed(seed)
    net = AssociationNet((16, 16)).to(dtype)
    noise = extreme_noise(np.random.default_rng(seed)).to(dtype)
    out = em_loss(net, noise, batch.to("cpu", dtype), objective, sinkhorn_iterations=10)  # type: ignore[arg-type]
    out.loss.backward()
    context = f"seed {seed}, objective {objective}, noise {noise.export()}"
    assert torch.isfinite(out.loss), context
    assert torch.isfinite(out.association_nll) and torch.isfinite(out.noise_nll), context
    for name, parameter in [*net.named_parameters(), *noise.named_parameters()]:
        assert parameter.grad is not None, f"{name}: no gradient ({context})"
        assert torch.isfinite(parameter.grad).all(), f"{name}: non-finite gradient ({context})"


@pytest.mark.parametrize("chunk", range(5))
def test_float32_loss_and_gradients_finite_on_random_extreme_clips(chunk):
    """50 batches of 40 clips (2000 clips) in 5 chunks; the objective cycles per batch."""
    for index in range(chunk * 10, chunk * 10 + 10):
        rng = np.random.default_rng(10_000 + index)
        clip_length = int(rng.choice([2, 6, 10]))
        batch = extreme_batch(rng, clips=40, clip_length=clip_length, max_objects=12)
        assert_finite_loss_and_gradients(batch, OBJECTIVES[index % 3], seed=index)


@pytest.mark.parametrize("index", range(3))
def test_float32_finite_with_300_detections_per_frame(index):
    """Crowded frames: 300 detections (mixed extremes) in every frame of a clip."""
    rng = np.random.default_rng(20_000 + index)
    crowded = Extremes(visibility=(1.0,), empty_frame=0.0)
    clips = [extreme_clip(rng, 4, 300, crowded), extreme_clip(rng, 4, 1)]
    frames, gaps, areas = zip(*clips, strict=True)
    batch = pad_clips(list(frames), np.array(gaps), np.array(areas))
    assert batch.mask[0].sum(-1).tolist() == [300] * 4
    assert_finite_loss_and_gradients(batch, OBJECTIVES[index], seed=index)


SINGLE_BOX = np.array([[100.0, 100.0, 101.0, 101.0]])  # 1 px


@pytest.mark.parametrize(
    "name, frames",
    [
        ("one 1 px box, then nothing for 9 frames", [SINGLE_BOX] + [np.zeros((0, 4))] * 9),
        (
            "5000 px box jumping 500 px a frame",
            [np.array([[500.0 * k, 0.0, 500.0 * k + 2000.0, 5000.0]]) for k in range(10)],
        ),
        (
            "1 px and 5000 px boxes in the same frames, 0.5 px jitter",
            [
                np.array([[0.5 * (k % 2), 0.0, 1.0, 1.0], [10.0, 10.0, 2010.0, 5010.0]])
                for k in range(10)
            ],
        ),
        (
            "two identical boxes (a duplicate detection) in every frame",
            [np.array([[10.0, 10.0, 20.0, 40.0]] * 2) for _ in range(10)],
        ),
    ],
)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_float32_finite_on_named_extremes(name, frames, objective):
    batch = pad_clips([frames], np.array([4.0]), np.array([1920.0 * 1080.0]))
    for seed in range(3):
        assert_finite_loss_and_gradients(batch, objective, seed=seed)


def test_trainer_float64_run_gives_float64_parameters(tmp_path):
    config = TrainConfig(
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        synthetic_scenes=1,
        synthetic_frames=30,
        heldout_scenes=1,
        heldout_clips=4,
        hidden=(8,),
        float64=True,
    )
    result = train(config, checkpoint=tmp_path / "run.pt", progress=False)
    assert math.isfinite(result.history[0].loss)
    for parameter in [*result.net.parameters(), *result.noise.parameters()]:
        assert parameter.dtype == torch.float64
    saved = load_checkpoint(tmp_path / "run.pt")
    assert all(v.dtype == torch.float64 for v in saved["net"].values())


def test_cli_float64_switch_end_to_end(tmp_path, capsys):
    """``emtrack train --float64``: a float64 checkpoint, a finite loss, the float64 config."""
    out = tmp_path / "run.pt"
    argv = ["-q", "train", "--synthetic", "1", "--synthetic-frames", "30", "--epochs", "1"]
    argv += ["--steps-per-epoch", "2", "--batch-size", "2", "--heldout-scenes", "0"]
    argv += ["--hidden", "8", "--float64", "--out", str(out)]
    assert main(argv) == 0
    assert "epoch 1/1" in capsys.readouterr().out
    saved = load_checkpoint(out)
    assert saved["config"]["float64"] is True
    assert math.isfinite(saved["history"][0]["loss"])
    tensors = [*saved["net"].values(), *saved["noise"].values()]
    assert all(t.dtype == torch.float64 for t in tensors)
    # The same run without the switch is float32.
    assert main([a for a in argv if a != "--float64"]) == 0
    assert all(t.dtype == torch.float32 for t in load_checkpoint(out)["net"].values())

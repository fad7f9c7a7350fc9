"""Data-parallel training (torch.distributed DDP under torchrun) equals one process.

The main test launches ``torchrun --standalone --nproc_per_node=2 -m emtrack train`` (gloo, CPU,
one thread per process) and compares the final weights with a one-process run of the same
config. The other tests check the pieces: sharding covers every clip once, and the loss weights
make DDP's averaged gradient the full batch's gradient.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from emtrack.errors import EmtrackInputError
from emtrack.model.checkpoint import load_checkpoint
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.train import TrainConfig, train
from emtrack.train.clips import ClipSampler
from emtrack.train.data import synthetic_streams
from emtrack.train.distributed import DistributedContext, env_rank, setup
from emtrack.train.trainer import EmLossModule, detection_count

pytestmark = pytest.mark.usefixtures("one_torch_thread")

JOB = TrainConfig(
    synthetic_scenes=2,
    synthetic_frames=40,
    heldout_scenes=1,
    heldout_clips=4,
    epochs=2,
    steps_per_epoch=3,
    batch_size=5,  # uneven shards: 3 + 2 clips
    clip_length=4,
    hidden=(8,),
    sinkhorn_iterations=5,
    float64=True,
)
JOB_FLAGS = [
    "--synthetic", "2", "--synthetic-frames", "40", "--heldout-scenes", "1",
    "--heldout-clips", "4", "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "5",
    "--clip-length", "4", "--hidden", "8", "--sinkhorn-iterations", "5", "--float64",
]  # fmt: skip


def test_torchrun_two_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "emtrack", "train", *JOB_FLAGS, "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # Only rank 0 prints the epoch lines (and writes the checkpoint).
    assert [
        line.split("  ")[0] for line in done.stdout.splitlines() if line.startswith("epoch")
    ] == [
        "epoch 1/2",
        "epoch 2/2",
    ]
    assert not [p for p in tmp_path.iterdir() if p != out]

    distributed = load_checkpoint(out)
    assert distributed["world_size"] == 2 and distributed["step"] == 6
    single = train(JOB, progress=False)
    for part, module in (("net", single.net), ("noise", single.noise)):
        for key, value in module.state_dict().items():
            other = distributed[part][key]
            assert other.dtype == torch.float64
            # Equal up to the order of floating-point reductions (DDP sums the ranks' gradients).
            torch.testing.assert_close(other, value, rtol=1e-9, atol=1e-12, msg=f"{part}.{key}")
    for got, want in zip(distributed["history"], single.history, strict=True):
        assert got["loss"] == pytest.approx(want.loss, rel=1e-12)
        assert got["accuracy"] == want.accuracy
    # The comparison can fail: one more step of training moves the weights far beyond it.
    longer = train(TrainConfig(**{**JOB.to_dict(), "steps_per_epoch": 4}), progress=False)
    assert not torch.allclose(longer.net.mlp[0].weight, single.net.mlp[0].weight, rtol=1e-6)


@pytest.mark.parametrize("batch_size, world_size", [(5, 2), (8, 4), (3, 3), (7, 3)])
def test_shards_cover_every_clip_once(batch_size, world_size):
    slices = [
        DistributedContext(rank, world_size).shard_slice(batch_size) for rank in range(world_size)
    ]
    covered = [i for part in slices for i in range(batch_size)[part]]
    assert covered == list(range(batch_size))
    sizes = [part.stop - part.start for part in slices]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_weighted_shard_gradients_average_to_the_full_batch_gradient():
    """What DDP computes (the mean over ranks of each rank's weighted gradient) equals the
    one-process gradient, for uneven shards with different detection counts."""
    config = TrainConfig(synthetic_scenes=2, synthetic_frames=40, clip_length=4, hidden=(8,))
    sampler = ClipSampler(tuple(synthetic_streams(config)), 4)
    full = sampler.sample(5, np.random.default_rng(3))
    torch.manual_seed(0)
    module = EmLossModule(AssociationNet((8,)).double(), NoiseModel().double(), config)

    def gradient(batch, weight: float) -> list[torch.Tensor]:
        module.zero_grad(set_to_none=True)
        batch = batch.to("cpu", torch.float64)
        loss = module(batch.boxes_xyxy, batch.mask, batch.dt, batch.log_clutter_density)[0]
        (loss * weight).backward()
        return [p.grad.clone() for p in module.parameters()]

    expected = gradient(full, 1.0)
    world = 2
    per_rank = []
    counts = []
    for rank in range(world):
        context = DistributedContext(rank, world)
        shard = context.shard(full)
        share = detection_count(shard.mask) / detection_count(full.mask)
        counts.append(detection_count(shard.mask))
        per_rank.append(gradient(shard, world * share))
    assert counts[0] != counts[1]  # the weighting matters
    for k, want in enumerate(expected):
        mean = sum(g[k] for g in per_rank) / world
        torch.testing.assert_close(mean, want, rtol=1e-10, atol=1e-12)
    # Unweighted (plain DDP averaging of per-rank means) would be wrong.
    plain = [gradient(DistributedContext(r, world).shard(full), 1.0) for r in range(world)]
    assert not torch.allclose(sum(g[0] for g in plain) / world, expected[0], rtol=1e-6)


def test_without_torchrun_nothing_is_distributed(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    context = setup("cpu")
    assert (context.world_size, context.rank, context.is_main, context.enabled) == (
        1,
        0,
        True,
        False,
    )
    assert env_rank() == 0
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert not setup("cpu").enabled and not torch.distributed.is_initialized()


@pytest.mark.parametrize(
    "env, problem",
    [
        ({"WORLD_SIZE": "2", "RANK": "one"}, "RANK='one' is not an integer"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 is not below WORLD_SIZE=2"),
        ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK=-1 must be >= 0"),
    ],
)
def test_bad_launcher_variables_are_clear_errors(monkeypatch, env, problem):
    monkeypatch.delenv("RANK", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(EmtrackInputError, match=problem.replace("(", r"\(")):
        setup("cpu")


def test_batch_smaller_than_world_is_refused(monkeypatch):
    """Checked before any collective: a 2-process run cannot split a batch of 1 clip."""
    from emtrack.train import trainer

    monkeypatch.setattr(trainer.distributed, "setup", lambda device: DistributedContext(0, 2))
    config = TrainConfig(synthetic_scenes=1, synthetic_frames=30, batch_size=1, hidden=(8,))
    with pytest.raises(ValueError, match="batch_size=1 is smaller than the 2 processes"):
        train(config, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu():
    config = TrainConfig(**{**JOB.to_dict(), "heldout_scenes": 0})
    cpu = train(config, progress=False)
    gpu = train(TrainConfig(**{**config.to_dict(), "device": "cuda"}), progress=False)
    for key, value in gpu.net.state_dict().items():
        assert value.device.type == "cuda"
        torch.testing.assert_close(value.cpu(), cpu.net.state_dict()[key], rtol=1e-7, atol=1e-9)
    assert np.isfinite(gpu.history[-1].loss)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_gpu_is_a_clear_error(tmp_path, capsys):
    from emtrack.cli import main

    out = tmp_path / "run.pt"
    assert main(["train", "--synthetic", "1", "--device", "cuda", "--out", str(out)]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err
    assert main(["train", "--synthetic", "1", "--device", "gpu", "--out", str(out)]) == 2
    assert "must be a torch device" in capsys.readouterr().err
    assert not out.exists()

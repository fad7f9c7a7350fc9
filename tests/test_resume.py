"""Training survives interruption: SIGKILL, Ctrl-C (SIGINT) and ``emtrack train --resume``.

A run that is killed and resumed must end with the same weights, bit for bit, as a run that was
never stopped: the checkpoint carries the optimiser state, the random states and the position,
and the data are rebuilt from the config (and checked against the checkpoint's fingerprint).
The kill tests run the real command line in a subprocess and stop it from outside.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from emtrack.cli import main
from emtrack.io import write_mot
from emtrack.model.checkpoint import load_checkpoint
from emtrack.synth import default_training_scenes
from emtrack.train import TrainConfig, train
from emtrack.train.checkpoint import save_checkpoint
from emtrack.train.trainer import TrainingInterrupted

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A small job: 3 epochs of 30 steps (long enough to be stopped from outside mid-run).
JOB = {
    "synthetic_scenes": 2,
    "synthetic_frames": 40,
    "heldout_scenes": 0,
    "epochs": 3,
    "steps_per_epoch": 30,
    "batch_size": 2,
    "clip_length": 4,
    "hidden": (8,),
    "sinkhorn_iterations": 5,
    "checkpoint_every": 5,
}
JOB_FLAGS = [
    "--synthetic", "2", "--synthetic-frames", "40", "--heldout-scenes", "0", "--epochs", "3",
    "--steps-per-epoch", "30", "--batch-size", "2", "--clip-length", "4", "--hidden", "8",
    "--sinkhorn-iterations", "5", "--checkpoint-every", "5",
]  # fmt: skip
TOTAL_STEPS = 90


def weights(state: dict) -> dict[str, torch.Tensor]:
    """Network and noise tensors of a checkpoint dict (or of a TrainResult's modules)."""
    return {
        **{f"net.{k}": v for k, v in state["net"].items()},
        **{f"noise.{k}": v for k, v in state["noise"].items()},
    }


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def comparable_history(history: list[dict]) -> list[dict]:
    """History without the timing field (clips/s differs between any two runs)."""
    return [{k: v for k, v in record.items() if k != "clips_per_s"} for record in history]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Checkpoint dict of the job run without stopping (in-process, one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tmp_path_factory.mktemp("reference") / "reference.pt"
        train(TrainConfig(**JOB), checkpoint=path, progress=False)
    finally:
        torch.set_num_threads(before)
    return load_checkpoint(path)


def subprocess_env() -> dict[str, str]:
    """One thread per process (bitwise reproducible, and the machine is shared); no torchrun."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def start_training(out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "emtrack", "train", *JOB_FLAGS, "--out", str(out), *extra]
    return subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_checkpoint(path: Path, min_step: int, process: subprocess.Popen[str]) -> int:
    """Poll until ``path`` holds a checkpoint of at least ``min_step`` steps; its step."""
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(
                f"training ended (status {process.returncode}) before step {min_step}:\n{err}"
            )
        if path.is_file():
            # Atomic writes: the file is always a complete checkpoint (old or new).
            step = int(torch.load(path, weights_only=True)["step"])
            if step >= min_step:
                return step
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no checkpoint of step >= {min_step} within 120 s")


def test_sigkilled_run_resumes_to_the_same_weights(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run.pt"
    process = start_training(out)
    seen = wait_for_checkpoint(out, 10, process)
    process.kill()  # SIGKILL: no chance to save anything more
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    killed_at = int(torch.load(out, weights_only=True)["step"])
    assert 10 <= seen <= killed_at < TOTAL_STEPS  # really stopped mid-run
    assert killed_at % 5 == 0  # a periodic checkpoint
    # At most the hidden temporary file of a write the kill cut short (never a partial run.pt).
    leftovers = [p.name for p in tmp_path.iterdir() if p != out]
    assert all(name.startswith(".run.pt.") and name.endswith(".tmp") for name in leftovers)

    # Resume: nothing but --out and --resume; the config and data come from the checkpoint.
    assert main(["-q", "train", "--out", str(out), "--resume"]) == 0
    capsys.readouterr()
    final = load_checkpoint(out)
    assert final["step"] == TOTAL_STEPS
    assert_bitwise_equal(weights(final), weights(uninterrupted))
    assert comparable_history(final["history"]) == comparable_history(uninterrupted["history"])
    # The optimiser state, too, is the uninterrupted run's.
    for a, b in zip(
        final["optimizer"]["state"].values(),
        uninterrupted["optimizer"]["state"].values(),
        strict=True,
    ):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_saves_the_current_step_and_exits_130(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run.pt"
    process = start_training(out)
    wait_for_checkpoint(out, 12, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    saved = torch.load(out, weights_only=True)
    step = int(saved["step"])
    assert 12 <= step < TOTAL_STEPS
    # One clear line: the step, where the checkpoint is and how to resume; no traceback.
    assert "Traceback" not in err
    message = next(line for line in err.splitlines() if "interrupted" in line)
    assert f"after step {step} of {TOTAL_STEPS}" in message
    assert str(out) in message and "--resume" in message

    assert main(["-q", "train", "--out", str(out), "--resume"]) == 0
    capsys.readouterr()
    assert_bitwise_equal(weights(load_checkpoint(out)), weights(uninterrupted))


def test_signal_in_process_raises_training_interrupted_at_a_step_boundary(tmp_path):
    """The library raises TrainingInterrupted (a KeyboardInterrupt) after saving the step."""
    config = TrainConfig(**{**JOB, "epochs": 2, "steps_per_epoch": 4})
    path = tmp_path / "run.pt"

    def interrupt_after_first_epoch(record) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as caught:
        train(config, checkpoint=path, progress=False, on_epoch=interrupt_after_first_epoch)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert (caught.value.step, caught.value.total_steps) == (4, 8)
    assert caught.value.checkpoint == path and caught.value.exit_status == 130
    assert load_checkpoint(path)["step"] == 4
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is restored
    resumed = train(config, checkpoint=path, progress=False, resume=path)
    reference = train(config, progress=False)
    assert_bitwise_equal(
        {**resumed.net.state_dict(), **resumed.noise.state_dict()},
        {**reference.net.state_dict(), **reference.noise.state_dict()},
    )


def test_resume_with_more_epochs_equals_the_longer_run(tmp_path):
    # A constant step size: the cosine schedule depends on the total number of steps, so there
    # more epochs continue on the longer run's schedule from the resumed step. (The clutter
    # warm-up is counted in epochs from the start, so more epochs do not change it.)
    short = TrainConfig(
        **{**JOB, "epochs": 1, "steps_per_epoch": 6, "checkpoint_every": 0},
        lr_schedule="constant",
    )
    path = tmp_path / "run.pt"
    train(short, checkpoint=path, progress=False)
    longer = dataclasses.replace(short, epochs=2)
    resumed = train(longer, checkpoint=path, progress=False, resume=path)
    reference = train(longer, progress=False)
    assert [r.epoch for r in resumed.history] == [1, 2]
    assert_bitwise_equal(resumed.net.state_dict(), reference.net.state_dict())
    assert_bitwise_equal(resumed.noise.state_dict(), reference.noise.state_dict())
    # And the comparison can fail: without the random state the weights differ.
    data = load_checkpoint(path)
    data["numpy_rng"] = np.random.default_rng(99).bit_generator.state
    data["step"] = 3  # also resume mid-epoch
    torch.save(data, path)
    other = train(longer, progress=False, resume=path)
    assert not torch.equal(other.net.mlp[0].weight, reference.net.mlp[0].weight)


def test_checkpoints_from_before_a_field_existed_resume_as_they_ran(tmp_path):
    """A checkpoint written before ``clutter_scale``, ``clutter_warmup_epochs`` and
    ``lr_schedule`` existed was trained with scale 1 and a constant step size; resuming it must
    keep those, not take today's defaults."""
    old = TrainConfig(
        **{**JOB, "epochs": 1, "steps_per_epoch": 4, "checkpoint_every": 0},
        clutter_scale=1.0,
        clutter_warmup_epochs=0.0,
        lr_schedule="constant",
    )
    path = tmp_path / "old.pt"
    train(old, checkpoint=path, progress=False)
    data = load_checkpoint(path)
    for key in ("clutter_scale", "clutter_warmup_epochs", "lr_schedule"):
        del data["config"][key]
    torch.save(data, path)
    assert TrainConfig.from_checkpoint(data["config"]) == old
    assert TrainConfig.from_dict(data["config"]) != old  # today's defaults differ
    longer = dataclasses.replace(old, epochs=2)
    resumed = train(longer, progress=False, resume=path)
    reference = train(longer, progress=False)
    assert_bitwise_equal(resumed.net.state_dict(), reference.net.state_dict())


@pytest.fixture
def small_checkpoint(tmp_path) -> Path:
    path = tmp_path / "run.pt"
    config = TrainConfig(**{**JOB, "epochs": 1, "steps_per_epoch": 2})
    train(config, checkpoint=path, progress=False)
    return path


@pytest.mark.parametrize(
    "flags, problem",
    [
        (["--batch-size", "4"], "batch_size=4 (checkpoint: 2)"),
        (["--seed", "1"], "seed=1 (checkpoint: 0)"),
        (["--hidden", "16"], "hidden=(16,) (checkpoint: (8,))"),
        (["--epochs", "0"], "epochs must be >= 1"),
    ],
)
def test_resume_refuses_an_incompatible_config(small_checkpoint, flags, problem, capsys):
    before = small_checkpoint.read_bytes()
    assert main(["train", "--out", str(small_checkpoint), "--resume", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emtrack: error:") and problem in err
    assert small_checkpoint.read_bytes() == before  # untouched


def test_resume_accepts_unchanged_values_and_the_resumable_fields(small_checkpoint, capsys):
    argv = ["train", "--out", str(small_checkpoint), "--resume", "--batch-size", "2"]
    argv += ["--epochs", "2", "--checkpoint-every", "1", "--device", "cpu"]
    assert main(argv) == 0
    assert "epoch 2/2" in capsys.readouterr().out
    assert load_checkpoint(small_checkpoint)["step"] == 4


def test_resume_from_another_checkpoint_writes_to_out(small_checkpoint, tmp_path, capsys):
    target = tmp_path / "continued.pt"
    argv = ["train", "--out", str(target), "--resume", str(small_checkpoint), "--epochs", "2"]
    assert main(argv) == 0
    assert load_checkpoint(small_checkpoint)["step"] == 2
    assert load_checkpoint(target)["step"] == 4


def test_resume_errors(tmp_path, small_checkpoint, capsys):
    missing = tmp_path / "missing.pt"
    assert main(["train", "--out", str(missing), "--resume"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err

    # A checkpoint written without the training state (weights only) cannot be resumed.
    data = load_checkpoint(small_checkpoint)
    from emtrack.model.network import AssociationNet, NoiseModel
    from emtrack.train import TrainResult

    config = TrainConfig.from_dict(data["config"])
    bare = tmp_path / "bare.pt"
    result = TrainResult(AssociationNet(config.hidden), NoiseModel(), config, [])
    save_checkpoint(bare, result, None, 0, np.random.default_rng(0))
    assert main(["train", "--out", str(bare), "--resume"]) == 2
    assert "no training state" in capsys.readouterr().err


def test_resume_refuses_changed_detections(tmp_path, capsys):
    scene = default_training_scenes(1, 5, num_frames=30)[0]
    det = tmp_path / "seq" / "det" / "det.txt"
    write_mot(det, scene.detections)
    checkpoint = tmp_path / "run.pt"
    argv = ["-q", "train", "--det", str(det), "--synthetic", "0", "--heldout-scenes", "0"]
    argv += ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--hidden", "8"]
    assert main([*argv, "--out", str(checkpoint)]) == 0
    assert load_checkpoint(checkpoint)["det_paths"] == [str(det.resolve())]
    # Same file, more epochs, no --det: the recorded path is used.
    assert main(["-q", "train", "--out", str(checkpoint), "--resume", "--epochs", "2"]) == 0
    # The file changes under the checkpoint: resuming is refused, naming the problem.
    shifted = dataclasses.replace(scene.detections, boxes_xyxy=scene.detections.boxes_xyxy + 1.0)
    write_mot(det, shifted)
    assert main(["train", "--out", str(checkpoint), "--resume", "--epochs", "3"]) == 2
    assert "training data differ" in capsys.readouterr().err
    assert load_checkpoint(checkpoint)["step"] == 4

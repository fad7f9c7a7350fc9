"""The end-of-training verdict (network vs IoU+Hungarian), where it is recorded, and the warnings
when a model with a bad verdict is loaded; and where training starts (``--init``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from emtrack.cli import main
from emtrack.errors import EmtrackInputError
from emtrack.model.checkpoint import load_checkpoint
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.track import AssociationWeights, Tracker, export_weights, load_model
from emtrack.train import TrainConfig, TrainResult
from emtrack.train.clips import pad_clips
from emtrack.train.init import (
    load_initial_weights,
    read_initial_weights,
    resolve_init,
    shipped_model_path,
)
from emtrack.train.verdict import MIN_AGREEMENT, Verdict, confident_iou_links, judge
from sequences import write_sequence

GAPS_GOOD = {1: {"accuracy": 0.97, "iou_accuracy": 0.96, "oracle_accuracy": 0.98}}
GAPS_BAD = {
    1: {"accuracy": 0.40, "iou_accuracy": 0.96, "oracle_accuracy": 0.98},
    2: {"accuracy": 0.99, "iou_accuracy": 0.94, "oracle_accuracy": 0.98},
}

# A tiny synthetic run: 2 training scenes, 2 held-out scenes of 60 frames (gaps 1-4 fit).
TINY = ["--synthetic", "2", "--synthetic-frames", "60", "--heldout-scenes", "2"]
TINY += ["--heldout-clips", "8", "--batch-size", "4"]


# --------------------------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------------------------


def test_judge_compares_the_mean_over_gaps_with_iou() -> None:
    assert judge(GAPS_GOOD, None, 0).ok is True
    bad = judge(GAPS_BAD, None, 0)  # 69.5 % vs 95 % on average, though ahead at gap 2
    assert bad.ok is False
    assert bad.synthetic_accuracy == pytest.approx(0.695)
    assert "69.5% right" in bad.problems[0] and "IoU+Hungarian 95.0%" in bad.problems[0]


def test_judge_the_agreement_on_own_detections() -> None:
    assert judge({}, MIN_AGREEMENT, 100).ok is True
    low = judge(GAPS_GOOD, MIN_AGREEMENT - 0.01, 100)
    assert low.ok is False and len(low.problems) == 1
    assert "of the 100 links that IoU makes with confidence" in low.problems[0]


def test_nothing_to_judge_on_is_no_verdict() -> None:
    verdict = judge({}, None, 0)
    assert verdict.ok is None and verdict.problems == ()


def test_verdict_round_trips_through_plain_types() -> None:
    verdict = judge(GAPS_BAD, 0.5, 7)
    data = verdict.to_dict()
    assert data["ok"] is False and data["gaps"]["1"]["accuracy"] == 0.40
    assert Verdict.from_dict(data) == verdict


def test_confident_iou_links_need_overlap_and_mutual_best() -> None:
    box = np.array([100.0, 100.0, 150.0, 200.0])
    frame0 = [box, box + [300, 0, 300, 0], box + [600, 0, 600, 0]]
    frame1 = [
        box + [2, 0, 2, 0],  # IoU 0.92 with box 0: confident
        box + [300 + 30, 0, 300 + 30, 0],  # IoU 0.25 with box 1: too little
        box + [600 + 5, 0, 600 + 5, 0],  # IoU 0.82 with box 2 ...
        box + [600 + 8, 0, 600 + 8, 0],  # ... which prefers the one above: not mutual
    ]
    batch = pad_clips([[np.array(frame0), np.array(frame1)]], np.array([0.1]), np.array([1e6]))
    assert confident_iou_links(batch)[0, 0].tolist() == [0, -1, 2, -1]


# --------------------------------------------------------------------------------------------
# Recorded verdicts and the warnings on load
# --------------------------------------------------------------------------------------------


def _weights_with(verdict: Verdict | None) -> AssociationWeights:
    torch.manual_seed(0)
    arrays = {**AssociationNet().export(), **NoiseModel().export()}
    if verdict is not None:
        arrays["verdict"] = verdict.to_dict()
    return AssociationWeights.from_arrays(arrays)


def test_npz_records_the_verdict_and_a_bad_one_warns_on_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **_weights_with(judge(GAPS_BAD, None, 0)).to_arrays())
    with pytest.warns(UserWarning, match="links worse than IoU"):
        weights = load_model(path)
    assert weights.verdict is not None and weights.verdict["ok"] is False
    with pytest.warns(UserWarning, match="bad.npz: this model links worse"):
        Tracker(frame_rate=10, model=path)


def test_good_or_missing_verdicts_load_silently(tmp_path: Path) -> None:
    good, none = tmp_path / "good.npz", tmp_path / "none.npz"
    np.savez(good, **_weights_with(judge(GAPS_GOOD, None, 0)).to_arrays())
    np.savez(none, **_weights_with(None).to_arrays())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(good).verdict["ok"] is True
        assert load_model(none).verdict is None
        load_model(None)  # the shipped model


def test_malformed_verdict_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    arrays = _weights_with(None).to_arrays()
    np.savez(path, **arrays, verdict=np.array("{not json"))
    with pytest.raises(EmtrackInputError, match="verdict is not valid JSON"):
        load_model(path)


def test_export_of_a_result_and_of_a_checkpoint_keeps_the_verdict(tmp_path: Path) -> None:
    net, noise = AssociationNet(), NoiseModel()
    verdict = judge(GAPS_BAD, None, 0)
    result = TrainResult(net, noise, TrainConfig(), [], verdict=verdict)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exporting a result does not warn (training did)
        exported = export_weights(result, tmp_path / "w.npz")
    assert exported.verdict == verdict.to_dict()
    with pytest.warns(UserWarning, match="links worse"):
        assert load_model(tmp_path / "w.npz").verdict == verdict.to_dict()


# --------------------------------------------------------------------------------------------
# Where training starts
# --------------------------------------------------------------------------------------------


def test_auto_init_starts_from_the_shipped_weights() -> None:
    initial = resolve_init("auto", (32, 32))
    assert initial is not None and initial.source == shipped_model_path()
    net, noise = AssociationNet((32, 32)).double(), NoiseModel().double()
    load_initial_weights(initial, net, noise)
    shipped = load_model(None)
    loaded = AssociationWeights.from_arrays({**net.export(), **noise.export()})
    ref, cur = np.array([[10.0, 10, 40, 90]]), np.array([[12.0, 11, 42, 92], [200, 10, 230, 90]])
    assert np.allclose(loaded.logits(ref, cur, 0.1), shipped.logits(ref, cur, 0.1))
    assert loaded.noise_r == pytest.approx(shipped.noise_r)


def test_init_and_architecture() -> None:
    assert resolve_init("auto", (8,)) is None  # another architecture: random weights
    assert resolve_init("scratch", (32, 32)) is None
    with pytest.raises(EmtrackInputError, match="--hidden 32,32, or --init scratch"):
        resolve_init("shipped", (8,))


def test_init_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    np.savez(path, **_weights_with(None).to_arrays())
    assert read_initial_weights(path).hidden == (32, 32)
    with pytest.raises(EmtrackInputError, match="model file not found"):
        resolve_init(str(tmp_path / "missing.npz"), (32, 32))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(EmtrackInputError, match="not an emtrack weights file"):
        read_initial_weights(tmp_path / "junk.npz")


def test_old_checkpoints_resume_from_scratch() -> None:
    assert TrainConfig.from_checkpoint({"epochs": 2}).init == "scratch"


# --------------------------------------------------------------------------------------------
# End to end: a short run from random weights warns; the default starts from the shipped model
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_short_run_from_random_weights_ends_with_a_warning(tmp_path: Path, capsys) -> None:
    ckpt, npz = tmp_path / "s.pt", tmp_path / "s.npz"
    argv = ["train", *TINY, "--epochs", "1", "--steps-per-epoch", "2", "--init", "scratch"]
    assert main([*argv, "--out", str(ckpt), "--export", str(npz)]) == 0
    captured = capsys.readouterr()
    assert "gap 4:" in captured.out
    assert "emtrack: warning: --init scratch with 2 optimiser steps" in captured.err
    assert "WARNING: the trained network links WORSE than IoU+Hungarian" in captured.err
    assert f"recorded in {ckpt} and {npz}" in captured.err
    assert load_checkpoint(ckpt)["verdict"]["ok"] is False
    det = write_sequence(tmp_path / "seqs", "SEQ")
    for model in (npz, ckpt):
        track = ["track", "--det", str(det), "--out", str(tmp_path / "o.txt")]
        assert main([*track, "--model", str(model)]) == 0
        err = capsys.readouterr().err
        assert f"emtrack: warning: {model}: this model links worse than IoU+Hungarian" in err


@pytest.mark.slow
def test_short_default_run_is_at_least_as_good_as_iou(tmp_path: Path, capsys) -> None:
    """The default (--init auto) starts from the shipped model: 10 steps cannot spoil it."""
    ckpt = tmp_path / "d.pt"
    argv = ["train", *TINY, "--epochs", "1", "--steps-per-epoch", "10", "--out", str(ckpt)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "WARNING" not in captured.err and "warning" not in captured.err
    assert "verdict: ok" in captured.err
    verdict = load_checkpoint(ckpt)["verdict"]
    assert verdict["ok"] is True
    assert verdict["synthetic_accuracy"] >= verdict["synthetic_iou_accuracy"]


@pytest.mark.slow
def test_the_reported_run_on_real_detections(shared_data: Path, tmp_path: Path, capsys) -> None:
    """The issue's command: 1 epoch of 10 steps on YOLOX MOT17-02, before and after --init."""
    det = shared_data / "YOLOX-MOT17" / "MOT17-02"
    argv = ["train", "--det", str(det), "--epochs", "1", "--steps-per-epoch", "10"]
    assert main([*argv, "--out", str(tmp_path / "a.pt"), "--export", str(tmp_path / "a.npz")]) == 0
    assert "WARNING" not in capsys.readouterr().err
    verdict = load_checkpoint(tmp_path / "a.pt")["verdict"]
    assert verdict["ok"] is True and verdict["own_agreement"] >= MIN_AGREEMENT
    assert main([*argv, "--init", "scratch", "--out", str(tmp_path / "b.pt")]) == 0
    assert "links WORSE than IoU" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "b.pt")["verdict"]["ok"] is False

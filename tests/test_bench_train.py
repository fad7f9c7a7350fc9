"""``emtrack bench train``: rows, agreement check, JSON, CLI; and the loss path it times.

Tiny sizes only (k = 3 and 5, one timed run of one step): these tests check structure and
behaviour, never a time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import emtrack.model.loss as loss_module
from emtrack.bench.report import write_json
from emtrack.bench.train_bench import (
    TrainBenchConfig,
    TrainBenchReport,
    run_train_bench,
    synthetic_clips,
)
from emtrack.cli import main
from emtrack.model.kalman import (
    NoiseParams,
    clutter_correction,
    kalman_filter,
    posterior_loglik,
    rts_smoother,
)
from emtrack.model.loss import ClipBatch, association_products, clip_loglik, clip_observations
from emtrack.model.sinkhorn import log_sinkhorn_dustbin, real_assignment

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = TrainBenchConfig(
    ks=(3, 5),
    clip_length=4,
    batch_size=2,
    scaling_k=3,
    batch_sizes=(1, 2),
    repeats=1,
    min_time_s=0.0,
    agreement_chunk=1,
)

TINY_CLI = [
    "bench",
    "train",
    "--k",
    "3",
    "--clip-length",
    "4",
    "--batch-size",
    "2",
    "--batch-sizes",
    "1,2",
    "--scaling-k",
    "3",
    "--repeat",
    "1",
    "--min-time",
    "0",
]


@pytest.fixture(scope="module")
def tiny_report() -> TrainBenchReport:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_train_bench(TINY)
    finally:
        torch.set_num_threads(before)


def test_rows_compare_both_sides_on_every_k(tiny_report: TrainBenchReport) -> None:
    assert [row.k for row in tiny_report.rows] == [3, 5]
    for row in tiny_report.rows:
        assert row.clips == 2
        for rate in (
            row.dense_clips_per_s,
            row.structured_clips_per_s,
            row.dense_loss_clips_per_s,
            row.structured_loss_clips_per_s,
        ):
            assert rate is not None and math.isfinite(rate) and rate > 0.0
        for ratio in (row.ratio, row.loss_ratio):
            assert ratio is not None and math.isfinite(ratio) and ratio > 0.0
        assert row.dense_steps >= 1 and row.structured_steps >= 1
        assert row.note == ""


def test_both_sides_compute_the_same_loss(tiny_report: TrainBenchReport) -> None:
    assert tiny_report.all_agree
    for row in tiny_report.rows:
        assert row.agree is True
        assert row.loss_rel_diff is not None and row.loss_rel_diff <= 1e-9
        assert row.grad_rel_diff is not None and row.grad_rel_diff <= 1e-9
        # float32, first step from the same weights: close, not identical
        assert row.timed_dtype_loss_rel_diff is not None
        assert row.timed_dtype_loss_rel_diff <= 1e-3


def test_batch_scaling_rows(tiny_report: TrainBenchReport) -> None:
    assert [(s.batch_size, s.k) for s in tiny_report.scaling] == [(1, 3), (2, 3)]
    assert tiny_report.scaling[0].relative == pytest.approx(1.0)
    for srow in tiny_report.scaling:
        assert srow.clips_per_s > 0.0
    # Relative throughput ranks the batch sizes as their clips/s do (not inverted).
    by_rate = sorted(tiny_report.scaling, key=lambda srow: srow.clips_per_s)
    assert by_rate == sorted(tiny_report.scaling, key=lambda srow: srow.relative)


def test_table_lists_every_k_and_batch_size(tiny_report: TrainBenchReport) -> None:
    table = tiny_report.format_table()
    assert "dense clips/s" in table and "structured clips/s" in table
    lines = table.splitlines()
    assert sum(line.startswith("  3  ") for line in lines) == 2  # step and loss-only tables
    assert sum(line.startswith("  5  ") for line in lines) == 2
    assert any(line.split()[:1] == ["2"] for line in lines)  # batch scaling row


def test_json_has_the_issue_keys_and_machine(tiny_report: TrainBenchReport, tmp_path) -> None:
    path = tmp_path / "out" / "train.json"
    write_json(tiny_report, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.json"]  # no temp file left
    data = json.loads(path.read_text())
    assert data["benchmark"] == "train"
    assert data["dtype"] == "float32"
    assert data["torch_threads"] == 1
    assert data["config"]["ks"] == [3, 5]
    for row, original in zip(data["rows"], tiny_report.rows, strict=True):
        for key in ("k", "dense_clips_per_s", "structured_clips_per_s", "ratio"):
            assert key in row
        assert row["k"] == original.k
        assert row["ratio"] == pytest.approx(original.ratio)
    assert [s["batch_size"] for s in data["batch_scaling"]] == [1, 2]
    assert str(data["versions"]["torch"]).startswith(torch.__version__.split("+")[0])
    assert "cpu" in data["machine"]
    assert data["all_agree"] is True


def test_dense_above_max_k_is_skipped_with_a_note() -> None:
    config = TrainBenchConfig(
        ks=(2, 4),
        clip_length=3,
        batch_size=1,
        scaling_k=2,
        batch_sizes=(1,),
        repeats=1,
        min_time_s=0.0,
        dense_max_k=2,
    )
    report = run_train_bench(config)
    small, large = report.rows
    assert small.dense_clips_per_s is not None and small.agree is True
    assert large.dense_clips_per_s is None and large.ratio is None and large.agree is None
    assert large.loss_rel_diff is None and large.dense_steps == 0
    assert "skipped" in large.note
    assert large.structured_clips_per_s > 0.0
    assert report.all_agree  # a skipped k is no disagreement
    assert "k=4: dense skipped" in report.format_table()


def test_a_wrong_oracle_is_reported_as_disagreement(monkeypatch, tmp_path, capsys) -> None:
    real = loss_module.dense_clip_loglik

    def off_by_a_bit(*args, **kwargs):
        return real(*args, **kwargs) * (1.0 + 1e-4)

    monkeypatch.setattr(loss_module, "dense_clip_loglik", off_by_a_bit)
    config = TrainBenchConfig(
        ks=(3,),
        clip_length=3,
        batch_size=1,
        scaling_k=2,
        batch_sizes=(1,),
        repeats=1,
        min_time_s=0.0,
    )
    report = run_train_bench(config)
    assert report.rows[0].agree is False
    assert report.rows[0].loss_rel_diff > 1e-6
    assert not report.all_agree
    assert any("DISAGREEMENT" in note for note in report.notes)
    out = tmp_path / "train.json"
    assert main([*TINY_CLI, "--threads", "1", "--json", str(out)]) == 1
    assert "disagree" in capsys.readouterr().err
    assert json.loads(out.read_text())["all_agree"] is False


def test_cli_runs_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "train.json"
    assert main([*TINY_CLI, "--threads", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "structured clips/s" in printed
    data = json.loads(out.read_text())
    assert [row["k"] for row in data["rows"]] == [3]
    assert data["config"]["clip_length"] == 4 and data["config"]["batch_size"] == 2


@pytest.mark.parametrize(
    "bad",
    [["--k", "0"], ["--k", "3,x"], ["--batch-sizes", ""], ["--min-time", "-1"], ["--repeat", "0"]],
)
def test_cli_bad_arguments_exit_2(bad: list[str], tmp_path, capsys) -> None:
    out = tmp_path / "train.json"
    assert main(["bench", "train", *bad, "--json", str(out)]) == 2
    assert not out.exists()


def test_cli_clip_length_below_two_is_an_error(tmp_path, capsys) -> None:
    out = tmp_path / "train.json"
    assert main([*TINY_CLI, "--clip-length", "1", "--json", str(out)]) == 2
    assert "clip_length" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"ks": ()}, {"ks": (0,)}, {"clip_length": 1}, {"repeats": 0}, {"min_time_s": -1.0}],
)
def test_config_rejects_bad_values(kwargs) -> None:
    with pytest.raises(ValueError):
        TrainBenchConfig(**kwargs)


def test_synthetic_clips_have_k_detections_per_frame() -> None:
    batch = synthetic_clips(3, 5, 7, np.random.default_rng(1))
    assert batch.boxes_xyxy.shape == (3, 5, 7, 4)
    assert batch.boxes_xyxy.dtype == torch.float64
    assert bool(batch.mask.all())
    boxes = batch.boxes_xyxy
    assert bool((boxes[..., 2] > boxes[..., 0]).all() and (boxes[..., 3] > boxes[..., 1]).all())
    assert set(np.round(batch.dt.numpy() * 30.0).tolist()) <= {1.0, 2.0}
    again = synthetic_clips(3, 5, 7, np.random.default_rng(1))
    assert torch.equal(again.boxes_xyxy, boxes)
    # detections are shuffled per frame: frame order differs from slot order somewhere
    heights = boxes[..., 3] - boxes[..., 1]
    assert not torch.allclose(heights[:, 0], heights[:, 1], rtol=0.2)


# --------------------------------------------------------------------------------------------
# The loss path the benchmark times: the structured closed forms equal the oracles
# --------------------------------------------------------------------------------------------

NOISE = NoiseParams(
    torch.tensor(0.3, dtype=torch.float64),
    torch.tensor(0.01, dtype=torch.float64),
    torch.tensor(1.5, dtype=torch.float64),
)


def padded_batch(seed: int, b: int, t: int, n: int) -> tuple[ClipBatch, torch.Tensor]:
    """Random boxes, about a quarter of the slots padded, soft Sinkhorn products."""
    gen = torch.Generator().manual_seed(seed)
    corner = torch.rand(b, t, n, 2, generator=gen, dtype=torch.float64) * 300.0
    size = torch.rand(b, t, n, 2, generator=gen, dtype=torch.float64) * 60.0 + 15.0
    mask = torch.rand(b, t, n, generator=gen) < 0.75
    mask[:, 0, 0] = True
    batch = ClipBatch(
        torch.cat([corner, corner + size], -1),
        mask,
        torch.rand(b, generator=gen, dtype=torch.float64) * 0.1 + 0.03,
        torch.full((b,), -math.log(640.0 * 480.0), dtype=torch.float64),
    )
    logits = torch.randn(b, t - 1, n, n, generator=gen, dtype=torch.float64) * 3.0
    log_assignment = log_sinkhorn_dustbin(
        logits, torch.tensor(0.5, dtype=torch.float64), mask[:, 1:], mask[:, :-1], 30
    )
    return batch, association_products(real_assignment(log_assignment), mask[:, 0])


@pytest.mark.parametrize(("seed", "b", "t", "n"), [(0, 3, 6, 4), (1, 2, 2, 3), (2, 1, 5, 6)])
@pytest.mark.parametrize("objective", ["smoothed", "filtered", "innovations"])
def test_structured_loss_equals_dense_loss(seed, b, t, n, objective) -> None:
    batch, products = padded_batch(seed, b, t, n)
    structured = clip_loglik(batch, products, NOISE, objective)
    dense = clip_loglik(batch, products, NOISE, objective, kalman="dense")
    torch.testing.assert_close(structured, dense, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("objective", ["smoothed", "filtered"])
def test_closed_form_posterior_loglik_equals_generic_one(objective) -> None:
    """``H C Hᵀ`` from the filter's ``S⁻¹`` and gains equals forming the posterior first."""
    batch, products = padded_batch(7, 2, 5, 4)
    obs, pos0, h0 = clip_observations(batch, products, NOISE.r)
    filtered, _ = kalman_filter(obs, pos0, h0, batch.dt, NOISE)
    if objective == "smoothed":
        means, covs = rts_smoother(filtered, batch.dt)
    else:
        means, covs = filtered.filtered_mean, filtered.filtered_cov
    expected = posterior_loglik(obs, means, covs) + clutter_correction(
        obs, batch.log_clutter_density
    )
    torch.testing.assert_close(
        clip_loglik(batch, products, NOISE, objective), expected, rtol=1e-9, atol=1e-9
    )


def test_unknown_kalman_is_rejected() -> None:
    batch, products = padded_batch(3, 1, 3, 2)
    with pytest.raises(ValueError, match="kalman"):
        clip_loglik(batch, products, NOISE, "smoothed", kalman="sparse")  # type: ignore[arg-type]


def test_json_path_in_a_new_folder_is_created(tiny_report: TrainBenchReport, tmp_path) -> None:
    path = Path(tmp_path) / "a" / "b" / "train.json"
    write_json(tiny_report, path)
    assert json.loads(path.read_text())["rows"][0]["k"] == 3

"""Training: never reads identities, variable-count clips, checkpoints, config, sampler."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import emtrack.train.data as data_module
import emtrack.train.trainer as trainer_module
from emtrack.io import MotTable, read_mot, write_mot
from emtrack.model.network import AssociationNet, NoiseModel
from emtrack.synth import default_training_scenes
from emtrack.train import TrainConfig, train
from emtrack.train.clips import ClipSampler, DetectionStream, pad_clips
from emtrack.train.data import streams_from_paths, synthetic_streams
from emtrack.train.heldout import evaluate_accuracy, heldout_clips
from emtrack.train.trainer import EmLossModule, clutter_log_scale, step_size

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"epochs": 1, "steps_per_epoch": 3, "synthetic_scenes": 0, "heldout_scenes": 0}


@pytest.fixture(scope="module")
def scene():
    return default_training_scenes(1, 123, num_frames=40)[0]


def write_sequence(
    root: Path, table: MotTable, seqinfo_text: str, ids: np.ndarray | None = None
) -> Path:
    """``root/seq/det/det.txt`` (``table`` with its id column replaced by ``ids``) and
    ``root/seq/seqinfo.ini``."""
    if ids is not None:
        table = dataclasses.replace(table, ids=ids)
    path = root / "seq" / "det" / "det.txt"
    write_mot(path, table)
    (root / "seq" / "seqinfo.ini").write_text(seqinfo_text)
    return path


def scene_files(scene) -> tuple[MotTable, str]:
    info = scene.seqinfo
    text = (
        "[Sequence]\nname=seq\n"
        f"frameRate={info.frame_rate:g}\nseqLength={info.seq_length}\n"
        f"imWidth={info.im_width}\nimHeight={info.im_height}\n"
    )
    return scene.detections, text


def weights(result) -> dict[str, torch.Tensor]:
    return {
        **{f"net.{k}": v for k, v in result.net.state_dict().items()},
        **{f"noise.{k}": v for k, v in result.noise.state_dict().items()},
    }


def identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------
# Identities are never read
# --------------------------------------------------------------------------------------------


def check_identities_are_ignored(tmp_path: Path, table: MotTable, seqinfo_text: str) -> None:
    rng = np.random.default_rng(0)
    n = len(table)
    path_a = write_sequence(tmp_path / "a", table, seqinfo_text, rng.integers(0, 10_000, n))
    path_b = write_sequence(tmp_path / "b", table, seqinfo_text, rng.integers(0, 10_000, n))
    table_a, table_b = read_mot(path_a), read_mot(path_b)
    assert (table_a.ids != table_b.ids).mean() > 0.9
    np.testing.assert_array_equal(table_a.boxes_xyxy, table_b.boxes_xyxy)

    config = TrainConfig(**TINY, batch_size=4, seed=0)
    result_a = train(config, det_paths=[path_a], progress=False)
    result_b = train(config, det_paths=[path_b], progress=False)
    assert np.isfinite(result_a.history[0].loss)
    assert identical(weights(result_a), weights(result_b))
    # The comparison can fail: another seed, or other boxes, give other weights.
    other_seed = train(dataclasses.replace(config, seed=1), det_paths=[path_a], progress=False)
    assert not identical(weights(result_a), weights(other_seed))
    jittered = dataclasses.replace(
        table, boxes_xyxy=table.boxes_xyxy + rng.uniform(-2.0, 2.0, (n, 1))
    )
    path_c = write_sequence(tmp_path / "c", jittered, seqinfo_text)
    other_boxes = train(config, det_paths=[path_c], progress=False)
    assert not identical(weights(result_a), weights(other_boxes))


def test_training_never_reads_identities(tmp_path, scene):
    check_identities_are_ignored(tmp_path, *scene_files(scene))


def test_training_never_reads_identities_real_detections(tmp_path, shared_data):
    """The same on MOT15 TUD-Campus public detections (skipped without the real data)."""
    sequence = shared_data / "MOT15" / "TUD-Campus"
    table = read_mot(sequence / "det" / "det.txt")
    check_identities_are_ignored(tmp_path, table, (sequence / "seqinfo.ini").read_text())


class _TableWithoutIds:
    """A MotTable whose id column raises when read."""

    def __init__(self, table: MotTable) -> None:
        self._table = table

    @property
    def ids(self):
        raise AssertionError("training read the id column")

    def __getattr__(self, name):
        return getattr(self._table, name)


def test_training_does_not_touch_the_id_column(tmp_path, scene, monkeypatch):
    table, seqinfo_text = scene_files(scene)
    path = write_sequence(tmp_path, table, seqinfo_text, np.arange(len(table)))
    real_read_mot = data_module.read_mot
    calls = []

    def read_mot_without_ids(p):
        calls.append(p)
        return _TableWithoutIds(real_read_mot(p))

    monkeypatch.setattr(data_module, "read_mot", read_mot_without_ids)
    with pytest.raises(AssertionError, match="id column"):
        _ = read_mot_without_ids(path).ids
    result = train(TrainConfig(**TINY, batch_size=2), det_paths=[path], progress=False)
    assert len(calls) == 2 and len(result.history) == 1


def test_streams_from_file_and_folder_agree(tmp_path, scene):
    path = write_sequence(tmp_path, *scene_files(scene))
    (from_file,) = streams_from_paths([path])
    (from_folder,) = streams_from_paths([tmp_path])
    assert from_file.name == from_folder.name == "seq"
    assert from_file.frame_rate == scene.seqinfo.frame_rate
    assert from_file.image_area == scene.seqinfo.im_width * scene.seqinfo.im_height
    assert len(from_file) == scene.seqinfo.seq_length
    for a, b in zip(from_file.frames, from_folder.frames, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# A short run on synthetic variable-count clips
# --------------------------------------------------------------------------------------------


def test_training_on_variable_count_clips():
    config = TrainConfig(
        epochs=2,
        steps_per_epoch=10,
        synthetic_scenes=4,
        synthetic_frames=100,
        heldout_scenes=2,
        heldout_clips=16,
        batch_size=8,
    )
    # The clips really have different numbers of detections per frame.
    sampler = ClipSampler(tuple(synthetic_streams(config)), config.clip_length)
    counts = sampler.sample(8, np.random.default_rng(0)).mask.sum(-1)
    assert len(set(counts.flatten().tolist())) > 3

    epochs = []
    result = train(config, progress=False, on_epoch=epochs.append)
    history = result.history
    assert epochs == history
    assert [r.epoch for r in history] == [1, 2]
    for record in history:
        for value in (record.loss, record.association_nll, record.noise_nll, record.slot_mass):
            assert math.isfinite(value)
        assert record.clips_per_s > 0
        for value in (record.accuracy, record.iou_accuracy, record.oracle_accuracy):
            assert value is not None and 0.0 <= value <= 1.0
        assert set(record.noise) == {"q", "r", "p_vel"}
        assert all(math.isfinite(v) and v > 0 for v in record.noise.values())
    for p in [*result.net.parameters(), *result.noise.parameters()]:
        assert torch.isfinite(p).all()

    # The untrained network the run started from (the trainer seeds torch, then builds it).
    torch.manual_seed(config.seed)
    untrained = AssociationNet(config.hidden)
    clips = heldout_clips(config)
    assert clips is not None
    before = evaluate_accuracy(untrained, NoiseModel(), clips, config, baselines=False)
    assert history[1].loss < history[0].loss or history[1].accuracy > before["accuracy"]


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def test_checkpoint_loads_with_weights_only(tmp_path):
    config = TrainConfig(
        epochs=2,
        steps_per_epoch=2,
        synthetic_scenes=1,
        synthetic_frames=30,
        heldout_scenes=0,
        batch_size=2,
        hidden=(8,),
    )
    path = tmp_path / "sub" / "ckpt.pt"
    result = train(config, checkpoint=path, progress=False)
    assert path.is_file()
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary files left
    payload = torch.load(path, weights_only=True)
    assert {"config", "net", "history"} <= set(payload)
    assert TrainConfig.from_dict(payload["config"]) == config
    assert len(payload["history"]) == 2
    assert payload["history"][-1]["loss"] == result.history[-1].loss
    net = AssociationNet(config.hidden)
    net.load_state_dict(payload["net"])
    assert identical(net.state_dict(), result.net.state_dict())
    noise = NoiseModel()
    noise.load_state_dict(payload["noise"])
    assert identical(noise.state_dict(), result.noise.state_dict())


# --------------------------------------------------------------------------------------------
# TrainConfig
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"clip_length": 1},
        {"clip_length": 0},
        {"batch_size": 0},
        {"steps_per_epoch": 0},
        {"epochs": 0},
        {"max_stride": 0},
        {"max_detections": 0},
        {"sinkhorn_iterations": 0},
        {"synthetic_frames": 0},
        {"learning_rate": 0.0},
        {"learning_rate": -1e-3},
        {"learning_rate": math.nan},
        {"learning_rate": math.inf},
        {"objective": "bogus"},
        {"lr_schedule": "linear"},
        {"clutter_scale": 0.0},
        {"clutter_scale": -1.0},
        {"clutter_scale": math.inf},
        {"clutter_warmup_epochs": -0.1},
        {"clutter_warmup_epochs": math.nan},
        {"synthetic_scenes": -1},
        {"heldout_scenes": -1},
        {"heldout_clips": 0},
        {"hidden": (32, 0)},
        {"seed": -1},
    ],
)
def test_train_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_train_config_round_trip():
    default = TrainConfig()
    assert TrainConfig.from_dict(default.to_dict()) == default
    custom = TrainConfig(hidden=[16, 8, 4], objective="innovations", float64=True, seed=7)
    assert custom.hidden == (16, 8, 4)
    data = json.loads(json.dumps(custom.to_dict()))
    assert data["hidden"] == [16, 8, 4]
    assert TrainConfig.from_dict(data) == custom
    assert TrainConfig.from_dict({}) == default
    assert TrainConfig.from_dict({"epochs": 3}) == TrainConfig(epochs=3)
    assert custom.dtype == torch.float64 and default.dtype == torch.float32


def test_train_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="epoch"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError):
        TrainConfig.from_dict({**TrainConfig().to_dict(), "lr": 0.1})


def test_cosine_schedule_decays_to_zero():
    config = TrainConfig(epochs=2, steps_per_epoch=5, learning_rate=0.02, lr_schedule="cosine")
    sizes = [step_size(config, step) for step in range(10)]
    assert sizes[0] == pytest.approx(0.02)
    assert sizes[5] == pytest.approx(0.01)  # half-way: half the step size
    assert all(a > b for a, b in itertools.pairwise(sizes))
    assert 0 < sizes[-1] < 0.001
    constant = dataclasses.replace(config, lr_schedule="constant")
    assert {step_size(constant, step) for step in range(10)} == {0.02}


def test_cosine_schedule_reaches_the_optimiser(monkeypatch):
    seen: list[float] = []
    real_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    config = TrainConfig(
        **{**TINY, "steps_per_epoch": 4, "synthetic_scenes": 1},
        synthetic_frames=30,
        batch_size=2,
        lr_schedule="cosine",
    )
    train(config, progress=False)
    assert seen == pytest.approx([step_size(config, step) for step in range(4)])
    assert seen[0] > seen[-1]


def test_clutter_scale_warms_up_geometrically():
    config = TrainConfig(
        epochs=2, steps_per_epoch=10, clutter_scale=20.0, clutter_warmup_epochs=0.4
    )
    scales = [math.exp(clutter_log_scale(config, step)) for step in range(20)]
    assert scales[0] == pytest.approx(1.0)
    assert scales[2] == pytest.approx(math.sqrt(20.0))  # half-way through the 4 warm-up steps
    assert all(a < b for a, b in itertools.pairwise(scales[:5]))
    assert scales[4:] == pytest.approx([20.0] * 16)
    at_once = dataclasses.replace(config, clutter_warmup_epochs=0.0)
    assert [clutter_log_scale(at_once, step) for step in range(3)] == [math.log(20.0)] * 3


def test_the_trainer_passes_the_clutter_density_to_the_loss(monkeypatch):
    """Each step's loss sees ``-log(image area) + log(scale at that step)``, and a larger
    density makes unlinked detections cheaper (a lower loss)."""
    seen: list[torch.Tensor] = []
    sampled: list[torch.Tensor] = []
    real_em_loss, real_sample = trainer_module.em_loss, ClipSampler.sample

    def spy_loss(net, noise, batch, *args, **kwargs):
        seen.append(batch.log_clutter_density.detach().double().clone())
        return real_em_loss(net, noise, batch, *args, **kwargs)

    def spy_sample(self, *args, **kwargs):
        batch = real_sample(self, *args, **kwargs)
        sampled.append(batch.log_clutter_density.clone())  # -log(image area) of each clip
        return batch

    monkeypatch.setattr(trainer_module, "em_loss", spy_loss)
    monkeypatch.setattr(ClipSampler, "sample", spy_sample)
    config = TrainConfig(
        **{**TINY, "steps_per_epoch": 5, "synthetic_scenes": 1},
        synthetic_frames=30,
        batch_size=2,
        clutter_scale=20.0,
        clutter_warmup_epochs=0.4,
    )
    train(config, progress=False)
    assert len(seen) == len(sampled) == 5
    for step, (loss_side, raw) in enumerate(zip(seen, sampled, strict=True)):
        expected = raw + clutter_log_scale(config, step)
        torch.testing.assert_close(loss_side, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(seen[0], sampled[0], rtol=0, atol=1e-5)  # scale 1 at step 0
    assert float((seen[-1] - sampled[-1]).min()) == pytest.approx(math.log(20.0), abs=1e-5)

    config = TrainConfig(synthetic_scenes=2, synthetic_frames=40, batch_size=4)
    sampler = ClipSampler(tuple(synthetic_streams(config)), config.clip_length)
    batch = sampler.sample(4, np.random.default_rng(0)).to("cpu", torch.float64)
    torch.manual_seed(0)
    module = EmLossModule(AssociationNet(config.hidden).double(), NoiseModel().double(), config)
    args = (batch.boxes_xyxy, batch.mask, batch.dt)
    plain = module(*args, batch.log_clutter_density)[1]
    assert module(*args, batch.log_clutter_density + math.log(20.0))[1] < plain


def test_train_needs_something_to_train_on():
    with pytest.raises(ValueError, match="nothing to train on"):
        train(TrainConfig(**TINY), progress=False)


# --------------------------------------------------------------------------------------------
# Clip sampler
# --------------------------------------------------------------------------------------------

FPS = 10.0


def counting_stream(num_frames: int = 40, seed: int = 0) -> tuple[DetectionStream, list[int]]:
    """Frame f (1-based) has ``f % 7`` detections (some frames empty); box k of frame f is at
    ``x1 = 10 f``, ``y1 = 10 k``; scores random; ids set (and dropped by the stream)."""
    rng = np.random.default_rng(seed)
    frames, boxes, scores = [], [], []
    counts = [f % 7 for f in range(1, num_frames + 1)]
    for f, count in enumerate(counts, start=1):
        for k in range(count):
            frames.append(f)
            boxes.append([10.0 * f, 10.0 * k, 10.0 * f + 5.0, 10.0 * k + 8.0])
            scores.append(rng.uniform())
    table = MotTable.from_arrays(
        frames=frames, boxes_xyxy=boxes, scores=scores, ids=np.arange(len(frames))
    )
    stream = DetectionStream.from_table("count", table, FPS, num_frames, (640.0, 480.0))
    return stream, counts


def test_detection_stream_drops_ids_and_sorts_by_score():
    stream, counts = counting_stream()
    assert not hasattr(stream, "ids")
    assert [len(f) for f in stream.frames] == counts
    assert stream.image_area == 640.0 * 480.0
    # Within a frame, rows are in descending score order: recover scores from the box rows.
    table_rows = {}
    rng = np.random.default_rng(0)
    for f, count in enumerate(counts, start=1):
        for k in range(count):
            table_rows[(f, k)] = rng.uniform()
    for f, frame in enumerate(stream.frames, start=1):
        ks = (frame[:, 1] / 10.0).round().astype(int)
        scores = [table_rows[(f, k)] for k in ks]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("max_detections", [64, 3])
def test_clip_sampler_masks_match_frame_counts(max_detections):
    stream, counts = counting_stream()
    sampler = ClipSampler((stream,), clip_length=5, max_stride=3, max_detections=max_detections)
    rng = np.random.default_rng(1)
    strides = set()
    for _ in range(5):
        batch = sampler.sample(6, rng)
        b, t, n = batch.mask.shape
        assert (b, t) == (6, 5)
        assert n <= max_detections
        assert batch.boxes_xyxy.shape == (b, t, n, 4)
        assert batch.boxes_xyxy.dtype == torch.float64
        assert torch.isfinite(batch.boxes_xyxy).all()
        assert torch.isfinite(batch.dt).all() and torch.isfinite(batch.log_clutter_density).all()
        assert torch.allclose(
            batch.log_clutter_density, torch.tensor(-math.log(640.0 * 480.0), dtype=torch.float64)
        )
        boxes = batch.boxes_xyxy.numpy()
        mask = batch.mask.numpy()
        for i in range(b):
            assert mask[i, 0].any()  # the first frame is never empty
            start = round(float(boxes[i, 0, 0, 0]) / 10.0)
            stride = round(float(batch.dt[i]) * FPS)
            strides.add(stride)
            assert 1 <= stride <= 3
            for k in range(t):
                frame = start + k * stride
                assert frame <= len(counts)
                count = min(counts[frame - 1], max_detections)
                expected_mask = np.arange(n) < count
                np.testing.assert_array_equal(mask[i, k], expected_mask)
                np.testing.assert_array_equal(boxes[i, k, :count], stream.frames[frame - 1][:count])
                # Padding boxes are the finite unit box.
                assert (boxes[i, k, count:] == [0.0, 0.0, 1.0, 1.0]).all()
    assert len(strides) > 1


def test_clip_sampler_keeps_the_highest_scores():
    stream, _ = counting_stream()
    sampler = ClipSampler((stream,), clip_length=3, max_stride=1, max_detections=2)
    batch = sampler.sample(10, np.random.default_rng(2))
    for i in range(10):
        start = round(float(batch.boxes_xyxy[i, 0, 0, 0]) / 10.0)
        kept = batch.boxes_xyxy[i, 0][batch.mask[i, 0]].numpy()
        np.testing.assert_array_equal(kept, stream.frames[start - 1][:2])


def test_clip_sampler_max_gap_is_the_longest_sampled_gap():
    """Every drawn clip's dt is at most ``max_gap_s``, and the longest one is reached: the
    largest stride over the slowest stream (a stream too short for it allows a smaller one;
    one shorter than a clip is never drawn)."""

    def stream(name: str, fps: float, frames: int) -> DetectionStream:
        boxes = tuple(np.array([[0.0, 0.0, 10.0, 30.0]]) for _ in range(frames))
        return DetectionStream(name, boxes, fps, 1e4)

    fast, slow_short, tiny = stream("fast", 30.0, 100), stream("slow", 10.0, 7), stream("t", 2.0, 3)
    sampler = ClipSampler((fast, slow_short, tiny), clip_length=4, max_stride=3)
    assert sampler.max_gap_s == pytest.approx(max(3 / 30.0, 2 / 10.0))  # slow: 7 frames, stride 2
    dts = sampler.sample(400, np.random.default_rng(0)).dt.numpy()
    assert dts.max() == pytest.approx(sampler.max_gap_s)
    assert ClipSampler((fast,), clip_length=4, max_stride=2).max_gap_s == pytest.approx(2 / 30)


def test_trained_gap_reaches_the_checkpoint_and_the_weights(tmp_path):
    from emtrack.track.weights import export_weights, load_model
    from emtrack.train.data import trained_max_gap_s

    config = TrainConfig(
        epochs=1, steps_per_epoch=1, synthetic_scenes=2, synthetic_frames=30, heldout_scenes=0,
        batch_size=2, hidden=(8,), max_stride=2,
    )  # fmt: skip
    path = tmp_path / "ckpt.pt"
    result = train(config, checkpoint=path, progress=False)
    sampler = ClipSampler(tuple(synthetic_streams(config)), config.clip_length, config.max_stride)
    expected = sampler.max_gap_s
    assert expected == pytest.approx(2 / min(s.frame_rate for s in synthetic_streams(config)))
    assert result.max_gap_s == expected
    assert torch.load(path, weights_only=True)["max_gap_s"] == expected
    assert load_model(path).max_gap_s == expected
    assert export_weights(result, tmp_path / "w.npz").max_gap_s == expected
    assert load_model(tmp_path / "w.npz").max_gap_s == expected
    predicted = dataclasses.replace(config, association="predicted")
    assert trained_max_gap_s(sampler, predicted) == pytest.approx(expected * 9)


def test_clip_sampler_rejects_unusable_streams():
    stream, _ = counting_stream(num_frames=4)
    with pytest.raises(ValueError, match="clip_length"):
        ClipSampler((stream,), clip_length=1)
    with pytest.raises(ValueError, match="at least clip_length"):
        ClipSampler((stream,), clip_length=5)
    empty = DetectionStream("empty", tuple(np.zeros((0, 4)) for _ in range(10)), FPS, 1.0)
    with pytest.raises(ValueError, match="first frame"):
        ClipSampler((empty,), clip_length=3).sample(2, np.random.default_rng(0))


def test_pad_clips():
    clips = [
        [np.array([[0.0, 0.0, 2.0, 4.0]]), np.zeros((0, 4))],
        [np.zeros((2, 4)) + [[1.0, 1.0, 3.0, 5.0]], np.array([[2.0, 2.0, 4.0, 6.0]])],
    ]
    batch = pad_clips(clips, np.array([0.1, 0.2]), np.array([100.0, 200.0]))
    assert batch.boxes_xyxy.shape == (2, 2, 2, 4)
    np.testing.assert_array_equal(batch.mask.numpy(), [[[1, 0], [0, 0]], [[1, 1], [1, 0]]])
    np.testing.assert_array_equal(batch.boxes_xyxy[0, 1].numpy(), [[0, 0, 1, 1], [0, 0, 1, 1]])
    np.testing.assert_allclose(batch.log_clutter_density.numpy(), -np.log([100.0, 200.0]))


def test_adaptation_fine_tunes_on_the_input_deterministically(tmp_path) -> None:
    """``adapt_weights`` changes the network by a few self-supervised steps on one input's
    detections, the same run to run; ``emtrack track --adapt`` tracks with it."""
    from emtrack.cli import main
    from emtrack.cli.track import ADAPT_STEPS_DEFAULT
    from emtrack.io import write_mot
    from emtrack.synth import SceneConfig, generate_scene
    from emtrack.track import AssociationWeights, load_model
    from emtrack.train.adapt import ADAPT_STEPS, adapt_weights

    assert ADAPT_STEPS == ADAPT_STEPS_DEFAULT
    scene = generate_scene(SceneConfig(num_frames=60, frame_rate=10.0, mean_objects=8), 0)
    arrays = load_model().to_arrays()
    first = adapt_weights(arrays, scene.detections, scene.seqinfo, steps=3)
    second = adapt_weights(arrays, scene.detections, scene.seqinfo, steps=3)
    assert not np.array_equal(first["w0"], arrays["w0"])
    for key in ("w0", "b0", "dustbin_logit", "noise_r"):
        np.testing.assert_array_equal(first[key], second[key])
    AssociationWeights.from_arrays(first)  # a valid model
    det = tmp_path / "det.txt"
    write_mot(det, scene.detections)
    out = tmp_path / "out.txt"
    argv = ["track", "--det", str(det), "--frame-rate", "10", "--out", str(out), "--adapt", "2"]
    assert main(argv) == 0
    assert out.stat().st_size > 0

"""Edge features: numpy/torch parity, invariances, known values, extreme inputs, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emtrack.model.features import (
    FEATURE_NAMES,
    NUM_FEATURES,
    box_heights,
    box_iou,
    box_positions,
    edge_features,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IOU = FEATURE_NAMES.index("iou")
GAP = FEATURE_NAMES.index("gap_s")


def random_boxes(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 100.0):
    corner = rng.uniform(0.0, 10.0 * scale, size=(*shape, 2))
    size = rng.uniform(0.2 * scale, scale, size=(*shape, 2))
    return np.concatenate([corner, corner + size], -1)


def test_names_and_count():
    assert len(FEATURE_NAMES) == NUM_FEATURES
    assert len(set(FEATURE_NAMES)) == NUM_FEATURES


@pytest.mark.parametrize(
    ("batch", "n", "m"), [((), 3, 4), ((2,), 1, 5), ((2, 3), 4, 1), ((), 0, 3), ((2,), 3, 0)]
)
def test_shape(batch, n, m):
    rng = np.random.default_rng(0)
    ref = random_boxes(rng, (*batch, n))
    cur = random_boxes(rng, (*batch, m))
    out = edge_features(ref, cur, 0.1)
    assert out.shape == (*batch, m, n, NUM_FEATURES)
    out_t = edge_features(torch.from_numpy(ref), torch.from_numpy(cur), torch.tensor(0.1))
    assert out_t.shape == (*batch, m, n, NUM_FEATURES)


def test_rows_are_current_boxes_columns_reference_boxes():
    ref = np.array([[0.0, 0.0, 10.0, 20.0], [100.0, 0.0, 110.0, 20.0]])
    cur = np.array([[100.0, 0.0, 110.0, 20.0]])
    out = edge_features(ref, cur, 0.0)
    assert out[0, 1, IOU] == 1.0  # current 0 is reference 1
    assert out[0, 0, IOU] == 0.0


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to the last bit or two (torch and numpy may fuse multiply-adds differently)."""
    np.testing.assert_allclose(actual, expected, rtol=1e-14, atol=1e-14)


def test_numpy_and_torch_give_identical_values():
    rng = np.random.default_rng(1)
    ref = random_boxes(rng, (3, 5))
    # Near copies of the reference boxes (overlaps, small offsets) plus unrelated boxes.
    cur = np.concatenate(
        [ref[:, :3] + rng.normal(0.0, 10.0, (3, 3, 4)), random_boxes(rng, (3, 2))], 1
    )
    gap = rng.uniform(0.0, 2.0, size=(3, 1, 1))
    expected = edge_features(ref, cur, gap)
    actual = edge_features(torch.from_numpy(ref), torch.from_numpy(cur), torch.from_numpy(gap))
    assert isinstance(expected, np.ndarray)
    assert isinstance(actual, torch.Tensor)
    assert_same(actual.numpy(), expected)
    assert (expected[..., IOU] > 0).sum() >= 3
    # Per-column gaps (the tracker's frame gap of each track).
    gap_cols = rng.uniform(0.0, 2.0, size=(3, 1, 5))
    assert_same(
        edge_features(
            torch.from_numpy(ref), torch.from_numpy(cur), torch.from_numpy(gap_cols)
        ).numpy(),
        edge_features(ref, cur, gap_cols),
    )
    assert_same(box_positions(torch.from_numpy(ref)).numpy(), box_positions(ref))
    assert_same(box_heights(torch.from_numpy(ref)).numpy(), box_heights(ref))


def test_float32_torch_is_close_to_float64_numpy():
    rng = np.random.default_rng(2)
    ref = random_boxes(rng, (6,))
    cur = random_boxes(rng, (7,))
    expected = edge_features(ref, cur, 0.2)
    actual = edge_features(torch.from_numpy(ref).float(), torch.from_numpy(cur).float(), 0.2)
    assert actual.dtype == torch.float32
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("factor", [3.0, 0.25])
def test_scale_invariance(factor):
    rng = np.random.default_rng(3)
    ref = random_boxes(rng, (2, 5))
    cur = ref[:, :4] + rng.normal(0.0, 30.0, size=(2, 4, 4))  # overlapping pairs too
    cur[..., 2:] = np.maximum(cur[..., 2:], cur[..., :2] + 5.0)
    base = edge_features(ref, cur, 0.1)
    scaled = edge_features(ref * factor, cur * factor, 0.1)
    np.testing.assert_allclose(scaled, base, rtol=1e-12, atol=1e-12)
    assert (base[..., IOU] > 0).any()


def test_translation_invariance():
    rng = np.random.default_rng(4)
    ref = random_boxes(rng, (5,))
    cur = ref + rng.normal(0.0, 20.0, size=(5, 4))
    base = edge_features(ref, cur, 0.1)
    shift = np.array([123.5, -77.25, 123.5, -77.25])
    np.testing.assert_allclose(edge_features(ref + shift, cur + shift, 0.1), base, atol=1e-12)


def test_identical_boxes():
    box = np.array([[10.0, 20.0, 40.0, 100.0]])
    out = edge_features(box, box, 0.0)[0, 0]
    expected = dict.fromkeys(FEATURE_NAMES, 0.0)
    expected["iou"] = 1.0
    expected["distance"] = 1e-6  # sqrt of the 1e-12 guard
    np.testing.assert_allclose(out, [expected[name] for name in FEATURE_NAMES], atol=1e-12)


def test_known_values():
    # Reference 40x80 at (0, 0); current 40x40 shifted right by 20, bottom 40 px higher.
    ref = np.array([[0.0, 0.0, 40.0, 80.0]])
    cur = np.array([[20.0, 0.0, 60.0, 40.0]])
    out = dict(zip(FEATURE_NAMES, edge_features(ref, cur, 0.5)[0, 0], strict=True))
    norm = 2.0 / (80.0 + 40.0)
    assert out["dx_centre"] == pytest.approx((20.0 - 40.0) * norm)
    assert out["dy_bottom"] == pytest.approx((80.0 - 40.0) * norm)
    assert out["dy_top"] == pytest.approx(0.0)
    assert out["log_h_ratio"] == pytest.approx(np.log(2.0))
    assert out["log_w_ratio"] == pytest.approx(0.0)
    # Intersection 20 x 40 = 800; union 3200 + 1600 - 800 = 4000.
    assert out["iou"] == pytest.approx(800.0 / 4000.0)
    assert out["distance"] == pytest.approx(np.hypot(out["dx_centre"], out["dy_bottom"]))
    assert out["gap_s"] == 0.5


def test_extreme_inputs_are_finite_and_bounded():
    tiny = np.array([[5.0, 5.0, 5.001, 5.001], [0.0, 0.0, 0.0, 0.0], [3.0, 3.0, 2.0, 2.0]])
    normal = np.array([[0.0, 0.0, 50.0, 120.0]])
    far = np.array([[1e5, 1e5, 1e5 + 60.0, 1e5 + 150.0], [-1e5, 0.0, -1e5 + 1e-3, 1e-3]])
    boxes = np.concatenate([tiny, normal, far])
    for gap in (0.0, 1e-3, 1e6):
        for feats in (
            edge_features(boxes, boxes, gap),
            edge_features(
                torch.from_numpy(boxes), torch.from_numpy(boxes), torch.tensor(gap)
            ).numpy(),
        ):
            assert np.isfinite(feats).all()
            iou = feats[..., IOU]
            assert ((iou >= 0) & (iou <= 1)).all()
            others = np.delete(feats, [IOU, GAP], axis=-1)
            assert np.abs(others).max() <= 20.0
            assert (feats[..., GAP] >= 0).all() and (feats[..., GAP] <= 10.0).all()


def test_gradients_finite_for_extreme_torch_inputs():
    boxes = torch.tensor(
        [[5.0, 5.0, 5.001, 5.001], [0.0, 0.0, 50.0, 120.0], [1e5, 1e5, 1e5 + 60.0, 1e5 + 150.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    out = edge_features(boxes, boxes, torch.tensor(0.1, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(boxes.grad).all()


def test_box_iou_matches_the_iou_feature_and_handles_empty_boxes():
    rng = np.random.default_rng(5)
    corner = rng.uniform(0.0, 100.0, (6, 2))
    size = rng.uniform(5.0, 50.0, (6, 2))
    a = np.concatenate([corner, corner + size], 1)
    b = a[::-1] + rng.uniform(-10.0, 10.0, (6, 4)).clip(-2.0, 2.0)
    matrix = box_iou(a[:, None], b[None])
    assert matrix.shape == (6, 6)
    np.testing.assert_allclose(matrix, edge_features(b, a, 0.0)[..., 5], rtol=1e-12)
    assert box_iou(np.array([0.0, 0.0, 10.0, 10.0]), np.array([5.0, 0.0, 15.0, 10.0])) == 1 / 3
    point = np.array([3.0, 3.0, 3.0, 3.0])
    assert box_iou(point, point) == 0.0

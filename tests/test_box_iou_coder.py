"""IoU, box conversions and the SSD box coder, against values worked out by hand."""
import math

import numpy as np
import pytest

from src.box.coder import BBOX_XFORM_CLIP, BoxCoder
from src.box.iou import box_area, box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh


def test_box_area_clamps_inverted_boxes():
    areas = box_area(np.array([[0, 0, 2, 3], [1, 1, 4, 2], [2, 2, 1, 1], [1, 1, 1, 5]], np.float32))
    np.testing.assert_array_equal(areas, [6, 3, 0, 0])


@pytest.mark.parametrize("a, b, expected", [
    ([0, 0, 2, 2], [1, 1, 3, 3], 1 / 7),  # overlap 1, union 4 + 4 - 1
    ([0, 0, 1, 1], [2, 2, 3, 3], 0.0),  # disjoint
    ([0, 0, 1, 1], [1, 0, 2, 1], 0.0),  # sharing an edge only
    ([0, 0, 4, 4], [1, 1, 3, 3], 0.25),  # contained: 4 / 16
    ([1, 2, 3, 5], [1, 2, 3, 5], 1.0),  # identical
    ([0, 0, 4, 2], [2, 0, 6, 2], 4 / 12),  # half overlap along x
])
def test_box_iou_pairs(a, b, expected):
    iou = box_iou(np.array([a], np.float32), np.array([b], np.float32))
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(expected, abs=1e-7)
    # IoU is symmetric
    assert box_iou(np.array([b], np.float32), np.array([a], np.float32))[0, 0] == pytest.approx(expected, abs=1e-7)


def test_box_iou_zero_area_gives_zero_not_nan():
    point = np.array([[1, 1, 1, 1]], np.float32)
    line = np.array([[0, 1, 2, 1]], np.float32)
    square = np.array([[0, 0, 2, 2]], np.float32)
    for a, b in [(point, square), (point, point), (line, line), (line, square)]:
        iou = box_iou(a, b)
        assert not np.isnan(iou).any()
        assert iou[0, 0] == 0.0


def test_box_iou_matrix_shape_dtype_and_empty():
    a = np.array([[0, 0, 2, 2], [10, 10, 12, 12]], np.float32)
    b = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [11, 10, 12, 12]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3) and iou.dtype == np.float32
    np.testing.assert_allclose(iou, [[1, 1 / 7, 0], [0, 0, 0.5]], atol=1e-7)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)
    assert box_iou(a, np.zeros((0, 4))).shape == (2, 0)
    # integer pixel boxes work too
    assert box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]]))[0, 0] == pytest.approx(1 / 7)


@pytest.mark.parametrize("dtype_a, dtype_b", [(np.float32, np.float32), (np.float64, np.float32), (np.int64, np.int64)])
def test_box_iou_equals_the_plain_broadcast_formula(dtype_a, dtype_b):
    # Bit for bit: the matcher and NMS compute the same IoUs pair by pair and compare them with thresholds.
    rng = np.random.default_rng(0)
    a = rng.uniform(-2, 12, (37, 4))
    b = rng.uniform(-2, 12, (53, 4))
    a[:5, 2:] = a[:5, :2]  # empty and inverted boxes
    b[:3] = a[:3]
    a, b = (np.round(x).astype(d) if np.dtype(d).kind == "i" else x.astype(d) for x, d in ((a, dtype_a), (b, dtype_b)))
    fa, fb = (x if x.dtype.kind == "f" else x.astype(np.float64) for x in (a, b))  # integers count as float64
    inter_w = np.maximum(np.minimum(fa[:, None, 2], fb[None, :, 2]) - np.maximum(fa[:, None, 0], fb[None, :, 0]), 0)
    inter_h = np.maximum(np.minimum(fa[:, None, 3], fb[None, :, 3]) - np.maximum(fa[:, None, 1], fb[None, :, 1]), 0)
    inter = inter_w * inter_h
    union = box_area(fa)[:, None] + box_area(fb)[None, :] - inter
    expected = inter / np.maximum(union, np.finfo(union.dtype).tiny)
    iou = box_iou(a, b)
    assert iou.dtype == expected.dtype
    np.testing.assert_array_equal(iou, expected)


def test_box_iou_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        box_iou(np.zeros((2, 3)), np.zeros((2, 4)))


def test_conversions_by_hand_and_round_trip():
    xyxy = np.array([1, 2, 5, 10], np.float32)
    np.testing.assert_array_equal(xyxy_to_cxcywh(xyxy), [3, 6, 4, 8])
    np.testing.assert_array_equal(cxcywh_to_xyxy(np.array([3, 6, 4, 8], np.float32)), xyxy)
    boxes = np.random.default_rng(0).uniform(0, 1, (2, 3, 4)).astype(np.float32)
    boxes[..., 2:] += boxes[..., :2]
    converted = xyxy_to_cxcywh(boxes)
    assert converted.shape == (2, 3, 4) and converted.dtype == np.float32
    np.testing.assert_allclose(cxcywh_to_xyxy(converted), boxes, atol=1e-6)


ANCHOR = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)  # cx, cy, w, h
GT = np.array([[0.4, 0.3, 0.8, 0.5]], np.float32)  # centre (0.6, 0.4), size (0.4, 0.2)
# dx = (0.6 - 0.5) / 0.2 / 0.1, dy = (0.4 - 0.5) / 0.4 / 0.1, dw = log(0.4 / 0.2) / 0.2, dh = log(0.2 / 0.4) / 0.2
GT_DELTAS = [5.0, -2.5, math.log(2) / 0.2, -math.log(2) / 0.2]


def test_encode_hand_made_case():
    deltas = BoxCoder().encode(GT, ANCHOR)
    assert deltas.dtype == np.float32 and deltas.shape == (1, 4)
    np.testing.assert_allclose(deltas[0], GT_DELTAS, rtol=1e-5, atol=1e-5)
    # variances divide the deltas: with (1, 1) they are 0.1 and 0.2 times as large
    np.testing.assert_allclose(BoxCoder((1.0, 1.0)).encode(GT, ANCHOR)[0],
                               [0.5, -0.25, math.log(2), -math.log(2)], rtol=1e-5, atol=1e-6)


def test_decode_hand_made_case():
    boxes = BoxCoder().decode(np.array([GT_DELTAS], np.float32), ANCHOR)
    assert boxes.dtype == np.float32
    np.testing.assert_allclose(boxes, GT, atol=1e-6)


def test_decode_clamps_size_deltas():
    assert BBOX_XFORM_CLIP == pytest.approx(math.log(1000 / 16))
    boxes = BoxCoder().decode(np.array([[0, 0, 1e4, -3]], np.float32), ANCHOR)
    assert np.isfinite(boxes).all()
    # width: 0.2 * exp(log(62.5)) = 12.5 around cx = 0.5; height: 0.4 * exp(-0.6)
    half_h = 0.2 * math.exp(-0.6)
    np.testing.assert_allclose(boxes[0], [-5.75, 0.5 - half_h, 6.75, 0.5 + half_h], rtol=1e-5)


def test_encode_zero_size_box_is_finite():
    deltas = BoxCoder().encode(np.array([[0.5, 0.5, 0.5, 0.6]], np.float32), ANCHOR)
    assert np.isfinite(deltas).all()


def test_encode_decode_round_trip_with_batch_dims():
    rng = np.random.default_rng(1)
    anchors = np.concatenate([rng.uniform(0.1, 0.9, (50, 2)), rng.uniform(0.05, 0.5, (50, 2))], 1).astype(np.float32)
    centres = rng.uniform(0, 1, (3, 50, 2))
    sizes = rng.uniform(0.01, 0.8, (3, 50, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    coder = BoxCoder((0.1, 0.2))
    deltas = coder.encode(boxes, anchors)
    assert deltas.shape == (3, 50, 4) and deltas.dtype == np.float32
    decoded = coder.decode(deltas, anchors)
    assert decoded.shape == (3, 50, 4) and decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, boxes, atol=1e-5)


def test_coder_rejects_bad_variances():
    with pytest.raises(ValueError):
        BoxCoder((0.1,))
    with pytest.raises(ValueError):
        BoxCoder((0.1, 0.0))

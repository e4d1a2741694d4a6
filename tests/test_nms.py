"""Greedy NMS: fixed cases, and random cases against a deliberately simple reference."""
import numpy as np
import pytest

from src.box.nms import batched_nms, multiclass_nms, nms


def _iou(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes, scores, threshold, classes=None):
    """Textbook greedy NMS: by descending score (ties: lower index), drop a box overlapping a kept one."""
    kept = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if all((classes is not None and classes[i] != classes[j]) or _iou(boxes[i], boxes[j]) <= threshold
               for j in kept):
            kept.append(i)
    return kept


def reference_multiclass(boxes, scores, score_threshold, iou_threshold, max_boxes, top_k):
    pairs = [(-scores[a, c], a, c) for a in range(scores.shape[0]) for c in range(scores.shape[1])
             if scores[a, c] > score_threshold]
    pairs = sorted(pairs)[:top_k]
    cand_boxes = [boxes[a] for _, a, _ in pairs]
    kept = reference_nms(cand_boxes, [-s for s, _, _ in pairs], iou_threshold, [c for _, _, c in pairs])
    return [(pairs[i][1], pairs[i][2]) for i in kept[:max_boxes]]


BOXES = np.array([[0, 0, 10, 10],  # 0
                  [1, 1, 11, 11],  # 1: IoU 81 / 119 = 0.68 with box 0
                  [20, 20, 30, 30],  # 2: far away
                  ], np.float32)


def test_nms_fixed_case():
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    keep = nms(BOXES, scores, 0.5)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, [1, 2])  # box 1 has the top score and suppresses box 0
    np.testing.assert_array_equal(nms(BOXES, scores, 0.7), [1, 0, 2])  # 0.68 <= 0.7: nothing suppressed


def test_nms_suppresses_only_above_the_threshold():
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 1]], np.float32)  # IoU exactly 0.5
    np.testing.assert_array_equal(nms(boxes, np.array([0.9, 0.8]), 0.5), [0, 1])
    np.testing.assert_array_equal(nms(boxes, np.array([0.9, 0.8]), 0.49), [0])


def test_nms_is_greedy_not_fast_nms():
    # A suppresses B (IoU 60/140); B would suppress C (60/140), but B is gone, and A-C is only 20/180.
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], np.float32)
    np.testing.assert_array_equal(nms(boxes, np.array([0.9, 0.8, 0.7]), 0.4), [0, 2])


def test_nms_empty():
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64


def test_batched_nms_keeps_classes_apart():
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    np.testing.assert_array_equal(batched_nms(BOXES, scores, np.array([0, 1, 0]), 0.5), [0, 1, 2])
    np.testing.assert_array_equal(batched_nms(BOXES, scores, np.array([3, 3, 3]), 0.5), [0, 2])


def test_multiclass_nms_fixed_case():
    scores = np.array([[0.9, 0.1], [0.8, 0.75], [0.05, 0.6]], np.float32)
    boxes, kept_scores, labels = multiclass_nms(BOXES, scores, 0.2, 0.5, max_boxes=10)
    # class 0: box 0 suppresses box 1; class 1: boxes 1 and 2 do not overlap
    np.testing.assert_array_equal(boxes, BOXES[[0, 1, 2]])
    np.testing.assert_allclose(kept_scores, [0.9, 0.75, 0.6])
    np.testing.assert_array_equal(labels, [0, 1, 1])
    assert boxes.dtype == np.float32 and kept_scores.dtype == np.float32 and labels.dtype == np.int64
    # max_boxes counts per image, not per class
    boxes, kept_scores, labels = multiclass_nms(BOXES, scores, 0.2, 0.5, max_boxes=2)
    np.testing.assert_allclose(kept_scores, [0.9, 0.75])
    np.testing.assert_array_equal(labels, [0, 1])
    # only the two best candidates (0.9 and 0.8, both class 0) reach NMS, and 0.8 is suppressed
    boxes, kept_scores, labels = multiclass_nms(BOXES, scores, 0.2, 0.5, max_boxes=10, pre_nms_top_k=2)
    np.testing.assert_allclose(kept_scores, [0.9])


def test_multiclass_nms_empty():
    for boxes, scores in [(BOXES, np.full((3, 2), 0.01, np.float32)), (np.zeros((0, 4)), np.zeros((0, 5)))]:
        out_boxes, out_scores, out_labels = multiclass_nms(boxes, scores, 0.05, 0.5, 100)
        assert out_boxes.shape == (0, 4) and out_boxes.dtype == np.float32
        assert out_scores.shape == (0,) and out_scores.dtype == np.float32
        assert out_labels.shape == (0,) and out_labels.dtype == np.int64


def _random_boxes(rng, count, spread=1.0):
    centres = rng.uniform(0, spread, (count, 2))
    sizes = rng.uniform(0.03, 0.3, (count, 2))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], 1).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_nms_matches_reference_on_random_boxes(seed):
    rng = np.random.default_rng(seed)
    count = [5, 40, 150, 260, 260, 0][seed]  # 260 spans several internal blocks
    boxes = _random_boxes(rng, count)
    scores = rng.uniform(0, 1, count).astype(np.float32)
    if seed % 2:
        scores = np.round(scores, 1)  # ties
    classes = rng.integers(0, 3, count)
    for threshold in (0.3, 0.6):
        np.testing.assert_array_equal(nms(boxes, scores, threshold), reference_nms(boxes, scores, threshold))
        np.testing.assert_array_equal(batched_nms(boxes, scores, classes, threshold),
                                      reference_nms(boxes, scores, threshold, classes))


@pytest.mark.parametrize("anchors, classes, top_k", [(60, 4, 1000), (300, 6, 100), (2000, 10, 50)])
def test_multiclass_nms_matches_reference(anchors, classes, top_k):
    rng = np.random.default_rng(anchors)
    boxes = _random_boxes(rng, anchors)
    # multiples of 0.01 (many ties), none equal to the 0.055 threshold
    scores = np.round(rng.uniform(0, 1, (anchors, classes)) ** 3, 2).astype(np.float32)
    out_boxes, out_scores, out_labels = multiclass_nms(boxes, scores, 0.055, 0.5, max_boxes=40,
                                                       pre_nms_top_k=top_k)
    expected = reference_multiclass(boxes, scores, 0.055, 0.5, 40, top_k)
    assert len(out_scores) == len(expected) <= 40
    np.testing.assert_array_equal(out_labels, [c for _, c in expected])
    np.testing.assert_array_equal(out_boxes, boxes[[a for a, _ in expected]])
    np.testing.assert_array_equal(out_scores, [scores[a, c] for a, c in expected])


def test_nms_matches_reference_over_blocks_cut_by_the_pair_budget():
    # One class and hundreds of boxes: blocks after the first pair with every kept box and are cut short.
    rng = np.random.default_rng(3)
    boxes = _random_boxes(rng, 700)
    scores = np.round(rng.uniform(0, 1, 700), 2).astype(np.float32)
    classes = rng.integers(0, 2, 700)
    np.testing.assert_array_equal(nms(boxes, scores, 0.6), reference_nms(boxes, scores, 0.6))
    np.testing.assert_array_equal(batched_nms(boxes, scores, classes, 0.6),
                                  reference_nms(boxes, scores, 0.6, classes))


@pytest.mark.parametrize("max_boxes, top_k", [(50, 1000), (None, None), (0, 10), (30, 0)])
def test_multiclass_nms_when_the_best_candidates_mostly_suppress_each_other(max_boxes, top_k):
    # The 300 best candidates are near copies of one box, so the first candidates ranked give one detection and
    # multiclass_nms has to rank more of them.
    rng = np.random.default_rng(5)
    boxes = _random_boxes(rng, 400)
    boxes[:300] = boxes[0] + rng.uniform(0, 0.002, (300, 4)).astype(np.float32)
    scores = np.zeros((400, 2), np.float32)
    scores[:, 0] = np.linspace(1, 0.2, 400)
    scores[::3, 1] = np.linspace(0.9, 0.1, 134)
    out_boxes, out_scores, out_labels = multiclass_nms(boxes, scores, 0.05, 0.5, max_boxes, top_k)
    expected = reference_multiclass(boxes, scores, 0.05, 0.5, max_boxes, top_k if top_k else None)
    assert len(out_scores) == len(expected)
    np.testing.assert_array_equal(out_labels, [c for _, c in expected])
    np.testing.assert_array_equal(out_boxes, boxes[[a for a, _ in expected]].reshape(-1, 4))
    np.testing.assert_array_equal(out_scores, [scores[a, c] for a, c in expected])

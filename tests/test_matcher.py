"""Anchor matching and per-anchor target encoding."""
import math

import numpy as np
import pytest

from src.box.anchors import GridAnchorGenerator, SSDAnchorGenerator
from src.box.coder import BoxCoder
from src.box.iou import box_iou, cxcywh_to_xyxy
from src.box.matcher import BACKGROUND, IGNORED, AnchorTargetEncoder, match_anchors


def test_match_thresholds_ignore_band_forced_and_conflict():
    iou = np.array([
        [0.70, 0.20, 0.00, 0.45, 0.00, 0.00],  # gt 0: best anchor 0
        [0.60, 0.00, 0.30, 0.00, 0.00, 0.00],  # gt 1: best anchor 0 as well, with a lower IoU: gt 0 keeps it
        [0.00, 0.10, 0.00, 0.00, 0.35, 0.00],  # gt 2: best anchor 4, below the threshold but forced
    ])
    np.testing.assert_array_equal(match_anchors(iou, 0.5, 0.4), [0, -1, -1, -2, 2, -1])
    # no ignore band: anchor 3 (0.45) is background
    np.testing.assert_array_equal(match_anchors(iou, 0.5), [0, -1, -1, -1, 2, -1])
    # the forcing conflict goes to the higher IoU, whatever the gt order
    np.testing.assert_array_equal(match_anchors(iou[[1, 0, 2]], 0.5, 0.4), [1, -1, -1, -2, 2, -1])
    assert BACKGROUND == -1 and IGNORED == -2


def test_forced_match_overrides_a_threshold_match():
    # anchor 0 passes the threshold for gt 0 (0.8), but it is gt 1's best anchor (0.55): gt 1 gets it.
    iou = np.array([[0.80, 0.90], [0.55, 0.10]])
    np.testing.assert_array_equal(match_anchors(iou, 0.5), [1, 0])


def test_threshold_edges_ties_and_no_overlap():
    # >= pos_iou is positive, exactly neg_iou is ignored, below is background
    np.testing.assert_array_equal(match_anchors(np.array([[0.5, 0.4, 0.39, 0.9]]), 0.5, 0.4), [0, -2, -1, 0])
    # an anchor tied between two gts goes to the lower gt index
    np.testing.assert_array_equal(match_anchors(np.array([[0.6, 0.9, 0.0], [0.6, 0.0, 0.95]]), 0.5), [0, 0, 1])
    # a gt that overlaps nothing forces nothing
    np.testing.assert_array_equal(match_anchors(np.zeros((1, 3)), 0.5), [-1, -1, -1])


def test_match_without_gts_and_bad_thresholds():
    matches = match_anchors(np.zeros((0, 5)), 0.5, 0.4)
    assert matches.dtype == np.int64
    np.testing.assert_array_equal(matches, [-1] * 5)
    with pytest.raises(ValueError):
        match_anchors(np.zeros((1, 5)), 0.4, 0.5)


# A 2x2 grid of 0.5 x 0.5 anchors: xyxy [0, 0, .5, .5], [.5, 0, 1, .5], [0, .5, .5, 1], [.5, .5, 1, 1].
GRID_ANCHORS = np.array([[0.25, 0.25, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5],
                         [0.25, 0.75, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], np.float32)
GT_BOXES = np.array([
    [0.05, 0.0, 0.5, 0.5],  # IoU 0.225 / 0.25 = 0.9 with anchor 0, 0 elsewhere
    [0.5, 0.3, 1.0, 0.9],  # IoU 0.2 / 0.35 = 0.571 with anchor 3, 0.1 / 0.45 = 0.222 with anchor 1
], np.float32)


def test_encoder_targets_by_hand():
    encoder = AnchorTargetEncoder(GRID_ANCHORS, BoxCoder((0.1, 0.2)), pos_iou=0.5, neg_iou=0.2)
    loc, labels, num_pos = encoder(GT_BOXES, np.array([3, 0]))
    assert loc.dtype == np.float32 and loc.shape == (4, 4)
    assert labels.dtype == np.int32
    # classes shift by one (0 is background); anchor 1 sits in the ignore band
    np.testing.assert_array_equal(labels, [4, -1, 0, 1])
    assert num_pos == 2
    # anchor 0: centre (0.275, 0.25), size (0.45, 0.5) against (0.25, 0.25, 0.5, 0.5)
    np.testing.assert_allclose(loc[0], [0.5, 0.0, math.log(0.9) / 0.2, 0.0], atol=1e-5)
    # anchor 3: centre (0.75, 0.6), size (0.5, 0.6) against (0.75, 0.75, 0.5, 0.5)
    np.testing.assert_allclose(loc[3], [0.0, -3.0, 0.0, math.log(1.2) / 0.2], atol=1e-5)
    np.testing.assert_array_equal(loc[[1, 2]], 0)
    # the encoded targets decode back to the gt boxes
    np.testing.assert_allclose(BoxCoder((0.1, 0.2)).decode(loc[[0, 3]], GRID_ANCHORS[[0, 3]]), GT_BOXES, atol=1e-6)


def test_encoder_without_gts_is_all_background():
    encoder = AnchorTargetEncoder(GRID_ANCHORS, BoxCoder(), pos_iou=0.5)
    loc, labels, num_pos = encoder(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert num_pos == 0 and loc.shape == (4, 4) and labels.shape == (4,)
    assert not loc.any() and not labels.any()


def test_encoder_rejects_mismatched_inputs():
    encoder = AnchorTargetEncoder(GRID_ANCHORS, BoxCoder(), pos_iou=0.5)
    with pytest.raises(ValueError):
        encoder(GT_BOXES, np.array([1]))
    with pytest.raises(ValueError):
        encoder(GT_BOXES, np.array([1, -1]))


def _random_gts(rng, count, kind, anchors_xyxy):
    centres = rng.uniform(-0.1, 1.1, (count, 2))
    if kind == 0:  # small
        sizes = rng.uniform(0.001, 0.06, (count, 2))
    elif kind == 1:  # large
        sizes = rng.uniform(0.05, 0.9, (count, 2))
    else:  # thin
        sizes = np.stack([rng.uniform(0.001, 0.9, count), rng.uniform(0.001, 0.05, count)], 1)
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1).astype(np.float32)
    if count > 3:
        boxes[1] = boxes[0]  # duplicate gts: ties between gts
        boxes[2] = anchors_xyxy[rng.integers(len(anchors_xyxy))]  # a gt equal to an anchor
        boxes[3, 2] = boxes[3, 0]  # a zero-width gt
    return boxes


def _ssd300_anchors():
    return SSDAnchorGenerator(steps=[16, 32, 64, 100, 150, 300]).generate(
        [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], (300, 300))


def _check_against_dense(encoder, boxes, classes):
    """The encoder's targets equal those of match_anchors on the full IoU matrix, bit for bit."""
    anchors = encoder.anchors
    loc, labels, num_pos = encoder(boxes, classes)
    matches = match_anchors(box_iou(boxes, cxcywh_to_xyxy(anchors)), encoder.pos_iou, encoder.neg_iou)
    expected = np.where(matches >= 0, classes[np.maximum(matches, 0)] + 1, np.where(matches == IGNORED, -1, 0))
    np.testing.assert_array_equal(labels, expected)
    positive = matches >= 0
    assert num_pos == positive.sum()
    np.testing.assert_array_equal(loc[positive], encoder.coder.encode(boxes[matches[positive]], anchors[positive]))
    assert not loc[~positive].any()


@pytest.mark.parametrize("name", ["ssd300", "grid", "unstructured"])
def test_encoder_equals_match_anchors_on_the_full_iou_matrix(name):
    rng = np.random.default_rng(7)
    if name == "ssd300":
        anchors = _ssd300_anchors()
    elif name == "grid":
        anchors = GridAnchorGenerator().generate([(24, 32), (12, 16), (6, 8)], (192, 256))
    else:  # random boxes, with one grid level in the middle
        loose = np.concatenate([rng.uniform(0.1, 0.9, (200, 2)), rng.uniform(0.05, 0.5, (200, 2))], 1)
        level = GridAnchorGenerator().generate([(6, 6)], (96, 96))
        anchors = np.concatenate([loose[:10], level, loose[10:]]).astype(np.float32)
    anchors_xyxy = cxcywh_to_xyxy(anchors)
    for pos_iou, neg_iou in [(0.5, None), (0.5, 0.4), (0.35, 0.35)]:
        encoder = AnchorTargetEncoder(anchors, BoxCoder(), pos_iou, neg_iou)
        for trial in range(12):
            boxes = _random_gts(rng, int(rng.integers(1, 25)), trial % 3, anchors_xyxy)
            _check_against_dense(encoder, boxes, rng.integers(0, 80, len(boxes)))


def test_encoder_with_crowded_images_and_tiny_batches(monkeypatch):
    # Hundreds of gts: anchors matched by several gts at once; then batches of a few IoUs, so that a gt's windows
    # spread over many batches whose results must merge exactly.
    from src.box import anchor_index
    rng = np.random.default_rng(3)
    anchors = _ssd300_anchors()
    anchors_xyxy = cxcywh_to_xyxy(anchors)
    encoder = AnchorTargetEncoder(anchors, BoxCoder(), 0.5, 0.4)
    for kind in range(3):
        boxes = _random_gts(rng, 300, kind, anchors_xyxy)
        _check_against_dense(encoder, boxes, rng.integers(0, 80, len(boxes)))
    monkeypatch.setattr(anchor_index, "_CHUNK_ELEMENTS", 40)
    for kind in range(3):
        boxes = _random_gts(rng, 20, kind, anchors_xyxy)
        _check_against_dense(encoder, boxes, rng.integers(0, 80, len(boxes)))


@pytest.mark.parametrize("size", [10, 500])
def test_best_iou_per_key_equals_the_lexsort_reference(size):
    from src.box.anchor_index import _best_iou_per_key, _best_per_key
    rng = np.random.default_rng(size)
    for _ in range(20):
        key = rng.integers(0, 60, size)
        tie = rng.integers(0, 9, size)
        iou = rng.choice(np.array([0.0, 0.25, 0.5, 0.7, 1.0, 0.3333], np.float32), size)  # many equal IoUs
        pick, keys = _best_per_key(key, iou, tie)
        got = _best_iou_per_key(key, iou, tie, 9)
        np.testing.assert_array_equal(got[0], keys)
        np.testing.assert_array_equal(got[1], iou[pick])
        np.testing.assert_array_equal(got[2], tie[pick])

import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest

from src.losses import DetectionLoss, sigmoid_focal_loss, smooth_l1, softmax_hard_negative_loss


@pytest.fixture(autouse=True, scope="module")
def pynative():
    ms.set_context(mode=ms.PYNATIVE_MODE)


def _np_focal(logits, targets, alpha, gamma):
    """Textbook form: -a (1-p)^g log p for positives, -(1-a) p^g log(1-p) for negatives."""
    p = 1 / (1 + np.exp(-logits))
    pos = -alpha * (1 - p) ** gamma * np.log(p)
    neg = -(1 - alpha) * p ** gamma * np.log(1 - p)
    return np.where(targets == 1, pos, neg)


def test_focal_loss_matches_textbook_form_and_ignores():
    logits = np.array([[[0.0, 0.0], [2.0, -1.0], [-3.0, 1.0], [5.0, 5.0]]], np.float32)
    labels = np.array([[0, 1, 2, -1]], np.int32)  # background, class 0, class 1, ignored
    out = sigmoid_focal_loss(ms.Tensor(logits), ms.Tensor(labels), 0.25, 2.0).asnumpy()
    targets = np.array([[[0, 0], [1, 0], [0, 1], [0, 0]]])
    expected = _np_focal(logits, targets, 0.25, 2.0)
    expected[0, 3] = 0.0
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    # A fixed value: p = 0.5 for a negative gives 0.75 * 0.25 * log 2.
    assert out[0, 0, 0] == pytest.approx(0.75 * 0.25 * np.log(2), rel=1e-6)


def test_smooth_l1_values():
    out = smooth_l1(ms.Tensor(np.array([0.0, 0.5, 2.0], np.float32)), ms.Tensor(np.zeros(3, np.float32)), 1.0)
    np.testing.assert_allclose(out.asnumpy(), [0.0, 0.125, 1.5])


def test_hard_negative_mining_keeps_the_hardest_negatives_at_the_ratio():
    # Background logit 0 and a class logit x: background CE = log(1 + e^x), larger x = harder negative.
    x = np.array([0.0, 3.0, 1.0, 2.0, -1.0, 9.0], np.float32)
    logits = np.stack([np.zeros(6, np.float32), x], -1)[None]
    labels = np.array([[1, 0, 0, 0, 0, -1]], np.int32)
    out = softmax_hard_negative_loss(ms.Tensor(logits), ms.Tensor(labels), neg_pos_ratio=2.0).asnumpy()[0]
    bg_ce = np.log1p(np.exp(x))
    expected = np.zeros(6, np.float32)
    expected[0] = np.log1p(np.exp(-x[0]))          # the positive: -log softmax of class 1
    expected[1], expected[3] = bg_ce[1], bg_ce[3]   # the two hardest negatives; anchor 5 is ignored
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_hard_negative_mining_takes_no_negative_without_positives():
    logits = np.random.default_rng(0).normal(size=(1, 5, 3)).astype(np.float32)
    labels = np.zeros((1, 5), np.int32)
    out = softmax_hard_negative_loss(ms.Tensor(logits), ms.Tensor(labels)).asnumpy()
    assert np.all(out == 0)


class _Fixed(nn.Cell):
    def __init__(self, loc, cls):
        super().__init__()
        self.loc, self.cls = ms.Tensor(loc), ms.Tensor(cls)

    def construct(self, x):
        return self.loc, self.cls


def test_detection_loss_is_normalised_by_positives_over_the_batch():
    loc = np.zeros((2, 3, 4), np.float32)
    cls = np.zeros((2, 3, 1), np.float32)
    loc_t = np.zeros((2, 3, 4), np.float32)
    loc_t[0, 0] = [1.0, 0, 0, 0]   # positive: smooth-L1 0.5
    loc_t[1, 2] = [3.0, 0, 0, 0]   # background: its box target must be ignored
    labels = np.array([[1, 0, 0], [0, 1, 0]], np.int32)
    num_pos = np.array([1, 1], np.int32)
    loss = DetectionLoss(_Fixed(loc, cls), "focal", alpha=0.25, gamma=2.0)
    value, cls_part, box_part = (float(t.asnumpy()) for t in loss(
        ms.Tensor(np.zeros((2, 3, 4, 4), np.float32)), ms.Tensor(loc_t), ms.Tensor(labels), ms.Tensor(num_pos)))
    focal_pos = 0.25 * 0.25 * np.log(2)
    focal_neg = 0.75 * 0.25 * np.log(2)
    expected = (2 * focal_pos + 4 * focal_neg + 0.5) / 2
    assert value == pytest.approx(expected, rel=1e-5)
    assert cls_part == pytest.approx((2 * focal_pos + 4 * focal_neg) / 2, rel=1e-5)   # the parts add up to it
    assert box_part == pytest.approx(0.5 / 2, rel=1e-5)

"""Detection losses: sigmoid focal loss, softmax cross-entropy with hard-negative mining, smooth-L1.

Targets per anchor: labels 0 = background, k + 1 = class k, -1 = ignored; box targets are the coder's deltas.
Every loss is summed and divided by the number of positive anchors in the batch (at least 1).
"""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import dtype as mstype


def smooth_l1(pred, target, beta=1.0):
    diff = ops.abs(pred - target)
    return ops.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def sigmoid_focal_loss(logits, labels, alpha=0.25, gamma=2.0):
    """Per-element focal loss; logits [B, A, C], labels [B, A]. Ignored anchors (-1) contribute nothing."""
    num_classes = logits.shape[-1]
    valid = ops.cast(labels >= 0, logits.dtype)
    target = ops.one_hot(ops.maximum(labels, 0), num_classes + 1, ops.ones((), logits.dtype),
                         ops.zeros((), logits.dtype))[..., 1:]
    # Stable BCE with logits: max(x, 0) - x * t + log(1 + exp(-|x|)).
    ce = ops.relu(logits) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))
    p = ops.sigmoid(logits)
    p_t = p * target + (1.0 - p) * (1.0 - target)
    alpha_t = alpha * target + (1.0 - alpha) * (1.0 - target)
    loss = alpha_t * ops.pow(1.0 - p_t, gamma) * ce
    return loss * ops.expand_dims(valid, -1)


def softmax_hard_negative_loss(logits, labels, neg_pos_ratio=3.0):
    """SSD's classification loss: cross-entropy on positives plus the hardest `ratio` x positives negatives.

    logits [B, A, C + 1] with background at index 0. Negatives are ranked per image by their background loss.
    """
    num_outputs = logits.shape[-1]
    log_p = ops.log_softmax(logits, -1)
    one_hot = ops.one_hot(ops.maximum(labels, 0), num_outputs, ops.ones((), logits.dtype),
                          ops.zeros((), logits.dtype))
    ce = -ops.reduce_sum(one_hot * log_p, -1)                          # [B, A]
    pos = labels > 0
    neg_candidates = labels == 0
    num_pos = ops.reduce_sum(ops.cast(pos, mstype.float32), -1)         # [B]
    num_neg = ops.minimum(num_pos * neg_pos_ratio, ops.reduce_sum(ops.cast(neg_candidates, mstype.float32), -1))
    neg_loss = ops.where(neg_candidates, ce, ops.zeros_like(ce) - 1.0)
    sorted_loss, _ = ops.sort(neg_loss, axis=-1, descending=True)
    # The num_neg-th largest negative loss is the threshold; images with no positive take no negative.
    kth = ops.maximum(ops.cast(num_neg, mstype.int32) - 1, 0)
    threshold = ops.gather_elements(sorted_loss, 1, ops.expand_dims(kth, -1))
    hard_neg = ops.logical_and(neg_candidates, neg_loss >= threshold)
    hard_neg = ops.logical_and(hard_neg, ops.expand_dims(num_neg > 0, -1))
    selected = ops.cast(ops.logical_or(pos, hard_neg), ce.dtype)
    return ce * selected


class SigmoidFocalLoss(nn.Cell):
    """The summed sigmoid focal loss of logits [B, A, C] against labels [B, A] (0 background, -1 ignored)."""

    score_activation = "sigmoid"   # what the detector's class outputs become: no background column

    def __init__(self, alpha=0.25, gamma=2.0):
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma

    def construct(self, logits, labels):
        return ops.reduce_sum(sigmoid_focal_loss(logits, labels, self.alpha, self.gamma))


class SoftmaxHardNegativeLoss(nn.Cell):
    """The summed softmax cross-entropy with `neg_pos_ratio` hard negatives per positive."""

    score_activation = "softmax"   # a background column first

    def __init__(self, neg_pos_ratio=3.0):
        super().__init__()
        self.neg_pos_ratio = neg_pos_ratio

    def construct(self, logits, labels):
        return ops.reduce_sum(softmax_hard_negative_loss(logits, labels, self.neg_pos_ratio))


# The `loss` key's values: the classification loss by name.
CLASSIFICATION_LOSSES = {"focal": SigmoidFocalLoss, "softmax_hnm": SoftmaxHardNegativeLoss}


class DetectionLoss(nn.Cell):
    """Wraps a detector with its loss: (image, loc targets, labels, num_pos) -> (loss, class part, box part).

    Both parts are normalised like the loss and add up to it, so that training can log them without another pass.

    `loss_type` is `focal` (sigmoid outputs, no background class) or `softmax_hnm` (softmax with background).
    """

    def __init__(self, network, loss_type="focal", alpha=0.25, gamma=2.0, neg_pos_ratio=3.0, box_beta=1.0,
                 box_weight=1.0):
        super().__init__()
        if loss_type not in CLASSIFICATION_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(CLASSIFICATION_LOSSES)}, got {loss_type!r}")
        self.network = network
        self.loss_type = loss_type
        self.classification = (SigmoidFocalLoss(alpha, gamma) if loss_type == "focal"
                               else SoftmaxHardNegativeLoss(neg_pos_ratio))
        self.box_beta = box_beta
        self.box_weight = box_weight

    @classmethod
    def from_config(cls, network, cfg):
        return cls(network, cfg.loss, cfg.focal_alpha, cfg.focal_gamma, cfg.neg_pos_ratio, cfg.box_loss_beta,
                   cfg.box_loss_weight)

    def construct(self, image, loc_targets, labels, num_pos):
        pred_loc, pred_cls = self.network(image)
        pred_loc = ops.cast(pred_loc, mstype.float32)
        pred_cls = ops.cast(pred_cls, mstype.float32)
        normaliser = ops.maximum(ops.reduce_sum(ops.cast(num_pos, mstype.float32)), 1.0)
        pos = ops.expand_dims(ops.cast(labels > 0, mstype.float32), -1)
        box_loss = ops.reduce_sum(smooth_l1(pred_loc, loc_targets, self.box_beta) * pos)
        cls_loss = self.classification(pred_cls, labels) / normaliser
        box_loss = self.box_weight * box_loss / normaliser
        return cls_loss + box_loss, cls_loss, box_loss

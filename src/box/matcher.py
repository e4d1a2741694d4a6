"""Anchor matching: IoU thresholds plus a forced best anchor per ground-truth box, and per-anchor training targets.

`match_anchors` works on a full IoU matrix. `AnchorTargetEncoder` gives the same matches without building that
matrix: it only evaluates, per gt, the anchors near it that can reach the thresholds (see `anchor_index`).
"""
import numpy as np

from .anchor_index import _AnchorIndex, _best_per_key
from .iou import box_iou

BACKGROUND = -1
IGNORED = -2


def _check_thresholds(pos_iou, neg_iou):
    if neg_iou is not None and neg_iou > pos_iou:
        raise ValueError(f"neg_iou ({neg_iou}) must not exceed pos_iou ({pos_iou})")


def _assign_sparse(anchor_ids, anchor_iou, anchor_gt, gt_best_iou, gt_best_anchor, pos_iou, neg_iou):
    """The anchors that are not background: (positive ids, their gts, ignored ids, forced ids, their gts).

    `anchor_ids` (ascending) lists anchors with their best IoU and gt (any anchor left out has best IoU below
    neg_iou); `gt_best_iou` / `gt_best_anchor` hold each gt's best anchor. A forced anchor (a gt's best) may also
    be listed as positive or ignored: its forced gt overrides that, so write the forced anchors last.
    """
    positive = anchor_iou >= pos_iou
    if positive.all():  # always so without an ignore band (the index only returns anchors >= neg_iou)
        positive_ids, positive_gt = anchor_ids, anchor_gt
    else:
        positive_ids, positive_gt = anchor_ids[positive], anchor_gt[positive]
    ignored = np.zeros(0, np.int64)
    if neg_iou is not None and neg_iou < pos_iou:
        ignored = anchor_ids[(anchor_iou >= neg_iou) & ~positive]
    # Every gt keeps its best anchor, even below the threshold, so that no object goes untrained.
    forced = (gt_best_iou > 0).nonzero()[0]
    # Where gts share a best anchor, the one with the higher IoU wins; equal IoUs go to the lower gt index.
    pick, forced_ids = _best_per_key(gt_best_anchor[forced], gt_best_iou[forced], forced)
    return positive_ids, positive_gt, ignored, forced_ids, forced[pick]


def match_anchors(iou, pos_iou, neg_iou=None):
    """Match code per anchor from an IoU matrix [N gts, A anchors] -> int64 [A].

    >= 0: index of the matched gt (best IoU >= pos_iou, or the anchor is some gt's best anchor);
    -1 (BACKGROUND): best IoU < neg_iou (or < pos_iou when neg_iou is None);
    -2 (IGNORED): neg_iou <= best IoU < pos_iou.
    A gt forces its best anchor only where that IoU is > 0. Ties go to the lower index (gt for an anchor, anchor
    for a gt); where gts force the same anchor, the higher IoU wins.
    """
    _check_thresholds(pos_iou, neg_iou)
    iou = np.asarray(iou)
    if iou.ndim != 2:
        raise ValueError(f"iou must be [N, A], got shape {iou.shape}")
    num_gt, num_anchors = iou.shape
    matches = np.full(num_anchors, BACKGROUND, dtype=np.int64)
    if num_gt == 0 or num_anchors == 0:
        return matches
    all_anchors = np.arange(num_anchors)
    best_gt = iou.argmax(axis=0)
    gt_best_anchor = iou.argmax(axis=1)
    positive_ids, positive_gt, ignored, forced_ids, forced_gt = _assign_sparse(
        all_anchors, iou[best_gt, all_anchors], best_gt, iou[np.arange(num_gt), gt_best_anchor], gt_best_anchor,
        pos_iou, neg_iou)
    matches[ignored] = IGNORED
    matches[positive_ids] = positive_gt
    matches[forced_ids] = forced_gt
    return matches


class AnchorTargetEncoder:
    """Per-image training targets: ground-truth boxes matched to fixed anchors and encoded with a BoxCoder.

    Called with normalised xyxy gt boxes [N, 4] and class indices [N] (0..C-1), it returns
    loc float32 [A, 4] (zero where the anchor is not positive), labels int32 [A] (0 background, k + 1 for class k,
    -1 ignored) and the number of positive anchors. The matches equal match_anchors(box_iou(gt, anchors), ...).
    """

    def __init__(self, anchors_cxcywh, coder, pos_iou=0.5, neg_iou=None):
        _check_thresholds(pos_iou, neg_iou)
        anchors = np.ascontiguousarray(anchors_cxcywh, dtype=np.float32)
        if anchors.ndim != 2 or anchors.shape[1] != 4:
            raise ValueError(f"anchors must be [A, 4] cx, cy, w, h, got shape {anchors.shape}")
        if anchors.size and anchors[:, 2:].min() <= 0:
            raise ValueError("anchors must have positive width and height")
        self.anchors = anchors
        self.coder = coder
        self.pos_iou = pos_iou
        self.neg_iou = neg_iou
        self._index = _AnchorIndex(anchors)

    @property
    def num_anchors(self):
        return len(self.anchors)

    def __call__(self, gt_boxes_xyxy, gt_labels):
        boxes = np.asarray(gt_boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        classes = np.asarray(gt_labels).reshape(-1)
        if len(classes) != len(boxes):
            raise ValueError(f"{len(boxes)} gt boxes but {len(classes)} gt labels")
        loc = np.zeros((self.num_anchors, 4), dtype=np.float32)
        labels = np.zeros(self.num_anchors, dtype=np.int32)
        if len(boxes) == 0:
            return loc, labels, 0
        if classes.min() < 0:
            raise ValueError("gt labels must be class indices >= 0 (background is added here)")
        low = self.pos_iou if self.neg_iou is None else self.neg_iou
        if low > 0:
            found = self._index.overlaps(boxes, low)
            positive_ids, positive_gt, ignored, forced_ids, forced_gt = _assign_sparse(
                *found, self.pos_iou, self.neg_iou)
        else:  # every anchor reaches a threshold of 0: nothing to gain from the index
            matches = match_anchors(box_iou(boxes, self._index.xyxy), self.pos_iou, self.neg_iou)
            positive_ids = np.flatnonzero(matches >= 0)
            positive_gt, ignored = matches[positive_ids], np.flatnonzero(matches == IGNORED)
            forced_ids = forced_gt = np.zeros(0, np.int64)
        # Forced anchors last: they override a threshold match or the ignore band.
        labels[ignored] = -1
        labels[positive_ids] = classes[positive_gt] + 1
        labels[forced_ids] = classes[forced_gt] + 1
        # One encode call for both lists; a forced anchor's row is written last.
        deltas = self.coder.encode(boxes.take(np.concatenate((positive_gt, forced_gt)), axis=0),
                                   self.anchors.take(np.concatenate((positive_ids, forced_ids)), axis=0))
        loc[positive_ids] = deltas[:positive_ids.size]
        loc[forced_ids] = deltas[positive_ids.size:]
        # positive_ids is ascending: count the forced anchors that it holds already.
        at = np.minimum(positive_ids.searchsorted(forced_ids), max(positive_ids.size - 1, 0))
        also_positive = np.count_nonzero(positive_ids[at] == forced_ids) if positive_ids.size else 0
        return loc, labels, int(positive_ids.size + forced_ids.size - also_positive)

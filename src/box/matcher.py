"""Anchor matching: IoU thresholds plus a forced best anchor per ground-truth box, and per-anchor training targets.

`match_anchors` works on a full IoU matrix. `AnchorTargetEncoder` gives the same matches without building that
matrix: it only evaluates, per gt, the anchors near it that can reach the thresholds (see `anchor_index`).
"""
import numpy as np

from .anchor_index import _AnchorIndex, _first_of_runs
from .iou import box_iou

BACKGROUND = -1
IGNORED = -2


def _check_thresholds(pos_iou, neg_iou):
    if neg_iou is not None and neg_iou > pos_iou:
        raise ValueError(f"neg_iou ({neg_iou}) must not exceed pos_iou ({pos_iou})")


def _assign_sparse(anchor_ids, anchor_iou, anchor_gt, gt_best_iou, gt_best_anchor, pos_iou, neg_iou):
    """Match codes of the anchors that are not background, as (anchor ids, codes).

    `anchor_ids` lists anchors with their best IoU and gt (any anchor left out has best IoU below neg_iou);
    `gt_best_iou` / `gt_best_anchor` hold each gt's best anchor. A code is a gt index or IGNORED.
    """
    low = pos_iou if neg_iou is None else neg_iou
    kept = anchor_iou >= low
    ids = anchor_ids[kept]
    codes = np.where(anchor_iou[kept] >= pos_iou, anchor_gt[kept], IGNORED)
    # Every gt keeps its best anchor, even below the threshold, so that no object goes untrained.
    forced = (gt_best_iou > 0).nonzero()[0]
    if forced.size == 0:
        return ids, codes
    # Where gts share a best anchor, the one with the higher IoU wins; equal IoUs go to the lower gt index.
    ranked = forced[np.lexsort((forced, -gt_best_iou[forced]))]
    by_anchor = gt_best_anchor[ranked].argsort(kind="stable")
    winners = ranked[by_anchor][_first_of_runs(gt_best_anchor[ranked][by_anchor])]
    forced_ids = gt_best_anchor[winners]  # sorted, unique
    at = np.minimum(forced_ids.searchsorted(ids), forced_ids.size - 1)
    overridden = forced_ids[at] == ids
    return (np.concatenate([ids[~overridden], forced_ids]),
            np.concatenate([codes[~overridden], winners]))


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
    ids, codes = _assign_sparse(all_anchors, iou[best_gt, all_anchors], best_gt,
                                iou[np.arange(num_gt), gt_best_anchor], gt_best_anchor, pos_iou, neg_iou)
    matches[ids] = codes
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
            ids, codes = _assign_sparse(*found, self.pos_iou, self.neg_iou)
        else:  # every anchor reaches a threshold of 0: nothing to gain from the index
            matches = match_anchors(box_iou(boxes, self._index.xyxy), self.pos_iou, self.neg_iou)
            ids = np.flatnonzero(matches != BACKGROUND)
            codes = matches[ids]
        positive = codes >= 0
        positive_ids, matched_gt = ids[positive], codes[positive]
        labels[positive_ids] = classes[matched_gt] + 1
        labels[ids[~positive]] = -1
        loc[positive_ids] = self.coder.encode(boxes[matched_gt], self.anchors[positive_ids])
        return loc, labels, int(positive_ids.size)

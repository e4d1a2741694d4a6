"""Greedy non-maximum suppression in numpy: single class, per class, and multi-class detection post-processing.

Greedy NMS visits boxes by descending score and keeps a box unless a box kept before it overlaps it with
IoU > iou_threshold. Instead of a Python loop over boxes, candidates are taken in blocks: a block first drops what
earlier kept boxes suppress, then settles the suppression among its own boxes by a fixed-point iteration (a box is
kept iff no kept box before it suppresses it, which has exactly one solution: greedy NMS).
"""
import numpy as np

from .iou import box_iou

# Boxes settled together; the pairwise IoU inside a block is [_BLOCK, _BLOCK].
_BLOCK = 128


def _empty_result():
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)


def _check_boxes(boxes, scores):
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"need boxes [K, 4] and scores [K], got {boxes.shape} and {scores.shape}")
    return boxes, scores


def _greedy_keep(boxes, iou_threshold, groups=None):
    """Keep mask of greedy NMS for boxes sorted by group (class), then by descending score.

    Boxes only suppress boxes of their own group; without `groups` all boxes form one group.
    """
    keep = np.zeros(len(boxes), dtype=bool)
    if groups is not None:
        group_first = np.searchsorted(groups, groups)  # index of the first box of each box's group
    for start in range(0, len(boxes), _BLOCK):
        block = slice(start, start + _BLOCK)
        # Boxes kept before this block can only suppress it if they share its first group.
        kept = np.flatnonzero(keep[:start] if groups is None else keep[group_first[start]:start])
        if groups is not None:
            kept += group_first[start]
        alive = np.ones(len(boxes[block]), dtype=bool)
        if kept.size:
            overlap = box_iou(boxes[kept], boxes[block]) > iou_threshold
            if groups is not None:
                overlap &= groups[kept, None] == groups[None, block]
            alive = ~overlap.any(axis=0)
        # suppresses[i, j]: box i comes before box j in the block and would suppress it.
        suppresses = np.triu(box_iou(boxes[block], boxes[block]) > iou_threshold, k=1)
        if groups is not None:
            suppresses &= groups[block, None] == groups[None, block]
        block_keep = alive
        while True:
            settled = alive & ~suppresses[block_keep].any(axis=0)
            if np.array_equal(settled, block_keep):
                break
            block_keep = settled
        keep[block] = block_keep
    return keep


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes [K, 4] xyxy kept by greedy NMS, by descending score (ties: lower index)."""
    boxes, scores = _check_boxes(boxes, scores)
    order = np.argsort(-scores, kind="stable")
    return order[_greedy_keep(boxes[order], iou_threshold)].astype(np.int64)


def batched_nms(boxes, scores, class_ids, iou_threshold):
    """Like `nms`, but boxes only suppress boxes of the same class; indices by descending score."""
    boxes, scores = _check_boxes(boxes, scores)
    class_ids = np.asarray(class_ids)
    if class_ids.shape != scores.shape:
        raise ValueError(f"class_ids {class_ids.shape} must match scores {scores.shape}")
    # Grouping by class keeps each block's IoUs mostly within one class.
    order = np.lexsort((-scores, class_ids))
    kept = order[_greedy_keep(boxes[order], iou_threshold, class_ids[order])]
    return kept[np.lexsort((kept, -scores[kept]))].astype(np.int64)


def _top_k(values, k):
    """Indices of the k largest values, by descending value; equal values keep index order."""
    if k is None or k <= 0 or values.size <= k:
        chosen = np.arange(values.size)
    else:
        kth = np.partition(values, values.size - k)[values.size - k]
        above = np.flatnonzero(values > kth)
        chosen = np.concatenate([above, np.flatnonzero(values == kth)[:k - above.size]])
        chosen.sort()
    return chosen[np.argsort(-values[chosen], kind="stable")]


def _above(values, threshold, top_k):
    """Indices (ascending) of the values > threshold, or of a subset that surely holds their top_k."""
    bar = threshold
    if top_k and values.size > 8 * top_k:
        # Raise the bar to an estimate of the 4 * top_k-th largest value, from a sample of ~64 * top_k values,
        # so that only a few thousand values are gathered. Kept only where at least top_k values pass it: the
        # top_k all lie above it then.
        sample = values[::max(1, values.size // (64 * top_k))]
        rank = sample.size - max(1, 4 * top_k * sample.size // values.size)
        bar = max(threshold, np.partition(sample, rank)[rank])
    chosen = np.flatnonzero(values > bar)
    if chosen.size < (top_k or 0) and bar > threshold:
        chosen = np.flatnonzero(values > threshold)
    return chosen


def multiclass_nms(boxes, scores, score_threshold, iou_threshold, max_boxes, pre_nms_top_k=1000):
    """Detections of one image from boxes [A, 4] xyxy and class scores [A, C].

    Candidates are the (box, class) pairs with score > score_threshold; the best pre_nms_top_k of them (all when
    None) go through per-class NMS, and at most max_boxes survivors of the whole image (all when None) are kept.
    Returns (boxes float32 [K, 4], scores float32 [K], labels int64 [K] class indices), by descending score.
    """
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    if scores.ndim != 2 or boxes.shape != (scores.shape[0], 4):
        raise ValueError(f"need boxes [A, 4] and scores [A, C], got {boxes.shape} and {scores.shape}")
    if scores.size == 0:
        return _empty_result()
    flat = scores.reshape(-1)
    candidates = _above(flat, score_threshold, pre_nms_top_k)
    candidates = candidates[_top_k(flat[candidates], pre_nms_top_k)]
    candidate_scores = flat[candidates]
    anchors, classes = np.divmod(candidates, scores.shape[1])
    keep = batched_nms(boxes[anchors], candidate_scores, classes, iou_threshold)
    if max_boxes is not None:
        keep = keep[:max_boxes]
    return (boxes[anchors[keep]].astype(np.float32), candidate_scores[keep].astype(np.float32),
            classes[keep].astype(np.int64))

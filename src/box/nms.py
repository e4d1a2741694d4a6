"""Greedy non-maximum suppression in numpy: single class, per class, and multi-class detection post-processing.

Greedy NMS visits boxes by descending score and keeps a box unless a box kept before it overlaps it with
IoU > iou_threshold. Instead of a Python loop over boxes, boxes are taken in blocks, in visiting order. Only pairs
of boxes that can suppress each other (same class, the earlier one kept before the block or in the block) get an
IoU: with many classes that is a small fraction of a dense block matrix. A block first drops what earlier kept
boxes suppress, then settles the suppression among its own boxes by a fixed-point iteration (a box is kept iff no
kept box before it suppresses it, which has exactly one solution: greedy NMS).

As greedy NMS of the first boxes does not depend on later ones, multiclass_nms stops once it has max_boxes
detections, and first ranks only as many candidates as that is likely to need.
"""
import numpy as np

from .iou import _as_float, box_area

# Boxes settled together.
_BLOCK = 256
# At most this many pair IoUs per block (a block of one class is cut shorter).
_PAIR_BUDGET = 1 << 15
# multiclass_nms first ranks max(this, 2 * max_boxes) candidates, and four times as many while that is not enough.
_FIRST_CANDIDATES = 256


def _empty_result():
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)


def _check_boxes(boxes, scores):
    boxes = np.asarray(boxes)
    scores = np.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"need boxes [K, 4] and scores [K], got {boxes.shape} and {scores.shape}")
    return boxes, scores


def _pair_iou(boxes, area, first, second, tiny):
    """IoU of boxes[first[m]] with boxes[second[m]], bit-identical to the same entry of box_iou."""
    # take(): multi-dimensional fancy indexing is several times slower.
    a, b = boxes.take(first, axis=0), boxes.take(second, axis=0)
    inter_w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    np.maximum(inter_w, 0, out=inter_w)
    inter_h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    np.maximum(inter_h, 0, out=inter_h)
    inter = inter_w * inter_h
    union = area[first] + area[second]
    union -= inter
    np.maximum(union, tiny, out=union)
    return np.divide(inter, union, out=inter)


def _greedy_keep(boxes, iou_threshold, groups=None, max_kept=None):
    """Keep mask of greedy NMS for boxes [K, 4] in visiting order (box i is visited before box j for i < j).

    Boxes only suppress boxes of their own group; without `groups` all boxes form one group. With max_kept, it
    stops after the block in which max_kept boxes are kept; the boxes after it are marked not kept.
    """
    boxes = _as_float(boxes)
    keep = np.zeros(len(boxes), dtype=bool)
    groups = np.zeros(len(boxes), dtype=np.int64) if groups is None else np.asarray(groups)
    area = box_area(boxes)
    tiny = np.array(np.finfo(area.dtype).tiny, area.dtype)
    kept = np.zeros(0, dtype=np.int64)
    start = 0
    while start < len(boxes) and (max_kept is None or kept.size < max_kept):
        block = np.arange(start, min(len(boxes), start + _BLOCK))
        # Members: the boxes kept so far, then the block. Sorted by group (stably, so in visiting order), each
        # block box pairs with the members of its group before it.
        members = np.concatenate((kept, block))
        order = groups[members].argsort(kind="stable")
        sorted_groups = groups[members][order]
        group_first = sorted_groups.searchsorted(sorted_groups)
        before = np.arange(members.size) - group_first
        before[order < kept.size] = 0
        if before.sum() > _PAIR_BUDGET:  # keep the longest head of the block within the budget
            in_block = np.empty_like(order)
            in_block[order] = np.arange(members.size)
            pairs = before[in_block[kept.size:]].cumsum()
            block = block[:max(1, int(pairs.searchsorted(_PAIR_BUDGET, "right")))]
            before[order >= kept.size + block.size] = 0
        # Pair m: sorted positions earlier[m] < later[m], both of one group.
        later = np.arange(members.size).repeat(before)
        earlier = np.arange(later.size) + (group_first + before - before.cumsum()).repeat(before)
        earlier, later = order[earlier], order[later]  # now positions in members
        suppress = _pair_iou(boxes, area, members[earlier], members[later], tiny) > iou_threshold
        earlier, later = earlier[suppress], later[suppress] - kept.size
        by_kept = earlier < kept.size
        alive = np.ones(block.size, dtype=bool)
        alive[later[by_kept]] = False
        earlier, later = earlier[~by_kept] - kept.size, later[~by_kept]
        block_keep = alive
        while True:
            suppressed = np.zeros(block.size, dtype=bool)
            suppressed[later[block_keep[earlier]]] = True
            settled = alive & ~suppressed
            if np.array_equal(settled, block_keep):
                break
            block_keep = settled
        keep[block] = block_keep
        kept = np.concatenate((kept, block[block_keep]))
        start = block[-1] + 1
    return keep


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes [K, 4] xyxy kept by greedy NMS, by descending score (ties: lower index)."""
    boxes, scores = _check_boxes(boxes, scores)
    order = np.argsort(-scores, kind="stable")
    return order[_greedy_keep(boxes.take(order, axis=0), iou_threshold)].astype(np.int64)


def batched_nms(boxes, scores, class_ids, iou_threshold):
    """Like `nms`, but boxes only suppress boxes of the same class; indices by descending score."""
    boxes, scores = _check_boxes(boxes, scores)
    class_ids = np.asarray(class_ids)
    if class_ids.shape != scores.shape:
        raise ValueError(f"class_ids {class_ids.shape} must match scores {scores.shape}")
    order = np.argsort(-scores, kind="stable")
    return order[_greedy_keep(boxes.take(order, axis=0), iou_threshold, class_ids[order])].astype(np.int64)


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
    if top_k and values.size > 64 * top_k:
        # Raise the bar to an estimate of the 4 * top_k-th largest value, from a sample of ~16 * top_k values,
        # so that only a few thousand values are gathered. Kept only where at least top_k values pass it: the
        # top_k all lie above it then.
        sample = values[::values.size // (16 * top_k)]
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
    limit = flat.size if not pre_nms_top_k or pre_nms_top_k <= 0 else min(pre_nms_top_k, flat.size)
    wanted = max_boxes if max_boxes is not None and max_boxes >= 0 else None
    count = limit if wanted is None else min(limit, max(_FIRST_CANDIDATES, 2 * wanted))
    while True:
        # The best `count` candidates in visiting order: descending score, ties by index.
        candidates = _above(flat, score_threshold, count)
        candidates = candidates[_top_k(flat[candidates], count)]
        anchors, classes = np.divmod(candidates, scores.shape[1])
        keep = _greedy_keep(boxes.take(anchors, axis=0), iou_threshold, classes, wanted).nonzero()[0]
        if count >= limit or candidates.size < count or keep.size >= wanted:
            break
        count = min(limit, 4 * count)
    if max_boxes is not None:
        keep = keep[:max_boxes]
    return (boxes.take(anchors[keep], axis=0).astype(np.float32), flat[candidates[keep]].astype(np.float32),
            classes[keep].astype(np.int64))

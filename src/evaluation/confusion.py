"""The detection confusion matrix: which class each ground-truth box was detected as, or missed, and what the
detections on background were.

Rows are the true classes plus background, columns the predicted classes plus background. Per image, detections
scoring at least `score_threshold` are matched to ground-truth boxes of any class with IoU >= `iou_threshold`,
greedily by IoU, each box and detection at most once: a match counts at (true class, predicted class); an unmatched
box at (true class, background): missed; an unmatched detection at (background, predicted class): a false
positive, unless it lies on a crowd region (which COCO ignores too).
"""
import numpy as np

from ..box.iou import box_iou


def _greedy_pairs(iou, threshold):
    """(gt index, detection index) pairs with IoU >= threshold, best first, each index used once."""
    gi, di = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[gi, di], kind="stable")
    gi, di = gi[order], di[order]
    used_g, used_d, pairs = set(), set(), []
    for g, d in zip(gi.tolist(), di.tolist()):  # at most one row per candidate pair of one image
        if g not in used_g and d not in used_d:
            used_g.add(g)
            used_d.add(d)
            pairs.append((g, d))
    return pairs


def image_confusion(matrix, gt_boxes, gt_labels, det_boxes, det_labels, det_scores, crowd_boxes=None,
                    iou_threshold=0.5, score_threshold=0.25):
    """Add one image to `matrix` ([C + 1, C + 1] counts, background last). Boxes are x1, y1, x2, y2."""
    background = matrix.shape[0] - 1
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    keep = np.asarray(det_scores, np.float64).reshape(-1) >= score_threshold
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)[keep]
    det_labels = np.asarray(det_labels, np.int64).reshape(-1)[keep]
    pairs = _greedy_pairs(box_iou(gt_boxes, det_boxes), iou_threshold) if len(gt_boxes) and len(det_boxes) else []
    matched_g = np.zeros(len(gt_boxes), bool)
    matched_d = np.zeros(len(det_boxes), bool)
    for g, d in pairs:
        matrix[gt_labels[g], det_labels[d]] += 1
        matched_g[g] = matched_d[d] = True
    np.add.at(matrix, (gt_labels[~matched_g], background), 1)
    stray = ~matched_d
    if crowd_boxes is not None and len(crowd_boxes) and stray.any():
        crowd = np.asarray(crowd_boxes, np.float64).reshape(-1, 4)
        stray &= ~(_intersection_over_detection(det_boxes, crowd) >= iou_threshold).any(axis=1)
    np.add.at(matrix, (background, det_labels[stray]), 1)
    return matrix


def _intersection_over_detection(det, crowd):
    """[D, K]: the share of each detection's area inside each crowd region (COCO's rule for crowd matches)."""
    ix = np.minimum(det[:, None, 2], crowd[None, :, 2]) - np.maximum(det[:, None, 0], crowd[None, :, 0])
    iy = np.minimum(det[:, None, 3], crowd[None, :, 3]) - np.maximum(det[:, None, 1], crowd[None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area = np.clip(det[:, 2] - det[:, 0], 0, None) * np.clip(det[:, 3] - det[:, 1], 0, None)
    return inter / np.maximum(area[:, None], 1e-12)


def row_normalised(matrix):
    """Each row divided by its total (rows without any box stay 0)."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape, np.float64), where=totals > 0)

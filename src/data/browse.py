"""What browse_dataset.py shows: the training samples as the loss sees them, and how well the anchors fit the data.

Pure numpy: the figures are drawn by src/plots/dataset.py.
"""
from dataclasses import dataclass

import numpy as np

from ..box.iou import box_iou, cxcywh_to_xyxy

# Box sizes at the network input (the square root of the box area, in input pixels), for the anchor-fit bands.
SIZE_BANDS = ((0, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, float("inf")))


def band_name(lo, hi):
    return f"< {hi:g} px" if lo == 0 else (f">= {lo:g} px" if hi == float("inf") else f"{lo:g}-{hi:g} px")


def decoded_targets(encoder, loc, labels, anchors):
    """What the loss sees of an encoded sample: the positive anchors (normalised xyxy), their class labels
    (0-based) and the boxes their box targets decode to (normalised xyxy)."""
    positive = np.flatnonzero(np.asarray(labels) > 0)
    anchor_boxes = cxcywh_to_xyxy(np.asarray(anchors, np.float32)[positive])
    decoded = encoder.coder.decode(np.asarray(loc, np.float32)[positive], np.asarray(anchors, np.float32)[positive])
    return anchor_boxes, np.asarray(labels)[positive] - 1, decoded


@dataclass
class AnchorFit:
    """For every ground-truth box: its best IoU with any anchor, and the feature level of that anchor."""
    best_iou: np.ndarray      # [G]
    best_level: np.ndarray    # [G]
    size_px: np.ndarray       # [G] sqrt(area) at the network input
    labels: np.ndarray        # [G]
    threshold: float

    def share_below(self, mask=None):
        """(boxes, share of them whose best IoU is below the matching threshold: matched only by force)."""
        ious = self.best_iou if mask is None else self.best_iou[mask]
        return int(ious.size), float((ious < self.threshold).mean()) if ious.size else float("nan")

    def by_band(self):
        return [(band_name(lo, hi),) + self.share_below((self.size_px >= lo) & (self.size_px < hi))
                for lo, hi in SIZE_BANDS]

    def by_level(self, num_levels):
        return [(f"level {k + 1}",) + self.share_below(self.best_level == k) for k in range(num_levels)]


def anchor_fit(boxes, labels, anchors, anchors_per_level, img_shape, threshold, chunk=2048):
    """AnchorFit of normalised xyxy ground-truth `boxes` [G, 4] against `anchors` ([A, 4] normalised cx, cy, w, h,
    ordered by level; `anchors_per_level` counts each level's). The IoU is taken in chunks of boxes, so that COCO's
    860k boxes against 51150 anchors fit in memory."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    anchor_xyxy = cxcywh_to_xyxy(np.asarray(anchors, np.float64))
    level_of = np.repeat(np.arange(len(anchors_per_level)), anchors_per_level)
    best = np.zeros(len(boxes))
    best_anchor = np.zeros(len(boxes), np.int64)
    for start in range(0, len(boxes), chunk):
        iou = box_iou(boxes[start:start + chunk], anchor_xyxy)
        best_anchor[start:start + chunk] = iou.argmax(axis=1)
        best[start:start + chunk] = iou.max(axis=1)
    h, w = img_shape
    size = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * w * np.clip(boxes[:, 3] - boxes[:, 1], 0, None) * h)
    return AnchorFit(best, level_of[best_anchor], size, np.asarray(labels, np.int64).reshape(-1), float(threshold))

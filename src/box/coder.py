"""SSD box coder: xyxy boxes <-> regression deltas relative to cxcywh anchors."""
import math

import numpy as np

from .iou import cxcywh_to_xyxy

# Largest log-scale change that decode applies (torchvision's value); keeps exp() finite for wild predictions.
# The MindSpore graph decoder reuses it, so it must stay a plain module-level float.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)

# Floor on ground-truth width/height before log(), so degenerate boxes give a finite (very negative) delta.
MIN_BOX_SIZE = 1e-6


class BoxCoder:
    """Encodes boxes as (dx, dy, dw, dh) deltas divided by `variances` (the model zoo's `prior_scaling`)."""

    def __init__(self, variances=(0.1, 0.2)):
        if len(variances) != 2 or min(variances) <= 0:
            raise ValueError(f"variances must be two positive numbers (centre, size), got {variances!r}")
        self.variances = (float(variances[0]), float(variances[1]))

    def encode(self, boxes_xyxy, anchors_cxcywh):
        """Deltas float32 [..., 4] of xyxy `boxes` against `anchors` (both broadcast over leading dims)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32)
        anchors = np.asarray(anchors_cxcywh, dtype=np.float32)
        centre_var, size_var = self.variances
        box_wh = boxes[..., 2:] - boxes[..., :2]
        box_centre = boxes[..., :2] + box_wh * np.float32(0.5)
        box_wh = np.maximum(box_wh, np.float32(MIN_BOX_SIZE))
        anchor_wh = anchors[..., 2:]
        d_centre = (box_centre - anchors[..., :2]) / (anchor_wh * np.float32(centre_var))
        d_size = np.log(box_wh / anchor_wh) / np.float32(size_var)
        return np.concatenate([d_centre, d_size], axis=-1)

    def decode(self, deltas, anchors_cxcywh):
        """xyxy float32 [..., A, 4] from `deltas` [..., A, 4] and `anchors` [A, 4]."""
        deltas = np.asarray(deltas, dtype=np.float32)
        anchors = np.asarray(anchors_cxcywh, dtype=np.float32)
        centre_var, size_var = self.variances
        anchor_wh = anchors[..., 2:]
        centre = anchors[..., :2] + deltas[..., :2] * np.float32(centre_var) * anchor_wh
        log_scale = np.minimum(deltas[..., 2:] * np.float32(size_var), np.float32(BBOX_XFORM_CLIP))
        size = anchor_wh * np.exp(log_scale)
        return cxcywh_to_xyxy(np.concatenate([centre, size], axis=-1))

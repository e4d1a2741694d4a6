"""From the inference wrapper's outputs to detections in original-image pixels: NMS, then rescale.

Shared by every consumer of the inference outputs (eval.py now; prediction, export and C++ scoring later), so
every path scores boxes identically.
"""
from dataclasses import dataclass

import numpy as np

from ..box.nms import multiclass_nms


@dataclass(frozen=True)
class NMSParams:
    min_score: float = 0.02
    nms_threshold: float = 0.6
    max_boxes: int = 100
    pre_nms_top_k: int = 1000

    @classmethod
    def from_config(cls, cfg):
        """From a config or any mapping with the four keys."""
        return cls(float(cfg["min_score"]), float(cfg["nms_threshold"]), int(cfg["max_boxes"]),
                   int(cfg["pre_nms_top_k"]))


def image_detections(boxes_norm, scores, image_hw, params):
    """boxes_norm [A, 4] normalised xyxy, scores [A, C] -> (boxes [K, 4] pixels, scores [K], labels [K])."""
    boxes, kept_scores, labels = multiclass_nms(boxes_norm, scores, params.min_score, params.nms_threshold,
                                                params.max_boxes, params.pre_nms_top_k)
    h, w = float(image_hw[0]), float(image_hw[1])
    # IoU is unchanged by per-axis scaling, so NMS in normalised coordinates equals NMS in pixels.
    boxes = np.clip(boxes * np.array([w, h, w, h], np.float32), 0.0, [w, h, w, h]).astype(np.float32)
    return boxes, kept_scores.astype(np.float32), labels.astype(np.int64)

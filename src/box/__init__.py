"""Pure-numpy box utilities: IoU, anchor generators, box coder, anchor matching and NMS (no MindSpore here)."""
from .anchors import ANCHOR_GENERATORS, GridAnchorGenerator, SSDAnchorGenerator, build_anchor_generator
from .coder import BBOX_XFORM_CLIP, MIN_BOX_SIZE, BoxCoder
from .iou import box_area, box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh
from .matcher import BACKGROUND, IGNORED, AnchorTargetEncoder, match_anchors
from .nms import batched_nms, multiclass_nms, nms

__all__ = [
    "ANCHOR_GENERATORS", "GridAnchorGenerator", "SSDAnchorGenerator", "build_anchor_generator",
    "BBOX_XFORM_CLIP", "MIN_BOX_SIZE", "BoxCoder",
    "box_area", "box_iou", "cxcywh_to_xyxy", "xyxy_to_cxcywh",
    "BACKGROUND", "IGNORED", "AnchorTargetEncoder", "match_anchors",
    "batched_nms", "multiclass_nms", "nms",
]

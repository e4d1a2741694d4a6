"""Pure-numpy box utilities, no MindSpore: `iou`, `anchors` (generators), `coder`, `matcher`, `nms`.

Import from the modules themselves (`from src.box.nms import multiclass_nms`).
"""

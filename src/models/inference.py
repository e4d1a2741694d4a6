"""The inference wrapper: a detector plus box decoding, in the graph.

Its outputs are what eval, export (and so predict.py and the C++ inference) consume: boxes [B, A, 4] as normalised
x1, y1, x2, y2 and per-class scores [B, A, C] (sigmoid, or softmax without the background column). NMS stays
outside the graph, in `src/box/nms.py`, shared by every consumer.
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..box.coder import BBOX_XFORM_CLIP


class InferenceNet(nn.Cell):
    """Same arithmetic as `BoxCoder.decode`, so graph and numpy decoding agree."""

    def __init__(self, detector, variances):
        super().__init__()
        self.network = detector
        anchors = detector.spec.anchors
        self.anchor_centre = ms.Tensor(anchors[None, :, :2])
        self.anchor_size = ms.Tensor(anchors[None, :, 2:])
        self.centre_var = float(variances[0])
        self.size_var = float(variances[1])
        self.use_softmax = detector.spec.score_activation == "softmax"
        self.concat = ops.Concat(axis=-1)

    def construct(self, x):
        loc, logits = self.network(x)
        centre = self.anchor_centre + loc[:, :, :2] * self.centre_var * self.anchor_size
        log_scale = ops.minimum(loc[:, :, 2:] * self.size_var, BBOX_XFORM_CLIP)
        half = ops.exp(log_scale) * self.anchor_size * 0.5
        boxes = self.concat((centre - half, centre + half))
        if self.use_softmax:
            scores = ops.softmax(logits, -1)[:, :, 1:]
        else:
            scores = ops.sigmoid(logits)
        return boxes, scores

"""SSD head: one box branch and one class branch per pyramid level (no weight sharing)."""
import mindspore.nn as nn
import mindspore.ops as ops

from ..layers import ConvBNAct, conv2d, head_conv_init, prior_bias_init


class FlattenLevel(nn.Cell):
    """[B, k*d, H, W] -> [B, H*W*k, d], ordered row, column, anchor, as the anchor generator orders boxes.

    A cell rather than a function: amp_level O1 rebuilds the heads' construct from source, which loses
    module-level helpers but keeps cells.
    """

    def __init__(self, values_per_anchor):
        super().__init__()
        self.values_per_anchor = values_per_anchor

    def construct(self, x):
        b, c, h, w = x.shape
        x = ops.transpose(x, (0, 2, 3, 1))
        return ops.reshape(x, (-1, h * w * (c // self.values_per_anchor), self.values_per_anchor))


class SSDHead(nn.Cell):
    """Per-level predictors.

    `separable=True` is SSDLite's (and the model zoo's SSD-MobileNetV2's) depthwise 3x3 + BN + ReLU6 then a
    1x1 conv; otherwise a plain 3x3 conv as in the original SSD.
    """

    def __init__(self, in_channels, num_anchors, num_outputs, separable=True, prior_prob=None):
        super().__init__()
        if len(in_channels) != len(num_anchors):
            raise ValueError(f"head: {len(in_channels)} feature levels but anchors for {len(num_anchors)} levels")
        self.num_outputs = num_outputs
        bias = prior_bias_init(prior_prob) if prior_prob else "zeros"
        self.loc_layers = nn.CellList([self._branch(c, k * 4, separable) for c, k in zip(in_channels, num_anchors)])
        self.cls_layers = nn.CellList([self._branch(c, k * num_outputs, separable, bias)
                                       for c, k in zip(in_channels, num_anchors)])
        self.concat = ops.Concat(axis=1)
        self.flatten_loc, self.flatten_cls = FlattenLevel(4), FlattenLevel(num_outputs)

    @staticmethod
    def _branch(channels, outputs, separable, bias_init="zeros"):
        if separable:
            return nn.SequentialCell([
                ConvBNAct(channels, channels, 3, groups=channels, act="relu6"),
                conv2d(channels, outputs, 1, has_bias=True, weight_init=head_conv_init(), bias_init=bias_init)])
        return conv2d(channels, outputs, 3, has_bias=True, weight_init=head_conv_init(), bias_init=bias_init)

    def construct(self, features):
        locs = ()
        scores = ()
        for i in range(len(self.loc_layers)):
            locs += (self.flatten_loc(self.loc_layers[i](features[i])),)
            scores += (self.flatten_cls(self.cls_layers[i](features[i])),)
        return self.concat(locs), self.concat(scores)

"""Weight-shared head: one conv tower and one predictor applied to every pyramid level.

RetinaNet-style (SSD-ResNet50-FPN): four 3x3 conv + BN + ReLU layers, then a 3x3 predictor.
EfficientDet-style: the same with depthwise-separable convs and swish. In both, the conv weights are shared across
levels while each level keeps its own batch norm, because the levels' activation statistics differ (the model
zoo's weight-shared SSD head and EfficientDet both do this).
"""
import mindspore.nn as nn
import mindspore.ops as ops

from ..layers import batch_norm, conv2d, head_conv_init, make_activation, prior_bias_init, separable_conv
from .ssd_head import FlattenLevel


def _conv(in_channels, out_channels, separable, has_bias=False, bias_init="zeros", weight_init=None):
    if separable:
        return separable_conv(in_channels, out_channels, 3, has_bias, bias_init, weight_init)
    return conv2d(in_channels, out_channels, 3, has_bias=has_bias, weight_init=weight_init, bias_init=bias_init)


class SharedTower(nn.Cell):
    """`depth` shared convs, each followed by a per-level BN and the activation."""

    recompute_unit = True  # Detector.use_recompute

    def __init__(self, channels, depth, num_levels, separable, act):
        super().__init__()
        self.depth = depth
        self.convs = nn.CellList([_conv(channels, channels, separable) for _ in range(depth)])
        # Flattened [level][layer] so that graph mode can index it with a constant.
        self.norms = nn.CellList([batch_norm(channels) for _ in range(num_levels * depth)])
        self.act = make_activation(act)

    def construct(self, x, level):
        for j in range(self.depth):
            x = self.act(self.norms[level * self.depth + j](self.convs[j](x)))
        return x


class SharedConvHead(nn.Cell):
    def __init__(self, in_channels, num_anchors, num_outputs, depth=4, separable=False, act="relu",
                 prior_prob=None):
        super().__init__()
        if len(in_channels) != len(num_anchors):
            raise ValueError(f"head: {len(in_channels)} feature levels but anchors for {len(num_anchors)} levels")
        if len(set(in_channels)) != 1 or len(set(num_anchors)) != 1:
            raise ValueError(f"a weight-shared head needs the same channels and anchors per location on every "
                             f"level, got channels {list(in_channels)} and anchors {list(num_anchors)}")
        channels, anchors, levels = in_channels[0], num_anchors[0], len(in_channels)
        self.num_levels = levels
        self.num_outputs = num_outputs
        self.box_tower = SharedTower(channels, depth, levels, separable, act)
        self.cls_tower = SharedTower(channels, depth, levels, separable, act)
        bias = prior_bias_init(prior_prob) if prior_prob else "zeros"
        self.box_pred = _conv(channels, anchors * 4, separable, True, weight_init=head_conv_init())
        self.cls_pred = _conv(channels, anchors * num_outputs, separable, True, bias, head_conv_init())
        self.concat = ops.Concat(axis=1)
        self.flatten_loc, self.flatten_cls = FlattenLevel(4), FlattenLevel(num_outputs)

    def construct(self, features):
        locs = ()
        scores = ()
        for i in range(self.num_levels):
            locs += (self.flatten_loc(self.box_pred(self.box_tower(features[i], i))),)
            scores += (self.flatten_cls(self.cls_pred(self.cls_tower(features[i], i))),)
        return self.concat(locs), self.concat(scores)

"""BiFPN (Tan, Pang & Le, EfficientDet, CVPR 2020): repeated top-down + bottom-up weighted feature fusion.

Levels P3..P7: P3-P5 are the backbone's C3-C5, P6 is C5 through a 1x1 conv + BN and a 3x3/2 max pool, P7 is P6
through another 3x3/2 max pool. Each layer has a top-down path (P6 -> P3, the coarser node upsampled) and a
bottom-up path (P4 -> P7, the finer output max-pooled); a bottom-up node also takes its level's input again.
As in the official implementation (google/automl, and effdet's FpnCombine), every use of an input whose channels
differ from the BiFPN width gets its own 1x1 conv + BN; so in the first layer C4 and C5, which feed both a
top-down and a bottom-up node, are projected twice by separate convs. Later layers need no projections.

Pooling follows TF 'SAME' geometry (output ceil(n / 2), padding computed from the input size, padded cells never
win), so the network is built for one input size: the recipe passes the backbone's feature sizes.
"""
import numpy as np
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor

from ..layers import ConvBNAct, MaxPoolPadded, UpsampleLike, batch_norm, make_activation, separable_conv
from ..shapes import downsampled_size

FUSION_EPS = 1e-4


def same_padding(size, kernel_size=3, stride=2):
    """(before, after) padding of TF 'SAME' for one axis: the output has ceil(size / stride) cells."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def max_pool_same(size_hw):
    """3x3/2 max pool for an input of `size_hw`, padded like TF 'SAME'."""
    return MaxPoolPadded(3, 2, same_padding(size_hw[0]) + same_padding(size_hw[1]))


class FastNormalizedFusion(nn.Cell):
    """sum_i w_i * x_i / (sum_j w_j + eps) with w = relu(weights): the paper's fast normalised fusion."""

    def __init__(self, eps=FUSION_EPS):
        super().__init__()
        self.eps = eps

    def construct(self, inputs, weights):
        w = ops.relu(weights)
        w = w / (w.sum() + self.eps)
        out = inputs[0] * w[0]
        for i in range(1, len(inputs)):
            out = out + inputs[i] * w[i]
        return out


class FusionNode(nn.Cell):
    """One BiFPN node: weighted fusion of its inputs (own weight vector, initialised to 1) -> swish ->
    depthwise-separable 3x3 conv -> BN."""

    def __init__(self, num_inputs, channels):
        super().__init__()
        self.fuse = FastNormalizedFusion()  # a cell: amp_level O1 rebuilds construct and loses module functions
        self.fusion_weight = Parameter(Tensor(np.ones(num_inputs, np.float32)), name="fusion_weight")
        self.act = make_activation("swish")
        self.conv = separable_conv(channels, channels, 3)
        self.bn = batch_norm(channels)

    def construct(self, inputs):
        return self.bn(self.conv(self.act(self.fuse(inputs, self.fusion_weight))))


def _projection(in_channels, channels):
    """1x1 conv + BN to the BiFPN width, or an identity when the width already matches."""
    return ConvBNAct(in_channels, channels, 1, act=None) if in_channels != channels else nn.Identity()


class BiFPNLayer(nn.Cell):
    """One top-down + bottom-up pass over `len(sizes)` levels; returns the new levels, finest first."""

    def __init__(self, in_channels, sizes, channels):
        super().__init__()
        self.upsample = UpsampleLike()
        n = len(sizes)
        self.num_levels = n
        # Inputs to the top-down nodes (level n - 1 enters the first one through the upsample) ...
        self.td_inputs = nn.CellList([_projection(c, channels) for c in in_channels])
        self.td_nodes = nn.CellList([FusionNode(2, channels) for _ in range(n - 1)])
        # ... and, projected separately, to the bottom-up nodes of levels 1 .. n - 1.
        self.bu_inputs = nn.CellList([_projection(c, channels) for c in in_channels[1:]])
        self.bu_nodes = nn.CellList([FusionNode(3 if i < n - 1 else 2, channels) for i in range(1, n)])
        self.downsample = nn.CellList([max_pool_same(sizes[i]) for i in range(n - 1)])

    def construct(self, features):
        n = self.num_levels
        x = self.td_inputs[n - 1](features[n - 1])
        top_down = ()
        for i in range(n - 2, -1, -1):
            x = self.td_nodes[i]((self.td_inputs[i](features[i]), self.upsample(x, features[i])))
            top_down = (x,) + top_down
        outs = (x,)  # the finest top-down node is already P3's output
        for i in range(1, n):
            same_level = self.bu_inputs[i - 1](features[i])
            finer = self.downsample[i - 1](outs[i - 1])
            inputs = (same_level, top_down[i], finer) if i < n - 1 else (same_level, finer)
            outs = outs + (self.bu_nodes[i - 1](inputs),)
        return outs


class BiFPN(nn.Cell):
    """`num_layers` BiFPN layers over the backbone levels plus `num_levels - len(in_channels)` pooled levels.

    `in_sizes` are the backbone features' (h, w); `feature_sizes` recomputes them from the geometry and checks
    that the network was built for them.
    """

    def __init__(self, in_channels, in_sizes, channels=64, num_layers=3, num_levels=5):
        super().__init__()
        if len(in_channels) != len(in_sizes) or len(in_channels) > num_levels:
            raise ValueError(f"BiFPN: {len(in_channels)} input channels, {len(in_sizes)} sizes, {num_levels} levels")
        self.in_sizes = [tuple(int(v) for v in s) for s in in_sizes]
        self.sizes = self._level_sizes(self.in_sizes, num_levels)
        extra = num_levels - len(in_channels)
        self.extra_projection = _projection(in_channels[-1], channels) if extra else None
        self.extra_pools = nn.CellList([max_pool_same(self.sizes[len(in_channels) - 1 + j]) for j in range(extra)])
        level_channels = list(in_channels) + [channels] * extra
        layers = []
        for _ in range(num_layers):
            layers.append(BiFPNLayer(level_channels, self.sizes, channels))
            level_channels = [channels] * num_levels
        self.layers = nn.CellList(layers)
        self.num_levels = num_levels
        self.out_channels = [channels] * num_levels

    @staticmethod
    def _level_sizes(in_sizes, num_levels):
        sizes = list(in_sizes)
        while len(sizes) < num_levels:
            sizes.append(tuple(downsampled_size(v, 2) for v in sizes[-1]))
        return sizes

    def feature_sizes(self, in_sizes):
        in_sizes = [tuple(int(v) for v in s) for s in in_sizes]
        if in_sizes != self.in_sizes:
            raise ValueError(f"BiFPN was built for backbone feature sizes {self.in_sizes}, got {in_sizes}")
        return self._level_sizes(in_sizes, self.num_levels)

    def construct(self, features):
        if self.extra_projection is not None:
            x = self.extra_projection(features[-1])
            for pool in self.extra_pools:
                x = pool(x)
                features = features + (x,)
        for layer in self.layers:
            features = layer(features)
        return features

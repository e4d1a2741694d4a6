"""GhostNet (Han et al., CVPR 2020, "GhostNet: More Features from Cheap Operations") and its SSD feature taps.

`GhostNet` is the published network: a ghost module makes half its channels with a 1x1 conv and the other half with
a cheap depthwise 3x3 conv on those, and ghost bottlenecks stack two of them. Channels are make_divisible(c * width,
4) as in the authors' code, so width 1.3 gives the 7.3M-parameter ImageNet model.

`SSDGhostNet` is the backbone of the MindSpore model zoo's SSD-GhostNet (research/cv/ssd_ghostnet). Its stride-16
feature is not a GhostNet tensor: the zoo adds a 1x1 conv-BN-ReLU that expands the output of the 11th bottleneck
(the last 112 * width-channel block) six-fold, as SSD-MobileNetV2 taps a 6x expansion, so at width 1.3 it has
6 * 144 = 864 channels. The stride-32 feature is GhostNet's last 1x1 conv, 960 * 1.3 = 1248 channels. (The zoo
writes its 1.3x table by hand and rounds six hidden widths differently, e.g. 864 for 672 * 1.3; the block outputs,
and so both SSD features, are the same as with the authors' rule used here.)
"""
import math

import mindspore.nn as nn
import mindspore.ops as ops

from ..layers import ConvBNAct, SqueezeExcite, conv2d, make_divisible
from ..registry import register_backbone

# kernel k, expansion (hidden) channels, output channels, squeeze-excite, stride: the paper's Table 1.
GHOSTNET_SETTINGS = [
    (3, 16, 16, False, 1),
    (3, 48, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (3, 240, 80, False, 2),
    (3, 200, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 480, 112, True, 1),
    (3, 672, 112, True, 1),
    (5, 672, 160, True, 2),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
]
STEM_CHANNELS = 16
LAST_CHANNELS = 960
HEAD_CHANNELS = 1280  # the classifier's 1x1 conv; not scaled by width
# Blocks 0..10 run at stride <= 16; block 11 is the first stride-32 block.
STRIDE16_BLOCKS = 11
# The model zoo's SSD expands the stride-16 feature by this factor (MobileNetV2's expansion ratio).
SSD_STRIDE16_EXPANSION = 6


def _channels(value, width):
    return make_divisible(value * width, 4)


class GhostModule(nn.Cell):
    """1x1 conv to ceil(out / 2) "intrinsic" channels, then a depthwise 3x3 makes as many "ghost" channels."""

    def __init__(self, in_channels, out_channels, act="relu"):
        super().__init__()
        primary = math.ceil(out_channels / 2)
        self.primary = ConvBNAct(in_channels, primary, 1, act=act)
        self.cheap = ConvBNAct(primary, primary, 3, groups=primary, act=act)
        self.out_channels = out_channels
        self.trim = 2 * primary != out_channels  # odd widths: drop the extra ghost channel
        self.concat = ops.Concat(axis=1)

    def construct(self, x):
        x = self.primary(x)
        out = self.concat((x, self.cheap(x)))
        if self.trim:
            out = out[:, :self.out_channels]
        return out


class GhostBottleneck(nn.Cell):
    """Ghost module expand -> (stride-2 depthwise conv + BN) -> (SE) -> linear ghost module, plus a shortcut.

    The shortcut is the identity when shapes allow, otherwise a depthwise conv + BN and a 1x1 conv + BN.
    """

    recompute_unit = True  # Detector.use_recompute

    def __init__(self, in_channels, hidden_channels, out_channels, kernel_size, stride, use_se):
        super().__init__()
        self.expand = GhostModule(in_channels, hidden_channels, act="relu")
        self.depthwise = (ConvBNAct(hidden_channels, hidden_channels, kernel_size, stride, groups=hidden_channels,
                                    act=None) if stride > 1 else None)
        self.se = (SqueezeExcite(hidden_channels, _channels(hidden_channels, 0.25), act="relu", gate="hsigmoid")
                   if use_se else None)
        self.project = GhostModule(hidden_channels, out_channels, act=None)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = None
        else:
            self.shortcut = nn.SequentialCell([
                ConvBNAct(in_channels, in_channels, kernel_size, stride, groups=in_channels, act=None),
                ConvBNAct(in_channels, out_channels, 1, act=None)])

    def construct(self, x):
        out = self.expand(x)
        if self.depthwise is not None:
            out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        residual = x if self.shortcut is None else self.shortcut(x)
        return out + residual


class GhostNet(nn.Cell):
    """The published GhostNet. `construct` returns the stride-16 and stride-32 features, `classify` the logits.

    The ImageNet classifier (global mean -> 1x1 conv to 1280 + ReLU -> dropout -> Dense) is built only when
    `num_classes > 0`; detection uses the features alone.
    """

    def __init__(self, width=1.0, num_classes=0, dropout=0.2):
        super().__init__()
        in_ch = _channels(STEM_CHANNELS, width)
        self.stem = ConvBNAct(3, in_ch, 3, 2, act="relu")
        blocks = []
        for k, hidden, c, use_se, s in GHOSTNET_SETTINGS:
            out_ch = _channels(c, width)
            blocks.append(GhostBottleneck(in_ch, _channels(hidden, width), out_ch, k, s, use_se))
            in_ch = out_ch
        self.blocks = nn.CellList(blocks)
        last_ch = _channels(LAST_CHANNELS, width)
        self.last_conv = ConvBNAct(in_ch, last_ch, 1, act="relu")
        self.out_channels = [blocks[STRIDE16_BLOCKS - 1].project.out_channels, last_ch]
        self.stride16_blocks = STRIDE16_BLOCKS  # construct reads attributes: amp O1 loses module-level names
        self.out_strides = [16, 32]
        self.classifier = None
        if num_classes:
            self.classifier = nn.SequentialCell([
                conv2d(last_ch, HEAD_CHANNELS, 1, has_bias=True), nn.ReLU(), nn.Flatten(),
                nn.Dropout(p=dropout), nn.Dense(HEAD_CHANNELS, num_classes)])

    def construct(self, x):
        x = self.stem(x)
        for i in range(self.stride16_blocks):
            x = self.blocks[i](x)
        stride16 = x
        for i in range(self.stride16_blocks, len(self.blocks)):
            x = self.blocks[i](x)
        return stride16, self.last_conv(x)

    def classify(self, x):
        """ImageNet logits (needs num_classes > 0)."""
        _, x = self(x)
        return self.classifier(x.mean(axis=(2, 3), keep_dims=True))


class SSDGhostNet(nn.Cell):
    """The model zoo's SSD-GhostNet backbone: GhostNet plus a 6x 1x1 expansion of its stride-16 feature."""

    def __init__(self, width=1.3):
        super().__init__()
        self.body = GhostNet(width)
        c16, c32 = self.body.out_channels
        self.expand16 = ConvBNAct(c16, c16 * SSD_STRIDE16_EXPANSION, 1, act="relu")
        self.out_channels = [c16 * SSD_STRIDE16_EXPANSION, c32]
        self.out_strides = list(self.body.out_strides)

    def construct(self, x):
        stride16, stride32 = self.body(x)
        return self.expand16(stride16), stride32


@register_backbone("ghostnet")
def ghostnet(width_mult=1.3, **kwargs):
    return SSDGhostNet(width=width_mult, **kwargs)

"""SSD extra layers: new, coarser feature maps appended after the backbone's last one."""
import mindspore.nn as nn

from ..layers import InvertedResidual, conv2d
from ..shapes import conv_out_size


class ExtraLevels(nn.Cell):
    """Passes the backbone's features through and appends one level per block, each fed by the previous level.

    Subclasses fill `blocks` and `geometry`: each block's spatial step as (stride, padding) of its 3x3 conv, from
    which `feature_sizes` follows.
    """

    def __init__(self, in_channels, blocks, geometry, out_channels):
        super().__init__()
        self.blocks = nn.CellList(blocks)
        self.geometry = list(geometry)
        self.out_channels = list(in_channels) + list(out_channels)

    def feature_sizes(self, in_sizes):
        sizes = list(in_sizes)
        for stride, padding in self.geometry:
            h, w = sizes[-1]
            sizes.append((conv_out_size(h, 3, stride, padding), conv_out_size(w, 3, stride, padding)))
        return sizes

    def construct(self, features):
        outs = features
        x = features[-1]
        for block in self.blocks:
            x = block(x)
            outs = outs + (x,)
        return outs


class InvertedResidualExtras(ExtraLevels):
    """The model zoo's SSD-MobileNetV2 extras: stride-2 inverted residual blocks with a final ReLU6.

    `act` is the activation after the expand and depthwise convs: ReLU6 for MobileNetV2, ReLU for SSD-GhostNet.
    """

    def __init__(self, in_channels, out_channels=(512, 256, 256, 128), expand_ratios=(0.2, 0.25, 0.5, 0.25),
                 act="relu6"):
        if len(out_channels) != len(expand_ratios):
            raise ValueError("extras: out_channels and expand_ratios must have the same length")
        blocks = []
        prev = in_channels[-1]
        for out_ch, ratio in zip(out_channels, expand_ratios):
            blocks.append(InvertedResidual(prev, out_ch, 2, ratio, act=act, last_act="relu6"))
            prev = out_ch
        super().__init__(in_channels, blocks, [(2, 1)] * len(blocks), out_channels)


def _conv_relu(in_channels, out_channels, kernel_size, stride=1, padding=0):
    """A biased conv with explicit padding (the SSD extras need valid 3x3 convs) followed by ReLU."""
    return [conv2d(in_channels, out_channels, kernel_size, stride, has_bias=True, padding=padding), nn.ReLU()]


# conv8 ... conv11 of SSD300 (Liu et al., 2016): (1x1 channels, 3x3 channels, 3x3 stride, 3x3 padding).
SSD300_VGG_EXTRAS = ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0))


class ConvExtras(ExtraLevels):
    """The original SSD extras: per level a 1x1 conv that narrows, then a 3x3 conv that shrinks, each with ReLU.

    `settings` is ((1x1 channels, 3x3 channels, stride, padding), ...). At 300 the VGG16 levels are
    19 -> 10 -> 5 -> 3 -> 1.
    """

    def __init__(self, in_channels, settings=SSD300_VGG_EXTRAS):
        blocks = []
        prev = in_channels[-1]
        for mid, out_ch, stride, padding in settings:
            blocks.append(nn.SequentialCell(_conv_relu(prev, mid, 1) + _conv_relu(mid, out_ch, 3, stride, padding)))
            prev = out_ch
        super().__init__(in_channels, blocks, [(s, p) for _, _, s, p in settings], [c for _, c, _, _ in settings])

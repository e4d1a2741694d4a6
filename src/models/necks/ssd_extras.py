"""SSD extra layers: new, coarser feature maps appended after the backbone's last one."""
import mindspore.nn as nn

from ..layers import InvertedResidual
from ..shapes import downsampled_size


class InvertedResidualExtras(nn.Cell):
    """The model zoo's SSD-MobileNetV2 extras: stride-2 inverted residual blocks with a final ReLU6.

    Passes the backbone's features through and appends one level per entry of `out_channels`.
    """

    def __init__(self, in_channels, out_channels=(512, 256, 256, 128), expand_ratios=(0.2, 0.25, 0.5, 0.25)):
        super().__init__()
        if len(out_channels) != len(expand_ratios):
            raise ValueError("extras: out_channels and expand_ratios must have the same length")
        blocks = []
        prev = in_channels[-1]
        for out_ch, ratio in zip(out_channels, expand_ratios):
            blocks.append(InvertedResidual(prev, out_ch, 2, ratio, last_act="relu6"))
            prev = out_ch
        self.blocks = nn.CellList(blocks)
        self.out_channels = list(in_channels) + list(out_channels)

    def feature_sizes(self, in_sizes):
        sizes = list(in_sizes)
        for _ in range(len(self.blocks)):
            h, w = sizes[-1]
            sizes.append((downsampled_size(h, 2), downsampled_size(w, 2)))
        return sizes

    def construct(self, features):
        outs = features
        x = features[-1]
        for block in self.blocks:
            x = block(x)
            outs = outs + (x,)
        return outs

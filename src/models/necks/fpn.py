"""Feature pyramid (Lin et al., 2017) as the model zoo's SSD-ResNet50-FPN builds it: C3-C5 -> P3-P7.

Laterals: a biased 1x1 conv per input level. Top-down: the coarser merged map is resized to the finer one and
added. Outputs: a 3x3 conv + BN + ReLU6 on each merged map (the model zoo's `conv_bn_relu`, TF Object Detection
API style). P6 and P7: 3x3 stride-2 conv + BN + ReLU6, P6 from the P5 output and P7 from P6 (the model zoo's
`BottomUp`). The model zoo resizes bilinearly; here nearest-neighbour (the FPN paper's choice), which exports to
ONNX and equals a 2x repeat when sizes halve exactly.
"""
import mindspore.nn as nn

from ..layers import ConvBNAct, UpsampleLike, conv2d
from ..shapes import downsampled_size


class FPN(nn.Cell):
    def __init__(self, in_channels, out_channels=256, extra_levels=2, act="relu6"):
        super().__init__()
        self.upsample = UpsampleLike()
        self.lateral_convs = nn.CellList([conv2d(c, out_channels, 1, has_bias=True) for c in in_channels])
        self.output_convs = nn.CellList([ConvBNAct(out_channels, out_channels, 3, act=act) for _ in in_channels])
        self.extra_convs = nn.CellList([ConvBNAct(out_channels, out_channels, 3, 2, act=act)
                                        for _ in range(extra_levels)])
        self.num_inputs = len(in_channels)
        self.out_channels = [out_channels] * (len(in_channels) + extra_levels)

    def feature_sizes(self, in_sizes):
        """1x1 laterals and 3x3 stride-1 outputs keep each input's size; every extra level halves, rounding up."""
        sizes = [tuple(s) for s in in_sizes]
        for _ in range(len(self.extra_convs)):
            h, w = sizes[-1]
            sizes.append((downsampled_size(h, 2), downsampled_size(w, 2)))
        return sizes

    def construct(self, features):
        merged = self.lateral_convs[self.num_inputs - 1](features[self.num_inputs - 1])
        outs = (self.output_convs[self.num_inputs - 1](merged),)
        for i in range(self.num_inputs - 2, -1, -1):
            lateral = self.lateral_convs[i](features[i])
            merged = lateral + self.upsample(merged, lateral)
            outs = (self.output_convs[i](merged),) + outs
        x = outs[-1]
        for conv in self.extra_convs:
            x = conv(x)
            outs = outs + (x,)
        return outs

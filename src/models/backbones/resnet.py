"""ResNet (He et al., 2016) with bottleneck blocks, returning C3, C4, C5 for detection.

torchvision's "v1.5" layout, which the model zoo's SSD-ResNet50-FPN also uses: the stride of a downsampling block
sits on its 3x3 conv (not on the first 1x1, as in the paper's v1). Layer names follow torchvision (`conv1` stem,
`layer1..layer4`, per block `conv1..conv3` and `downsample`, `fc`), with each conv and its BN held by one ConvBNAct
(`layer1.0.conv1.conv` / `.bn` for torchvision's `layer1.0.conv1` / `layer1.0.bn1`), so that an ImageNet checkpoint
maps name by name.
"""
import mindspore.nn as nn
import mindspore.ops as ops

from ..layers import ConvBNAct, MaxPoolPadded
from ..registry import register_backbone

EXPANSION = 4
STAGE_WIDTHS = (64, 128, 256, 512)  # bottleneck (3x3) widths; stage outputs are 4x these
# Blocks per stage by depth, for bottleneck ResNets. resnet101 would be `101: (3, 4, 23, 3)` plus its factory.
BOTTLENECK_STAGES = {50: (3, 4, 6, 3)}


class Bottleneck(nn.Cell):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand, plus the shortcut, then ReLU."""

    recompute_unit = True  # Detector.use_recompute

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = ConvBNAct(in_channels, width, 1)
        self.conv2 = ConvBNAct(width, width, 3, stride)
        self.conv3 = ConvBNAct(width, out_channels, 1, act=None)
        # Projection shortcut wherever the shape changes (the first block of every stage).
        needs_projection = stride != 1 or in_channels != out_channels
        self.downsample = ConvBNAct(in_channels, out_channels, 1, stride, act=None) if needs_projection else None
        self.relu = nn.ReLU()
        # Zero-init the last BN's scale (Goyal et al., 2017; the model zoo's `_bn_last`): each block starts as an
        # identity, which steadies training from scratch. An ImageNet checkpoint overwrites it.
        self.conv3.bn.gamma.set_data(ops.zeros(self.conv3.bn.gamma.shape, self.conv3.bn.gamma.dtype))

    def construct(self, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + shortcut)


def _stage(in_channels, width, blocks, stride):
    cells = [Bottleneck(in_channels, width, stride)]
    cells += [Bottleneck(width * EXPANSION, width) for _ in range(blocks - 1)]
    return nn.SequentialCell(cells)


class ResNet(nn.Cell):
    """Stem (7x7/2 conv-BN-ReLU, 3x3/2 max pool) and four bottleneck stages; returns (C3, C4, C5).

    `num_classes` > 0 adds torchvision's ImageNet classifier (global mean + `fc`), used by `classify` only.
    """

    def __init__(self, depth=50, num_classes=0):
        super().__init__()
        if depth not in BOTTLENECK_STAGES:
            raise ValueError(f"ResNet depth must be one of {sorted(BOTTLENECK_STAGES)}, got {depth}")
        self.conv1 = ConvBNAct(3, 64, 7, 2)
        # After the stem's ReLU a zero pad can never win the max, so PyTorch's -inf padding needs no mask here.
        self.maxpool = MaxPoolPadded(3, 2, (1, 1, 1, 1), nonnegative_input=True)
        in_ch = 64
        stages = []
        for i, (width, blocks) in enumerate(zip(STAGE_WIDTHS, BOTTLENECK_STAGES[depth])):
            stages.append(_stage(in_ch, width, blocks, 1 if i == 0 else 2))
            in_ch = width * EXPANSION
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = [w * EXPANSION for w in STAGE_WIDTHS[1:]]
        self.out_strides = [8, 16, 32]
        self.fc = nn.Dense(in_ch, num_classes) if num_classes else None

    def construct(self, x):
        c2 = self.layer1(self.maxpool(self.conv1(x)))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c3, c4, c5

    def classify(self, x):
        """ImageNet logits (needs num_classes > 0)."""
        c5 = self(x)[-1]
        return self.fc(c5.mean(axis=(2, 3)))


@register_backbone("resnet50")
def resnet50(**kwargs):
    return ResNet(depth=50, **kwargs)

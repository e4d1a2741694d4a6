"""EfficientNet (Tan & Le, ICML 2019) returning the stride-8, -16 and -32 features that EfficientDet reads.

Blocks are MBConv (layers.InvertedResidual with SE and drop path), swish everywhere. Convolutions use symmetric
k // 2 padding (layers.conv2d) where TensorFlow's reference uses SAME padding, which on a stride-2 conv over an even
size pads only the bottom/right. Output sizes are identical either way (ceil(n / 2)); only the sampling grid shifts by
one pixel at the border. Symmetric padding exports to ONNX as a plain conv and is what the PyTorch ports
(torchvision, timm's non-"tf_" models) use, so their ImageNet weights fit without a padding shim.
"""
import math
from functools import partial

import mindspore.nn as nn

from ..layers import ConvBNAct, InvertedResidual, make_divisible
from ..registry import register_backbone

# EfficientNet-B0, the paper's Table 1: (expand ratio, kernel, first stride, channels, repeats) per MBConv stage.
B0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
SE_RATIO = 0.25          # of the block's input channels
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# The last stage at each of strides 8, 16 and 32: EfficientDet's C3, C4, C5 (TF endpoints reduction_3/4/5).
FEATURE_STAGES = (2, 4, 6)
FEATURE_STRIDES = (8, 16, 32)

# Compound scaling (paper section 3.3; coefficients of the reference implementation):
# name -> (width multiplier, depth multiplier, ImageNet resolution, classifier dropout).
COMPOUND_SCALING = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}


class EfficientNet(nn.Cell):
    """Stem, seven MBConv stages; with `num_classes` also the 1x1 head conv, global mean, dropout and Dense.

    `construct` returns (C3, C4, C5). The head conv exists only for classification, since the detector never
    reads it. Drop-path rates rise linearly with the block index from 0 to `drop_path_rate` (exclusive).
    """

    def __init__(self, width_mult=1.0, depth_mult=1.0, drop_path_rate=0.2, num_classes=0, dropout=0.2):
        super().__init__()
        in_ch = make_divisible(STEM_CHANNELS * width_mult)
        self.stem = ConvBNAct(3, in_ch, 3, 2, act="swish")
        repeats = [int(math.ceil(n * depth_mult)) for *_, n in B0_STAGES]
        total_blocks, block_index = sum(repeats), 0
        stages = []
        for (expand, kernel, stride, channels, _), n in zip(B0_STAGES, repeats):
            out_ch = make_divisible(channels * width_mult)
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(
                    in_ch, out_ch, stride if i == 0 else 1, expand, act="swish", kernel_size=kernel,
                    se_channels=max(1, int(in_ch * SE_RATIO)),
                    drop_path_rate=drop_path_rate * block_index / total_blocks))
                in_ch = out_ch
                block_index += 1
            stages.append(nn.SequentialCell(blocks))
        self.stages = nn.CellList(stages)
        self.out_channels = [make_divisible(B0_STAGES[i][3] * width_mult) for i in FEATURE_STAGES]
        self.feature_stages = FEATURE_STAGES  # construct reads attributes: amp O1 loses module-level names
        self.out_strides = list(FEATURE_STRIDES)
        self.head = self.classifier = None
        if num_classes:
            head_ch = make_divisible(HEAD_CHANNELS * width_mult)
            self.head = ConvBNAct(in_ch, head_ch, 1, act="swish")
            self.dropout = nn.Dropout(p=dropout)
            self.classifier = nn.Dense(head_ch, num_classes)

    def construct(self, x):
        x = self.stem(x)
        features = ()
        for i in range(len(self.stages)):
            x = self.stages[i](x)
            if i in self.feature_stages:
                features += (x,)
        return features

    def classify(self, x):
        """ImageNet logits (needs num_classes > 0)."""
        x = self.head(self(x)[-1])
        return self.classifier(self.dropout(x.mean(axis=(2, 3))))


def build_efficientnet(variant, drop_path_rate=0.2, num_classes=0, **kwargs):
    width, depth, _, dropout = COMPOUND_SCALING[variant]
    return EfficientNet(width, depth, drop_path_rate, num_classes, dropout, **kwargs)


for _variant in COMPOUND_SCALING:
    register_backbone(f"efficientnet_{_variant}")(partial(build_efficientnet, _variant))

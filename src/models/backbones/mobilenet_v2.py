"""MobileNetV2 (Sandler et al., 2018) returning the two SSD feature maps.

Layer names follow torchvision's `features.N` indexing (0: stem conv, 1-17: inverted residual blocks, 18: last
1x1 conv), so that ImageNet weights convert one to one. SSD taps the 576-channel expansion inside block 14 at
stride 16 (TF Object Detection API's `layer_15/expansion_output`) and the 1280-channel last conv at stride 32.
"""
import mindspore.nn as nn

from ..layers import ConvBNAct, InvertedResidual, make_divisible
from ..registry import register_backbone

# expansion t, channels c, repeats n, first stride s: the paper's Table 2.
MOBILENET_V2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
# Index in `features` of the block whose expansion output is the stride-16 SSD feature (first 160-channel block).
STRIDE16_TAP = 14


class MobileNetV2(nn.Cell):
    def __init__(self, width_mult=1.0, num_classes=0):
        super().__init__()
        in_ch = make_divisible(32 * width_mult)
        self.last_channels = make_divisible(1280 * max(1.0, width_mult))
        layers = [ConvBNAct(3, in_ch, 3, 2, act="relu6")]
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            out_ch = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        layers.append(ConvBNAct(in_ch, self.last_channels, 1, act="relu6"))
        self.features = nn.CellList(layers)
        self.out_channels = [layers[STRIDE16_TAP].hidden_channels, self.last_channels]
        self.out_strides = [16, 32]
        # An attribute, not the module constant, in construct: amp_level O1 rebuilds construct from source and
        # loses module-level names.
        self.tap = STRIDE16_TAP
        # The ImageNet classifier exists only to check converted weights; SSD builds it with num_classes=0.
        self.classifier = nn.Dense(self.last_channels, num_classes) if num_classes else None

    def construct(self, x):
        for i in range(self.tap):
            x = self.features[i](x)
        tap = self.features[self.tap]
        expanded = tap.expanded(x)
        x = tap.from_expanded(x, expanded)
        for i in range(self.tap + 1, len(self.features)):
            x = self.features[i](x)
        return expanded, x

    def classify(self, x):
        """ImageNet logits (needs num_classes > 0); dropout is an identity at inference."""
        _, x = self(x)
        return self.classifier(x.mean(axis=(2, 3)))


@register_backbone("mobilenet_v2")
def mobilenet_v2(width_mult=1.0, **kwargs):
    return MobileNetV2(width_mult=width_mult, **kwargs)

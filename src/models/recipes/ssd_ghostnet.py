"""SSD-GhostNet 300: the model zoo's research/cv/ssd_ghostnet, the repository's default detector."""
from ..heads import SSDHead
from ..necks import InvertedResidualExtras
from ..registry import BACKBONES, register_model


@register_model("ssd_ghostnet")
def ssd_ghostnet(width_mult, img_shape):
    """GhostNet (width `width_mult`, 1.3 in the model zoo) with the same extras and SSDLite-style heads as
    SSD-MobileNetV2: four stride-2 inverted residual blocks (512, 256, 256, 128) and a depthwise + 1x1 predictor
    per level."""
    backbone = BACKBONES.get("ghostnet")(width_mult=width_mult)
    neck = InvertedResidualExtras(backbone.out_channels, act="relu")  # the zoo's GhostNet extras use ReLU

    def head(anchors_per_location, num_outputs, prior_prob):
        return SSDHead(neck.out_channels, anchors_per_location, num_outputs, separable=True, prior_prob=prior_prob)
    return backbone, neck, head

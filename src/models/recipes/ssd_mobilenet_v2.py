"""SSD-MobileNetV2 300: the model zoo's ssd300."""
from ..heads import SSDHead
from ..necks import InvertedResidualExtras
from ..registry import BACKBONES, register_model


@register_model("ssd_mobilenet_v2")
def ssd_mobilenet_v2(width_mult, img_shape):
    """SSD-MobileNetV2 as in the MindSpore model zoo's ssd300: SSDLite-style heads on six levels."""
    backbone = BACKBONES.get("mobilenet_v2")(width_mult=width_mult)
    neck = InvertedResidualExtras(backbone.out_channels)

    def head(anchors_per_location, num_outputs, prior_prob):
        return SSDHead(neck.out_channels, anchors_per_location, num_outputs, separable=True, prior_prob=prior_prob)
    return backbone, neck, head

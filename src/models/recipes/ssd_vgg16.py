"""SSD300-VGG16: the SSD paper's model (Liu et al., ECCV 2016)."""
from ..heads import SSDHead
from ..necks import ConvExtras
from ..registry import BACKBONES, register_model
from .common import require_unit_width


@register_model("ssd_vgg16")
def ssd_vgg16(width_mult, img_shape):
    """VGG16 (conv4_3 L2-norm, fc6/fc7 as convs) -> conv8-conv11 extras -> a plain 3x3 conv predictor per level."""
    require_unit_width("ssd_vgg16", width_mult)
    backbone = BACKBONES.get("vgg16")()
    neck = ConvExtras(backbone.out_channels)

    def head(anchors_per_location, num_outputs, prior_prob):
        return SSDHead(neck.out_channels, anchors_per_location, num_outputs, separable=False, prior_prob=prior_prob)
    return backbone, neck, head

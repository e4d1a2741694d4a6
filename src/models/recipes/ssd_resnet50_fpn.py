"""SSD-ResNet50-FPN 640 (RetinaNet-like): the model zoo's ssd_resnet50_fpn."""
from ..heads import SharedConvHead
from ..necks import FPN
from ..registry import BACKBONES, register_model
from .common import require_unit_width

FPN_CHANNELS = 256
HEAD_DEPTH = 4  # the model zoo's num_addition_layers


@register_model("ssd_resnet50_fpn")
def ssd_resnet50_fpn(width_mult, img_shape):
    """ResNet50 C3-C5 -> FPN P3-P7 (256 channels) -> weight-shared towers of four 3x3 conv + BN + ReLU6.

    ReLU6, as in the model zoo (and the TF Object Detection API config it follows); RetinaNet uses ReLU.
    """
    require_unit_width("ssd_resnet50_fpn", width_mult)
    backbone = BACKBONES.get("resnet50")()
    neck = FPN(backbone.out_channels, FPN_CHANNELS)

    def head(anchors_per_location, num_outputs, prior_prob):
        return SharedConvHead(neck.out_channels, anchors_per_location, num_outputs, depth=HEAD_DEPTH, act="relu6",
                              prior_prob=prior_prob)
    return backbone, neck, head

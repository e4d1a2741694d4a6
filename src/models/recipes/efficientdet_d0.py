"""EfficientDet-D0 (Tan, Pang & Le, CVPR 2020): EfficientNet-B0, BiFPN x3 at 64 channels, separable shared heads."""
from ..heads import SharedConvHead
from ..necks import BiFPN
from ..registry import BACKBONES, register_model
from ..shapes import downsampled_hw
from .common import require_unit_width

# D0's compound-scaling row (paper Table 1; google/automl hparams_config.py): BiFPN width and depth, head depth.
BIFPN_CHANNELS = 64
BIFPN_LAYERS = 3
HEAD_DEPTH = 3


@register_model("efficientdet_d0")
def efficientdet_d0(width_mult, img_shape):
    """C3-C5 of EfficientNet-B0 -> BiFPN over P3-P7 -> class and box nets of three separable conv + BN + swish
    layers, weights shared across levels, BN per level.

    The official D0 turns the backbone's drop connect off (automl sets survival_prob 0 for B0), and so do we.
    The BiFPN's max pools take their TF-SAME padding from the feature sizes, so it is built for `img_shape`.
    """
    require_unit_width("efficientdet_d0", width_mult)
    backbone = BACKBONES.get("efficientnet_b0")(drop_path_rate=0.0)
    in_sizes = [downsampled_hw(tuple(img_shape), s) for s in backbone.out_strides]
    neck = BiFPN(backbone.out_channels, in_sizes, BIFPN_CHANNELS, BIFPN_LAYERS)

    def head(anchors_per_location, num_outputs, prior_prob):
        return SharedConvHead(neck.out_channels, anchors_per_location, num_outputs, depth=HEAD_DEPTH, separable=True,
                              act="swish", prior_prob=prior_prob)
    return backbone, neck, head

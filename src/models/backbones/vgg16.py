"""VGG16 (Simonyan & Zisserman, 2015, configuration D) and the SSD300 backbone made from it (Liu et al., 2016).

Plain 3x3 convs with biases and ReLU, no BN. Layer names follow torchvision's `features.N` indexing (convs at
0, 2, 5, 7, 10, ..., 28; ReLUs and pools in between) and `classifier.0/3/6`, so that ImageNet weights convert one
to one. For SSD, pool5 becomes 3x3 stride 1, fc6 and fc7 become a dilated 3x3 conv and a 1x1 conv, and conv4_3
passes through a learned L2 normalisation.
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
import numpy as np

from ..layers import MaxPoolPadded, conv2d
from ..registry import register_backbone

# Output channels of conv1_1 ... conv5_3; "M" is a 2x2 stride-2 max pool. pool5 is left out: it differs between
# the classifier (2x2 stride 2) and SSD (3x3 stride 1).
VGG16_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# `features[:CONV4_3_END]` ends with conv4_3's ReLU: SSD's stride-8 feature.
CONV4_3_END = 23


def ceil_max_pool_2x2():
    """2x2 stride-2 max pool with ceil rounding (75 -> 38): one row and column padded on the bottom and right.

    On an even size the pad is never read. Every pool rounding up keeps each level at ceil(size / stride), which is
    what `shapes.downsampled_hw` assumes. The input comes from a ReLU, so zero padding cannot win the max.
    """
    return MaxPoolPadded(2, 2, (0, 1, 0, 1), nonnegative_input=True)


def pool5_3x3():
    """SSD's pool5: 3x3 stride 1 pad 1 (after a ReLU)."""
    return MaxPoolPadded(3, 1, (1, 1, 1, 1), nonnegative_input=True)


class L2Norm(nn.Cell):
    """Per-position L2 normalisation across channels, times a learned per-channel scale (SSD's conv4_3 norm).

    conv4_3's activations are much larger than the deeper layers'; normalising them to a norm of `init_scale`
    (20 in the paper) lets one learning rate suit every level. Written with Square/ReduceSum/Sqrt because the
    L2Normalize op does not export to ONNX. eps sits inside the sqrt (as in Caffe's Normalize): outside it, a
    position where every channel is 0 (common after ReLU) gets sqrt'(0) * 0 = NaN gradients.
    """

    def __init__(self, channels, init_scale=20.0, eps=1e-10):
        super().__init__()
        self.scale = ms.Parameter(ms.Tensor(np.full(channels, init_scale, np.float32)), name="scale")
        self.eps = eps
        self.sum = ops.ReduceSum(keep_dims=True)

    def construct(self, x):
        norm = ops.sqrt(self.sum(ops.square(x), 1) + self.eps)
        return x / norm * ops.reshape(self.scale, (1, -1, 1, 1))


def make_vgg16_features():
    """conv1_1 ... conv5_3 with their ReLUs and pools 1-4, indexed as torchvision's `vgg16().features`."""
    layers = []
    in_ch = 3
    for v in VGG16_LAYERS:
        if v == "M":
            layers.append(ceil_max_pool_2x2())
            continue
        layers += [conv2d(in_ch, v, 3, has_bias=True), nn.ReLU()]
        in_ch = v
    return nn.CellList(layers)


class SSDVGG16(nn.Cell):
    """SSD300's VGG16: returns (L2-normalised conv4_3 at stride 8, fc7 at stride 16).

    pool5 is 3x3 stride 1, so fc7 stays at conv5_3's stride 16 (19x19 at 300); fc6's dilation 6 keeps the
    receptive field that the subsampled fc6 weights of the paper had.
    """

    def __init__(self):
        super().__init__()
        self.features = make_vgg16_features()
        self.conv4_3_norm = L2Norm(512)
        self.pool5 = pool5_3x3()
        self.fc6 = conv2d(512, 1024, 3, dilation=6, has_bias=True)
        self.fc7 = conv2d(1024, 1024, 1, has_bias=True)
        self.relu = nn.ReLU()
        self.out_channels = [512, 1024]
        self.out_strides = [8, 16]
        self.conv4_3_end = CONV4_3_END  # construct reads attributes: amp O1 loses module-level names

    def construct(self, x):
        for i in range(self.conv4_3_end):
            x = self.features[i](x)
        conv4_3 = x
        for i in range(self.conv4_3_end, len(self.features)):
            x = self.features[i](x)
        x = self.relu(self.fc6(self.pool5(x)))
        x = self.relu(self.fc7(x))
        return self.conv4_3_norm(conv4_3), x


class VGG16Classifier(nn.Cell):
    """The ImageNet VGG16 (138,357,544 parameters), to check the layer table and converted weights; 224x224 input.

    torchvision's adaptive 7x7 average pool is an identity at 224 and is left out (it does not export to ONNX).
    """

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = make_vgg16_features()
        self.pool5 = ceil_max_pool_2x2()
        self.classifier = nn.SequentialCell([
            nn.Dense(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.Dense(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.Dense(4096, num_classes)])

    def construct(self, x):
        for layer in self.features:
            x = layer(x)
        x = self.pool5(x)
        return self.classifier(ops.reshape(x, (x.shape[0], -1)))


@register_backbone("vgg16")
def vgg16(num_classes=0):
    """SSD's VGG16 backbone; with `num_classes` the ImageNet classification network instead."""
    return VGG16Classifier(num_classes) if num_classes else SSDVGG16()

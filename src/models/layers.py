"""Building blocks shared by every backbone, neck and head: conv-BN-activation, inverted residual, SE.

Convolutions use explicit symmetric padding (`pad_mode="pad"`, k // 2), as PyTorch does: pretrained weights then
line up, and ONNX export and onnxruntime accept every variant (a dilated `same` conv is rejected there).
"""
import math

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import HeNormal, Normal, Constant



class HSigmoid(nn.Cell):
    """relu6(x + 3) / 6, written out because HSigmoid does not export to ONNX."""

    def __init__(self):
        super().__init__()
        self.relu6 = nn.ReLU6()

    def construct(self, x):
        return self.relu6(x + 3.0) / 6.0


class HSwish(nn.Cell):
    def __init__(self):
        super().__init__()
        self.hsigmoid = HSigmoid()

    def construct(self, x):
        return x * self.hsigmoid(x)


def make_activation(name):
    """An activation cell by name; None or 'none' gives None."""
    if name in (None, "none"):
        return None
    factories = {"relu": nn.ReLU, "relu6": nn.ReLU6, "swish": nn.SiLU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid,
                 "hsigmoid": HSigmoid, "hswish": HSwish}
    if name not in factories:
        raise ValueError(f"unknown activation '{name}', expected one of {sorted(factories)}")
    return factories[name]()


def conv2d(in_channels, out_channels, kernel_size=3, stride=1, groups=1, dilation=1, has_bias=False,
           weight_init=None, bias_init="zeros", padding=None):
    """A conv with explicit padding, by default the size-keeping k // 2 (times the dilation)."""
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    if weight_init is None:
        # fan_out of a depthwise kernel counts all channels (C * k * k), which makes its weights tiny; behind BN a
        # tiny weight gets a huge gradient (1 / |w|), and from scratch the training stalls. fan_in (k * k) does not.
        weight_init = HeNormal(mode="fan_in" if groups > 1 else "fan_out", nonlinearity="relu")
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad", padding=padding,
                     dilation=dilation, group=groups, has_bias=has_bias, weight_init=weight_init, bias_init=bias_init)


def batch_norm(channels, momentum=0.9, eps=1e-5):
    return nn.BatchNorm2d(channels, momentum=momentum, eps=eps)


class ConvBNAct(nn.Cell):
    """conv -> BN -> activation; the unit every model here is made of."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, dilation=1, act="relu"):
        super().__init__()
        self.conv = conv2d(in_channels, out_channels, kernel_size, stride, groups, dilation)
        self.bn = batch_norm(out_channels)
        self.act = make_activation(act)

    def construct(self, x):
        x = self.bn(self.conv(x))
        if self.act is not None:
            x = self.act(x)
        return x


class SqueezeExcite(nn.Cell):
    """Channel attention: global mean -> reduce -> act -> expand -> gate. ReduceMean exports to ONNX."""

    def __init__(self, channels, reduced_channels, act="relu", gate="sigmoid"):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced_channels, 1, has_bias=True, weight_init=HeNormal())
        self.act = make_activation(act)
        self.expand = nn.Conv2d(reduced_channels, channels, 1, has_bias=True, weight_init=HeNormal())
        self.gate = make_activation(gate)
        self.mean = ops.ReduceMean(keep_dims=True)

    def construct(self, x):
        s = self.mean(x, (2, 3))
        s = self.gate(self.expand(self.act(self.reduce(s))))
        return x * s


class DropPath(nn.Cell):
    """Stochastic depth ("drop connect"): zero a residual branch for a random subset of samples while training.

    An identity in eval mode, so that exported graphs hold no random op.
    """

    def __init__(self, drop_rate):
        super().__init__()
        self.keep_prob = 1.0 - float(drop_rate)

    def construct(self, x):
        if not self.training or self.keep_prob >= 1.0:
            return x
        mask = ops.floor(self.keep_prob + ops.rand((x.shape[0], 1, 1, 1), dtype=x.dtype))
        return x * mask / self.keep_prob


class InvertedResidual(nn.Cell):
    """MobileNetV2 block: 1x1 expand -> kxk depthwise -> 1x1 linear projection, residual when shapes allow.

    With `se_channels` and `drop_path_rate` it is EfficientNet's MBConv (SE after the depthwise conv; the residual
    branch dropped per sample). `expand_ratio` may be below 1 (the SSD extra layers shrink). `last_act` adds an
    activation after the projection, as the model zoo's SSD extra layers do. `expanded()` exposes the expanded
    tensor, which SSD-MobileNetV2 taps at stride 16.
    """

    recompute_unit = True  # Detector.use_recompute

    def __init__(self, in_channels, out_channels, stride, expand_ratio, act="relu6", last_act=None, kernel_size=3,
                 se_channels=0, drop_path_rate=0.0):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = ConvBNAct(in_channels, hidden, 1, act=act) if expand_ratio != 1 else None
        self.depthwise = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, act=act)
        self.se = SqueezeExcite(hidden, se_channels, act=act) if se_channels else None
        self.project = ConvBNAct(hidden, out_channels, 1, act=last_act)
        self.drop_path = DropPath(drop_path_rate) if self.use_residual and drop_path_rate > 0 else None
        self.hidden_channels = hidden

    def expanded(self, x):
        return self.expand(x) if self.expand is not None else x

    def from_expanded(self, x, h):
        h = self.depthwise(h)
        if self.se is not None:
            h = self.se(h)
        out = self.project(h)
        if not self.use_residual:
            return out
        if self.drop_path is not None:
            out = self.drop_path(out)
        return x + out

    def construct(self, x):
        return self.from_expanded(x, self.expanded(x))


def separable_conv(in_channels, out_channels, kernel_size=3, has_bias=False, bias_init="zeros", weight_init=None):
    """Depthwise kxk then pointwise 1x1, with no norm or activation between (EfficientDet's SeparableConv)."""
    return nn.SequentialCell([
        conv2d(in_channels, in_channels, kernel_size, groups=in_channels),
        conv2d(in_channels, out_channels, 1, has_bias=has_bias, weight_init=weight_init, bias_init=bias_init)])


class MaxPoolPadded(nn.Cell):
    """Max pool with explicit padding that never wins the max, as PyTorch and TF 'SAME' pooling behave.

    MaxPool with pad_mode='pad' does not export to ONNX and nn.Pad pads zeros, which would win over negative
    inputs; so pad zeros and push the padded cells far down with a mask made by padding ones. After a ReLU
    (`nonnegative_input=True`) zeros cannot win and the mask is skipped. `padding` is (top, bottom, left, right);
    one extra row and column on the bottom and right give ceil rounding (VGG's 75 -> 38).
    """
    FLOOR = 6.0e4  # far below any activation, and still finite in float16

    def __init__(self, kernel_size, stride, padding, nonnegative_input=False):
        super().__init__()
        top, bottom, left, right = padding
        self.pad = nn.Pad(((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else None
        self.masked = not nonnegative_input
        self.pool = nn.MaxPool2d(kernel_size, stride, pad_mode="valid")

    def construct(self, x):
        if self.pad is not None:
            if self.masked:
                inside = self.pad(x * 0.0 + 1.0)
                x = self.pad(x) + (inside - 1.0) * self.FLOOR
            else:
                x = self.pad(x)
        return self.pool(x)


class UpsampleLike(nn.Cell):
    """Nearest-neighbour resize of `x` to `reference`'s spatial size (an op that exports to ONNX).

    A cell rather than a function: amp_level O1 rebuilds construct methods from source and loses module-level
    helpers, but keeps cells.
    """

    def construct(self, x, reference):
        return ops.ResizeNearestNeighbor(reference.shape[2:])(x)


def head_conv_init(std=0.01):
    return Normal(sigma=std)


def prior_bias_init(prior_prob):
    """Bias so that sigmoid(bias) = prior_prob: the focal-loss start that keeps early losses small."""
    return Constant(-math.log((1.0 - prior_prob) / prior_prob))


def make_divisible(value, divisor=8, min_value=None):
    """Round channels to a multiple of `divisor`, never down by more than 10% (MobileNet's rule)."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value

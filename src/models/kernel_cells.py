"""Layers that can run on the C++ CPU kernels of src/kernels: a depthwise conv and a batch norm.

They are nn.Conv2d and nn.BatchNorm2d (same parameters, checkpoints and export) until `use_cpu_kernels(net)`
switches them, for training and evaluation on the CPU. Export builds its own network and never switches, so an
exported graph holds only standard ops.
"""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import dtype as mstype


class DepthwiseConv2d(nn.Conv2d):
    """nn.Conv2d with group == in == out channels."""

    cpu_kernel = False
    kernel_source = "depthwise_conv.cc"

    def enable_cpu_kernel(self, enabled=True):
        self.cpu_kernel = bool(enabled)
        if enabled:
            from ..kernels.depthwise import depthwise_ops
            padding = self.padding if isinstance(self.padding, int) else self.padding[0]
            self._dw_forward, self._dw_geometry = depthwise_ops(self.stride[0], padding)

    def construct(self, x):
        if not self.cpu_kernel:
            return super().construct(x)
        # The kernel is float32 only; under amp_level O2/O3 the casts bring float16 tensors to it and back.
        y = self._dw_forward(ops.cast(x, mstype.float32), ops.cast(self.weight, mstype.float32), self._dw_geometry)
        if self.has_bias:
            y = self.bias_add(y, ops.cast(self.bias, mstype.float32))
        return ops.cast(y, x.dtype)


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d; on the kernel in training mode, with the same moving-statistics update.

    MindSpore's rule, checked in tests/test_cpu_kernels.py: moving = (1 - m) * moving + m * batch statistic, where
    m is `self.momentum` (1 - the constructor's momentum) and the variance is the unbiased one.
    """

    cpu_kernel = False
    kernel_source = "batch_norm.cc"
    fused_activation = None  # "relu" or "relu6": set by ConvBNAct, applied by the kernel (training only)

    def enable_cpu_kernel(self, enabled=True, activation=None):
        """`activation` (ConvBNAct passes its own) is kept for later calls that do not name one."""
        self.cpu_kernel = bool(enabled)
        if activation is not None:
            self.fused_activation = activation or None
        if enabled:
            from ..kernels.batch_norm import batch_norm_ops
            self._bn_forward, self._bn_params = batch_norm_ops(float(self.eps), self.fused_activation)

    def construct(self, x):
        if not (self.cpu_kernel and self.training):
            return super().construct(x)
        # float32 only, like the depthwise kernel: amp_level O3 hands it float16 tensors and parameters.
        y, mean, var = self._bn_forward(ops.cast(x, mstype.float32), ops.cast(self.gamma, mstype.float32),
                                        ops.cast(self.beta, mstype.float32), self._bn_params)
        count = x.shape[0] * x.shape[2] * x.shape[3]
        unbiased = var * (count / max(count - 1, 1))
        m = self.momentum
        ops.assign(self.moving_mean, self.moving_mean * (1.0 - m) + ops.stop_gradient(mean) * m)
        ops.assign(self.moving_variance, self.moving_variance * (1.0 - m) + ops.stop_gradient(unbiased) * m)
        return ops.cast(y, x.dtype)


def use_cpu_kernels(net, enabled=True):
    """Switch every cell of `net` that has a C++ CPU kernel (depthwise conv, batch norm, and the focal loss of a
    DetectionLoss) to it, or back; returns how many were switched.

    A kernel that cannot be built here (no compiler) leaves its cells on MindSpore's ops, with one warning.
    """
    from ..kernels import build

    switched = 0
    for _, cell in net.cells_and_names():
        if not hasattr(cell, "enable_cpu_kernel"):
            continue
        if enabled and build.library(cell.kernel_source) is None:
            continue
        cell.enable_cpu_kernel(enabled)
        switched += 1
    return switched

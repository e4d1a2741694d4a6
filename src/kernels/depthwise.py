"""Depthwise convolution on MindSpore's CPU backend through the C++ kernels of depthwise_conv.cc.

oneDNN runs an NCHW depthwise convolution as one small GEMM per channel; these kernels are several times faster
(benchmark.py and tests/test_cpu_kernels.py measure and check them). The ops are MindSpore Custom ops with their
own bprop, so they train like the built-in conv. They are for the CPU only and never exported: a network uses them
only after `src.models.layers.use_cpu_kernels(net)`.
"""
import functools

import mindspore as ms
import mindspore.ops as ops
import numpy as np

from . import build
from .build import KernelBuildError

SOURCE = "depthwise_conv.cc"


def library():
    return build.library(SOURCE)


def _same_dtype(*dtypes):
    return dtypes[0]


@functools.lru_cache(maxsize=None)
def depthwise_ops(stride, padding):
    """(forward op, geometry tensor) for one stride and symmetric padding; forward(x, weight, geometry) -> y."""
    path = library()
    if path is None:
        raise KernelBuildError("the CPU depthwise kernel could not be built")

    def out_shape(x, w, geometry):
        return [x[0], x[1], (x[2] + 2 * padding - w[2]) // stride + 1, (x[3] + 2 * padding - w[3]) // stride + 1]

    input_grad = ops.Custom(f"{path}:DepthwiseConvInputGrad", out_shape=lambda x, dy, w, g: x,
                            out_dtype=_same_dtype, func_type="aot")
    weight_grad = ops.Custom(f"{path}:DepthwiseConvWeightGrad", out_shape=lambda x, dy, w, g: w,
                             out_dtype=_same_dtype, func_type="aot")

    def bprop(x, w, geometry, out, dout):
        return input_grad(x, dout, w, geometry), weight_grad(x, dout, w, geometry), ops.zeros_like(geometry)

    forward = ops.Custom(f"{path}:DepthwiseConvForward", out_shape=out_shape, out_dtype=_same_dtype,
                         func_type="aot", bprop=bprop)
    return forward, ms.Tensor(np.array([stride, padding], np.int32))

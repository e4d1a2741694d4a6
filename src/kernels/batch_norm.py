"""Training-mode batch norm on MindSpore's CPU backend through the C++ kernels of batch_norm.cc.

The forward op returns the batch mean and (biased) variance besides the output, so that the cell updates its
moving statistics as nn.BatchNorm2d does; the backward op gives the input, scale and shift gradients.
"""
import functools

import mindspore as ms
import mindspore.ops as ops
import numpy as np

from . import build
from .build import KernelBuildError

SOURCE = "batch_norm.cc"


def library():
    return build.library(SOURCE)


@functools.lru_cache(maxsize=None)
def batch_norm_ops(eps):
    """(forward op, eps tensor): forward(x, gamma, beta, eps) -> (y, batch mean, batch variance)."""
    path = library()
    if path is None:
        raise KernelBuildError("the CPU batch norm kernel could not be built")
    f32 = ms.float32
    grad = ops.Custom(f"{path}:BatchNormGrad", out_shape=lambda x, dy, g, m, v, e: (x, g, g),
                      out_dtype=lambda *dtypes: (f32, f32, f32), func_type="aot")

    def bprop(x, gamma, beta, eps_tensor, out, dout):
        dx, dgamma, dbeta = grad(x, dout[0], gamma, out[1], out[2], eps_tensor)
        return dx, dgamma, dbeta, ops.zeros_like(eps_tensor)

    forward = ops.Custom(f"{path}:BatchNormForward", out_shape=lambda x, g, b, e: (x, g, g),
                         out_dtype=lambda *dtypes: (f32, f32, f32), func_type="aot", bprop=bprop)
    return forward, ms.Tensor(np.array([eps], np.float32))

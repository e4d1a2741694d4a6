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


# Activations the kernel can apply after the normalisation: name -> upper clamp (the lower one is 0).
FUSABLE = {"relu": float("inf"), "relu6": 6.0}


@functools.lru_cache(maxsize=None)
def batch_norm_ops(eps, activation=None):
    """(forward op, params tensor): forward(x, gamma, beta, params) -> (y, batch mean, batch variance).

    `activation` (a FUSABLE name, or None) is applied to y inside the kernel, its gradient mask in the backward.
    """
    path = build.library(SOURCE)
    if path is None:
        raise KernelBuildError("the CPU batch norm kernel could not be built")
    f32 = ms.float32
    grad = ops.Custom(f"{path}:BatchNormGrad", out_shape=lambda x, dy, y, g, m, v, p: (x, g, g),
                      out_dtype=lambda *dtypes: (f32, f32, f32), func_type="aot")

    def bprop(x, gamma, beta, params, out, dout):
        dx, dgamma, dbeta = grad(x, dout[0], out[0], gamma, out[1], out[2], params)
        return dx, dgamma, dbeta, ops.zeros_like(params)

    forward = ops.Custom(f"{path}:BatchNormForward", out_shape=lambda x, g, b, e: (x, g, g),
                         out_dtype=lambda *dtypes: (f32, f32, f32), func_type="aot", bprop=bprop)
    clamp, upper = (0.0, 0.0) if activation is None else (1.0, FUSABLE[activation])
    return forward, ms.Tensor(np.array([eps, clamp, upper], np.float32))

"""The C++ depthwise convolution (src/kernels) against MindSpore's own grouped conv: outputs and both gradients.

Shapes cover strides 1 and 2, kernels 3 and 5, odd and even sizes, planes narrower than the kernel, and a bias.
"""
import os

import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest

from src.kernels import build as kernel_build
from src.kernels.depthwise import library
from src.models.layers import DepthwiseConv2d, conv2d, use_cpu_kernels

pytestmark = pytest.mark.skipif(library() is None, reason="no C++ compiler to build the CPU kernel")


class SquaredSum(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x):
        return (self.net(x) ** 2).sum() / 2


def outputs_and_grads(net, x):
    grad = ms.grad(SquaredSum(net), grad_position=0, weights=net.trainable_params())
    gx, gw = grad(x)
    return net(x).asnumpy(), gx.asnumpy(), [g.asnumpy() for g in gw]


@pytest.mark.parametrize("batch,channels,size,kernel,stride,bias", [
    (2, 8, 11, 3, 1, False), (2, 8, 11, 3, 2, False), (2, 8, 10, 3, 2, True), (1, 4, 9, 5, 1, False),
    (2, 4, 10, 5, 2, False), (1, 3, 2, 3, 1, False), (1, 3, 1, 5, 2, False), (3, 16, 19, 3, 1, True)])
def test_kernel_matches_mindspore_conv(batch, channels, size, kernel, stride, bias):
    ms.set_context(mode=ms.GRAPH_MODE)
    reference = conv2d(channels, channels, kernel, stride, groups=channels, has_bias=bias, bias_init="normal")
    fast = conv2d(channels, channels, kernel, stride, groups=channels, has_bias=bias)
    assert isinstance(fast, DepthwiseConv2d)
    for mine, theirs in zip(fast.trainable_params(), reference.trainable_params()):
        mine.set_data(theirs.data)
    assert use_cpu_kernels(fast) == 1 and fast.cpu_kernel
    rng = np.random.default_rng(size * 10 + stride)
    x = ms.Tensor(rng.standard_normal((batch, channels, size, size)).astype(np.float32))
    want_y, want_gx, want_gw = outputs_and_grads(reference, x)
    got_y, got_gx, got_gw = outputs_and_grads(fast, x)
    assert got_y.shape == want_y.shape
    np.testing.assert_allclose(got_y, want_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_gx, want_gx, rtol=1e-4, atol=1e-4)
    for got, want in zip(got_gw, want_gw):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_float16_inputs_come_back_as_float16():
    ms.set_context(mode=ms.GRAPH_MODE)
    conv = conv2d(4, 4, 3, 1, groups=4)
    use_cpu_kernels(conv)
    x = ms.Tensor(np.ones((1, 4, 6, 6), np.float16))
    y = conv(x)
    assert y.dtype == ms.float16
    conv.enable_cpu_kernel(False)
    np.testing.assert_allclose(y.asnumpy(), conv(x.astype(ms.float32)).asnumpy(), rtol=2e-3, atol=2e-3)


def test_switch_keeps_parameter_names_and_only_touches_depthwise_convs():
    block = nn.SequentialCell([conv2d(8, 8, 3, groups=8), conv2d(8, 16, 1), conv2d(16, 16, 3, groups=4)])
    names = [p.name for p in block.get_parameters()]
    assert use_cpu_kernels(block) == 1  # the grouped (not depthwise) conv keeps MindSpore's kernel
    assert [p.name for p in block.get_parameters()] == names
    assert use_cpu_kernels(block, False) == 1 and not block[0].cpu_kernel


def test_library_is_built_once_per_source_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FDET_KERNEL_CACHE", str(tmp_path))
    first = kernel_build.build_library("depthwise_conv.cc")
    assert os.path.dirname(first) == str(tmp_path) and os.path.isfile(first)
    stamp = os.stat(first).st_mtime_ns
    assert kernel_build.build_library("depthwise_conv.cc") == first
    assert os.stat(first).st_mtime_ns == stamp
    assert [f for f in os.listdir(tmp_path)] == [os.path.basename(first)]  # no temporary left behind


def test_missing_compiler_is_reported_not_crashed(tmp_path, monkeypatch):
    monkeypatch.setenv("FDET_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setattr(kernel_build.shutil, "which", lambda name: None)
    with pytest.raises(kernel_build.KernelBuildError, match="no C\\+\\+ compiler"):
        kernel_build.build_library("depthwise_conv.cc")
    assert os.listdir(tmp_path) == []


def test_network_stays_on_mindspore_conv_when_the_kernel_cannot_be_built(monkeypatch):
    import src.kernels.depthwise as depthwise
    monkeypatch.setattr(depthwise, "library", lambda: None)
    conv = conv2d(4, 4, 3, groups=4)
    assert use_cpu_kernels(conv) == 0 and not conv.cpu_kernel

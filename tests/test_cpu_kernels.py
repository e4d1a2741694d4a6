"""The C++ depthwise convolution (src/kernels) against MindSpore's own grouped conv: outputs and both gradients.

Shapes cover strides 1 and 2, kernels 3 and 5, odd and even sizes, planes narrower than the kernel, and a bias.
"""
import os

import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest

from src.kernels import build as kernel_build
from src.kernels.swap import (FusedReLU, KernelBatchNorm2d, KernelDepthwiseConv2d, KernelSigmoidFocalLoss,
                              use_cpu_kernels)
from src.models.layers import ConvBNAct, batch_norm, conv2d



def _unbuilt_kernels():
    """{source: why it did not build} for the kernel sources that cannot be built here."""
    return {source: kernel_build.failure(source) for source in kernel_build.SOURCES
            if kernel_build.library(source) is None}


@pytest.fixture(scope="module", autouse=True)
def kernels_built():
    """A kernel that does not build skips these tests, saying why (the compiler's message); in CI
    (FDET_REQUIRE_CPP=1) it fails them, since training would silently fall back to MindSpore's ops."""
    unbuilt = _unbuilt_kernels()
    if unbuilt:
        message = "; ".join(f"{source}: {why}" for source, why in unbuilt.items())
        if os.environ.get("FDET_REQUIRE_CPP") == "1":
            pytest.fail(f"CPU kernels do not build: {message}")
        pytest.skip(f"CPU kernels do not build: {message}")


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
    assert type(fast) is nn.Conv2d  # models build MindSpore's own cells
    for mine, theirs in zip(fast.trainable_params(), reference.trainable_params()):
        mine.set_data(theirs.data)
    assert use_cpu_kernels(fast) == 1 and type(fast) is KernelDepthwiseConv2d
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
    use_cpu_kernels(conv, False)
    np.testing.assert_allclose(y.asnumpy(), conv(x.astype(ms.float32)).asnumpy(), rtol=2e-3, atol=2e-3)


def test_switch_keeps_parameter_names_and_only_touches_depthwise_convs():
    block = nn.SequentialCell([conv2d(8, 8, 3, groups=8), conv2d(8, 16, 1), conv2d(16, 16, 3, groups=4)])
    names = [p.name for p in block.get_parameters()]
    assert use_cpu_kernels(block) == 1  # the grouped (not depthwise) conv keeps MindSpore's kernel
    assert [p.name for p in block.get_parameters()] == names
    assert [n for n, _ in block.parameters_and_names()] == ["0.weight", "1.weight", "2.weight"]
    assert use_cpu_kernels(block, False) == 1 and type(block[0]) is nn.Conv2d
    # A ConvBNAct's depthwise conv, its batch norm, and its activation, which the batch norm kernel applies.
    unit = ConvBNAct(8, 8, 3, groups=8)
    names = [n for n, _ in unit.parameters_and_names()]
    assert use_cpu_kernels(unit) == 3 and [n for n, _ in unit.parameters_and_names()] == names
    assert type(unit.act) is FusedReLU and unit.bn.fused_activation == "relu"
    assert use_cpu_kernels(unit, False) == 3 and type(unit.act) is nn.ReLU and type(unit.bn) is nn.BatchNorm2d


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
    monkeypatch.setattr(kernel_build, "library", lambda source: None)
    conv = conv2d(4, 4, 3, groups=4)
    assert use_cpu_kernels(conv) == 0 and type(conv) is nn.Conv2d


@pytest.mark.parametrize("shape", [(4, 6, 5, 7), (2, 3, 1, 1), (8, 16, 19, 19)])
def test_batch_norm_kernel_matches_mindspore(shape):
    ms.set_context(mode=ms.GRAPH_MODE)
    channels = shape[1]
    rng = np.random.default_rng(shape[2])
    reference, fast = batch_norm(channels), batch_norm(channels)
    for bn in (reference, fast):  # non-trivial scale, shift and running statistics
        bn.gamma.set_data(ms.Tensor(np.linspace(0.5, 2.0, channels, dtype=np.float32)))
        bn.beta.set_data(ms.Tensor(np.linspace(-1.0, 1.0, channels, dtype=np.float32)))
        bn.moving_mean.set_data(ms.Tensor(np.full(channels, 0.3, np.float32)))
        bn.moving_variance.set_data(ms.Tensor(np.full(channels, 2.0, np.float32)))
        bn.set_train(True)
    assert use_cpu_kernels(fast) == 1 and type(fast) is KernelBatchNorm2d
    x = ms.Tensor((rng.standard_normal(shape) * 3 + 5).astype(np.float32))  # |mean| > std
    want_y, want_gx, want_gw = outputs_and_grads(reference, x)
    got_y, got_gx, got_gw = outputs_and_grads(fast, x)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_gx, want_gx, rtol=1e-3, atol=1e-4)
    for got, want in zip(got_gw, want_gw):  # gamma, beta
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    # outputs_and_grads ran three training forwards on each: the moving statistics moved alike.
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(fast, name).asnumpy(), getattr(reference, name).asnumpy(), rtol=1e-5)
    # Evaluation uses the moving statistics, on MindSpore's own op.
    fast.set_train(False)
    reference.set_train(False)
    np.testing.assert_allclose(fast(x).asnumpy(), reference(x).asnumpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gamma", [2.0, 1.5])
def test_focal_loss_kernel_matches_the_ops_version(gamma):
    ms.set_context(mode=ms.GRAPH_MODE)
    from src.kernels.focal_loss import focal_loss_op
    from src.losses import sigmoid_focal_loss

    class Reference(nn.Cell):
        def construct(self, logits, labels):
            return sigmoid_focal_loss(logits, labels, 0.25, gamma).sum()

    class Kernel(nn.Cell):
        def __init__(self):
            super().__init__()
            self.op, self.params = focal_loss_op(0.25, gamma)

        def construct(self, logits, labels):
            return self.op(logits, labels, self.params)[0]

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 50, 7)).astype(np.float32) * 4
    # Saturated and near-zero logits. Not exactly 0: there the ops version's autodiff takes relu's and abs's
    # subgradient 0 and misses softplus's slope 1/2, which the kernel's closed form has.
    logits[0, 0, :] = [-30, -8, 0.5, 8, 30, 1e-3, -1e-3]
    labels = rng.integers(-1, 8, (2, 50)).astype(np.int32)  # ignored, background and every class
    x, y = ms.Tensor(logits), ms.Tensor(labels)
    for cell in (Reference(), Kernel()):
        value, grad = ms.value_and_grad(cell)(x, y)
        if isinstance(cell, Reference):
            want_value, want_grad = value.asnumpy(), grad.asnumpy()
    np.testing.assert_allclose(value.asnumpy(), want_value, rtol=1e-5)
    np.testing.assert_allclose(grad.asnumpy(), want_grad, rtol=1e-4, atol=1e-6)
    assert np.all(grad.asnumpy()[labels < 0] == 0)


@pytest.mark.parametrize("classes", [7, 10, 80])
def test_focal_loss_kernel_is_finite_beyond_exps_range(classes):
    """A confident logit beyond exp's float32 range (|x| > 88.7) gives the ops version's finite loss and gradient,
    not the NaN that 1 / (1 + exp(-x)) gives under -ffast-math once the class loop is vectorised (8 or more
    classes): that NaN, on the confident background logits of a trained SSD-GhostNet, stopped its trainings."""
    ms.set_context(mode=ms.GRAPH_MODE)
    from src.kernels.focal_loss import focal_loss_op
    from src.losses import sigmoid_focal_loss
    op, params = focal_loss_op(0.75, 2.0)

    class Kernel(nn.Cell):
        def construct(self, x, y):
            return op(x, y, params)[0]

    class Reference(nn.Cell):
        def construct(self, x, y):
            return sigmoid_focal_loss(x, y, 0.75, 2.0).sum()

    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 40, classes)).astype(np.float32) * 3
    logits[0, :8, :] = np.array([-200, -120, -89, -88.8, 88.8, 89, 120, 200], np.float32)[:, None]
    labels = ms.Tensor(rng.integers(-1, classes + 1, (2, 40)).astype(np.int32))
    got_value, got_grad = ms.value_and_grad(Kernel())(ms.Tensor(logits), labels)
    want_value, want_grad = ms.value_and_grad(Reference())(ms.Tensor(logits), labels)
    assert np.isfinite(got_value.asnumpy()) and np.isfinite(got_grad.asnumpy()).all()
    np.testing.assert_allclose(got_value.asnumpy(), want_value.asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(got_grad.asnumpy(), want_grad.asnumpy(), rtol=1e-4, atol=1e-6)


def test_detection_loss_switches_its_focal_loss_only():
    from src.losses import DetectionLoss
    loss = DetectionLoss(nn.SequentialCell([conv2d(3, 3, 3, groups=3)]), loss_type="focal")
    assert use_cpu_kernels(loss) == 2 and type(loss.classification) is KernelSigmoidFocalLoss
    softmax = DetectionLoss(nn.SequentialCell([conv2d(3, 3, 3, groups=3)]), loss_type="softmax_hnm")
    assert use_cpu_kernels(softmax) == 1  # the conv: hard-negative mining has no kernel


def test_focal_loss_kernel_passes_non_finite_logits_on():
    # Built with -ffast-math: non-finite logits must still give a NaN loss and NaN gradients, so that training
    # sees the overflow and skips the step as it does with the ops version.
    from src.kernels.focal_loss import focal_loss_op
    op, params = focal_loss_op(0.25, 2.0)
    logits = np.zeros((1, 3, 4), np.float32)
    logits[0, 1, 2] = np.inf
    labels = ms.Tensor(np.array([[1, 0, -1]], np.int32))

    class Kernel(nn.Cell):
        def construct(self, x, y):
            return op(x, y, params)[0]

    value, grad = ms.value_and_grad(Kernel())(ms.Tensor(logits), labels)
    assert np.isnan(value.asnumpy())
    grad = grad.asnumpy()
    assert np.isnan(grad[0, 1]).all() and np.isfinite(grad[0, 0]).all()


@pytest.mark.parametrize("act", ["relu6", "relu", None])
def test_fused_activation_matches_conv_bn_act(act):
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(1)
    reference = ConvBNAct(4, 6, 3, act=act)
    fast = ConvBNAct(4, 6, 3, act=act)
    for mine, theirs in zip(fast.get_parameters(), reference.get_parameters()):
        mine.set_data(theirs.data)
    # A scale of 4 puts outputs both below 0 and above 6, so the clamp and its gradient mask both matter.
    for cell in (reference, fast):
        cell.bn.gamma.set_data(ms.Tensor(np.full(6, 4.0, np.float32)))
        cell.set_train(True)
    use_cpu_kernels(fast)
    assert fast.bn.fused_activation == act and (type(fast.act) is not type(reference.act)) == (act is not None)
    x = ms.Tensor(np.random.default_rng(2).standard_normal((2, 4, 9, 9)).astype(np.float32))
    want_y, want_gx, want_gw = outputs_and_grads(reference, x)
    got_y, got_gx, got_gw = outputs_and_grads(fast, x)
    if act == "relu6":
        assert (want_y == 6).any() and (want_y == 0).any()
    np.testing.assert_allclose(got_y, want_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_gx, want_gx, rtol=1e-3, atol=1e-4)
    for got, want in zip(got_gw, want_gw):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    fast.set_train(False)
    reference.set_train(False)  # evaluation: MindSpore's batch norm, then the activation cell
    np.testing.assert_allclose(fast(x).asnumpy(), reference(x).asnumpy(), rtol=1e-5, atol=1e-5)

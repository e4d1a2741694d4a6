"""recompute: the marked blocks recompute their activations, with the same gradients."""
import os

import mindspore as ms
import mindspore.nn as nn
import numpy as np

from src.config import load_config
from src.models.backbones.resnet import Bottleneck
from src.models.detector import build_detector
from src.kernels.swap import use_cpu_kernels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SquaredSum(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x):
        return (self.net(x) ** 2).sum()


def test_units_of_the_fpn_model_are_its_bottlenecks_and_towers():
    net = build_detector(load_config(os.path.join(REPO, "configs", "ssd_resnet50_fpn_640.yaml")), 80)
    assert net.use_recompute() == 16 + 2  # ResNet-50's 3 + 4 + 6 + 3 blocks, the box and class towers


def _grads_and_statistics(recompute, cpu_kernels):
    ms.set_context(mode=ms.GRAPH_MODE)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 16, 12, 12)).astype(np.float32))
    ms.set_seed(0)
    block = nn.SequentialCell([Bottleneck(16, 8, stride=2), Bottleneck(32, 8)])
    block.set_train(True)
    if cpu_kernels:
        use_cpu_kernels(block)
    if recompute:
        for cell in block:
            cell.recompute()
    grad = ms.grad(SquaredSum(block), grad_position=None, weights=block.trainable_params())(x)
    stats = [p.asnumpy() for p in block.get_parameters() if "moving" in p.name]
    return [g.asnumpy() for g in grad], stats


def test_recomputed_block_gives_the_same_gradients_and_statistics():
    """With the CPU kernels' batch norm the moving statistics move once per step, recomputed or not."""
    plain_grads, plain_stats = _grads_and_statistics(False, cpu_kernels=True)
    grads, stats = _grads_and_statistics(True, cpu_kernels=True)
    for want, got in zip(plain_grads + plain_stats, grads + stats):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_recompute_really_runs_the_forward_again():
    """Equal gradients alone would also pass if recompute were ignored. MindSpore's own batch norm updates its
    moving statistics in the forward pass, so only a forward that runs again in the backward pass moves them twice
    (which is why train.py warns about that combination)."""
    plain_grads, plain_stats = _grads_and_statistics(False, cpu_kernels=False)
    grads, stats = _grads_and_statistics(True, cpu_kernels=False)
    for want, got in zip(plain_grads, grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert any(np.abs(got - want).max() > 1e-3 for want, got in zip(plain_stats, stats))

"""GhostNet and SSD-GhostNet 300: published parameter counts, full-size shapes and anchors, one training step."""
import os

import mindspore as ms
import numpy as np
import pytest

from src.config import CONFIG_DIR, load_config
from src.models.backbones.ghostnet import GhostModule, GhostNet
from src.models.detector import count_parameters

from model_checks import assert_focal_prior_bias, assert_one_step_lowers_loss, build_in_pynative

CONFIG = os.path.join(CONFIG_DIR, "ssd_ghostnet_300.yaml")


@pytest.fixture(scope="module")
def ssd_ghostnet():
    return build_in_pynative(CONFIG)


def test_ghostnet_has_the_published_parameter_count():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    # The authors' PyTorch ghostnet.py (huawei-noah/Efficient-AI-Backbones) counted layer by layer; the paper's
    # 5.2M, and 5.18M in the MindSpore model zoo's research/cv/ghostnet README.
    assert count_parameters(GhostNet(width=1.0, num_classes=1000)) == 5_182_508
    # 1.3x: the paper's 7.3M (7,358,820 here; the paper truncates).
    assert 7_300_000 <= count_parameters(GhostNet(width=1.3, num_classes=1000)) < 7_400_000


def test_ghost_module_trims_odd_widths():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    module = GhostModule(4, 7)
    assert module(ms.Tensor(np.ones((1, 4, 5, 5), np.float32))).shape == (1, 7, 5, 5)


def test_ssd_ghostnet_full_size_shapes(ssd_ghostnet):
    net = ssd_ghostnet
    spec = net.spec
    assert spec.num_anchors == 1917
    assert spec.anchors_per_location == [3, 6, 6, 6, 6, 6]
    assert spec.feature_sizes == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    # The model zoo's extras_in_channels: the 6x expansion of the 144-channel stride-16 block, and 960 * 1.3.
    assert net.backbone.out_channels == [864, 1248]
    assert net.neck.out_channels == [864, 1248, 512, 256, 256, 128]
    net.set_train(False)
    x = ms.Tensor(np.zeros((1, 3, 300, 300), np.float32))
    assert [f.shape for f in net.backbone(x)] == [(1, 864, 19, 19), (1, 1248, 10, 10)]
    loc, cls = net(x)
    assert loc.shape == (1, 1917, 4) and cls.shape == (1, 1917, 80)
    assert_focal_prior_bias(net)
    # The focal-loss prior: every class starts at probability 0.01.
    np.testing.assert_allclose(1 / (1 + np.exp(-cls.asnumpy()[0, :3, :3])), 0.01, rtol=0.2)


def test_one_training_step_at_batch_1_lowers_the_loss_on_the_same_batch(ssd_ghostnet):
    assert_one_step_lowers_loss(ssd_ghostnet, load_config(CONFIG))

"""SSD-ResNet50-FPN 640: ResNet50's published size, full-size shapes and anchors, one training step, edge sizes."""
import os

import mindspore as ms
import numpy as np
import pytest

from src.config import CONFIG_DIR, ConfigError, load_config
from src.models.backbones.resnet import ResNet
from src.models.detector import build_detector, count_parameters

from model_checks import assert_focal_prior_bias, assert_one_step_lowers_loss, build_in_pynative

CONFIG = os.path.join(CONFIG_DIR, "ssd_resnet50_fpn_640.yaml")
RETINA640_SIZES = [(80, 80), (40, 40), (20, 20), (10, 10), (5, 5)]


@pytest.fixture(scope="module")
def full_size():
    return build_in_pynative(CONFIG)


def test_resnet50_has_the_published_parameter_count_and_strides():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = ResNet(num_classes=1000)
    assert count_parameters(net) == 25_557_032  # torchvision resnet50 (He et al., 2016: 25.6M)
    # Every block starts as an identity: its last BN scale is zero (the model zoo's `_bn_last`).
    assert not any(block.conv3.bn.gamma.asnumpy().any() for stage in (net.layer1, net.layer4) for block in stage)
    net.set_train(False)
    x = ms.Tensor(np.zeros((1, 3, 96, 96), np.float32))
    c3, c4, c5 = net(x)
    assert (c3.shape, c4.shape, c5.shape) == ((1, 512, 12, 12), (1, 1024, 6, 6), (1, 2048, 3, 3))
    assert net.classify(x).shape == (1, 1000)


def test_full_size_anchors_levels_and_parameters(full_size):
    spec = full_size.spec
    assert spec.num_anchors == 51150 and spec.anchors_per_location == [6] * 5
    assert spec.feature_sizes == RETINA640_SIZES
    assert full_size.backbone.out_channels == [512, 1024, 2048]
    assert full_size.neck.out_channels == [256] * 5
    # ResNet50 23,508,032 + FPN 3,869,952 + head 5,900,792 (towers 4,739,072, box 55,320, class 1,106,400 at 80).
    # detectron2's RetinaNet R50-FPN has 37,915,572 (frozen BN): P6 from C5 and 9 anchors make the difference.
    assert count_parameters(full_size) == 33_278_776


def test_full_size_forward(full_size):
    full_size.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 640, 640)).astype(np.float32))
    loc, cls = full_size(x)
    assert loc.shape == (1, 51150, 4) and cls.shape == (1, 51150, 80)
    assert np.isfinite(loc.asnumpy()).all() and np.isfinite(cls.asnumpy()).all()
    assert_focal_prior_bias(full_size)
    # The focal-loss prior holds at the start, on every level (the predictor is shared; each level has its BN).
    probs = 1 / (1 + np.exp(-cls.asnumpy()[0]))
    assert 0.003 < probs.mean() < 0.03


def test_one_training_step_at_batch_1_lowers_the_loss_on_the_same_batch():
    # 160x160 keeps the step short (640 is 16x the pixels); the anchors follow the image size:
    # 6 * (20^2 + 10^2 + 5^2 + 3^2 + 2^2) = 3228.
    ms.set_context(mode=ms.PYNATIVE_MODE)
    cfg = load_config(CONFIG, img_shape=[160, 160])
    net = build_detector(cfg, num_classes=80)
    assert net.spec.num_anchors == 3228
    assert_one_step_lowers_loss(net, cfg)


def test_smallest_image_still_has_five_levels():
    # No accepted img_shape breaks the pyramid: at the 32x32 minimum C5 is 1x1 and P6, P7 stay 1x1 (a padded
    # 3x3 stride-2 conv maps 1 to 1), so there is no ConfigError case; the levels just repeat the same cell.
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = build_detector(load_config(CONFIG, img_shape=[32, 48]), num_classes=3)
    assert net.spec.feature_sizes == [(4, 6), (2, 3), (1, 2), (1, 1), (1, 1)]
    net.set_train(False)
    loc, cls = net(ms.Tensor(np.zeros((1, 3, 32, 48), np.float32)))
    assert loc.shape == (1, net.spec.num_anchors, 4) == (1, 6 * (24 + 6 + 2 + 1 + 1), 4)
    assert cls.shape == (1, net.spec.num_anchors, 3)


def test_width_multiplier_is_rejected():
    with pytest.raises(ConfigError, match="ssd_resnet50_fpn has no width multiplier"):
        build_detector(load_config(CONFIG, width_mult=0.5), num_classes=3)

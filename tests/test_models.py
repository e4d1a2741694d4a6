"""Detector assembly: full-size shapes, anchor counts, parameter counts, one training step, clear errors."""
import os

import mindspore as ms
import numpy as np
import pytest

from src.config import CONFIG_DIR, ConfigError, load_config
from src.models.backbones.mobilenet_v2 import MobileNetV2
from src.models.detector import build_detector, count_parameters
from src.models.inference import InferenceNet

from model_checks import assert_focal_prior_bias, assert_one_step_lowers_loss, build_in_pynative

MOBILENET_V2 = os.path.join(CONFIG_DIR, "ssd_mobilenet_v2_300.yaml")


@pytest.fixture(scope="module")
def ssd_mobilenet_v2():
    return build_in_pynative(MOBILENET_V2)


def test_mobilenet_v2_has_the_published_parameter_count():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    assert count_parameters(MobileNetV2(num_classes=1000)) == 3_504_872  # torchvision / the paper's 3.4M


def test_ssd_mobilenet_v2_full_size_shapes(ssd_mobilenet_v2):
    net = ssd_mobilenet_v2
    spec = net.spec
    assert spec.num_anchors == 1917
    assert spec.feature_sizes == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert net.backbone.out_channels == [576, 1280]
    assert net.neck.out_channels == [576, 1280, 512, 256, 256, 128]
    net.set_train(False)
    loc, cls = net(ms.Tensor(np.zeros((1, 3, 300, 300), np.float32)))
    assert loc.shape == (1, 1917, 4) and cls.shape == (1, 1917, 80)
    assert_focal_prior_bias(net)
    # The focal-loss prior: every class starts at probability 0.01.
    np.testing.assert_allclose(1 / (1 + np.exp(-cls.asnumpy()[0, :3, :3])), 0.01, rtol=0.2)


def test_inference_net_decodes_like_the_numpy_coder(ssd_mobilenet_v2):
    from src.box.coder import BoxCoder
    net = ssd_mobilenet_v2
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 300, 300)).astype(np.float32))
    loc, cls = net(x)
    boxes, scores = InferenceNet(net, (0.1, 0.2))(x)
    expected = BoxCoder((0.1, 0.2)).decode(loc.asnumpy(), net.spec.anchors)
    np.testing.assert_allclose(boxes.asnumpy(), expected, atol=1e-5)
    np.testing.assert_allclose(scores.asnumpy(), 1 / (1 + np.exp(-cls.asnumpy())), atol=1e-6)


def test_one_training_step_at_batch_1_lowers_the_loss_on_the_same_batch(ssd_mobilenet_v2):
    assert_one_step_lowers_loss(ssd_mobilenet_v2, load_config(MOBILENET_V2))


def test_softmax_loss_adds_a_background_output():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    cfg = load_config(MOBILENET_V2, loss="softmax_hnm", width_mult=0.25, img_shape=[128, 128], steps=[])
    net = build_detector(cfg, num_classes=3)
    assert net.spec.num_outputs == 4 and net.spec.score_activation == "softmax"
    _, cls = net(ms.Tensor(np.zeros((1, 3, 128, 128), np.float32)))
    assert cls.shape[-1] == 4


def test_anchor_levels_that_disagree_with_the_model_fail_clearly():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    cfg = load_config(MOBILENET_V2, aspect_ratios=[[2], [2, 3], [2, 3]], steps=[])
    with pytest.raises(ValueError, match=r"has 6 feature levels .* anchor settings disagree: .*3 levels"):
        build_detector(cfg, 5)


def test_unknown_model_name_lists_the_registered_ones():
    cfg = load_config(model_name="ssd_nonexistent")
    with pytest.raises(ConfigError, match="unknown model 'ssd_nonexistent'; registered: .*ssd_mobilenet_v2"):
        build_detector(cfg, 5)

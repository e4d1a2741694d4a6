"""EfficientDet-D0: EfficientNet parameter counts, BiFPN fusion and geometry, full-size shapes, one training step."""
import os

import mindspore as ms
import numpy as np
import pytest

from src.config import CONFIG_DIR, load_config
from src.losses import smooth_l1
from src.models.backbones.efficientnet import build_efficientnet
from src.models.detector import build_detector, count_parameters
from src.models.necks.bifpn import BiFPN, FastNormalizedFusion, FusionNode, same_padding

from model_checks import assert_focal_prior_bias, assert_one_step_lowers_loss

CONFIG = os.path.join(CONFIG_DIR, "efficientdet_d0_512.yaml")


def d0_config(**overrides):
    return load_config(CONFIG, **overrides)


@pytest.fixture(scope="module")
def efficientdet_d0():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return build_detector(d0_config(), num_classes=80)


# torchvision's efficientnet_b0/b1/b2 num_params (ImageNet, 1000 classes); B1 and B2 check the scaling table.
@pytest.mark.parametrize("variant, published", [("b0", 5_288_548), ("b1", 7_794_184), ("b2", 9_109_994)])
def test_efficientnet_has_the_published_parameter_count(variant, published):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    assert count_parameters(build_efficientnet(variant, num_classes=1000)) == published


def test_efficientdet_d0_full_size_shapes(efficientdet_d0):
    net = efficientdet_d0
    assert net.spec.num_anchors == 49104
    assert net.spec.anchors_per_location == [9] * 5
    assert net.spec.feature_sizes == [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)]
    assert net.backbone.out_channels == [40, 112, 320] and net.backbone.out_strides == [8, 16, 32]
    assert net.neck.out_channels == [64] * 5
    net.set_train(False)
    loc, cls = net(ms.Tensor(np.zeros((1, 3, 512, 512), np.float32)))
    assert loc.shape == (1, 49104, 4) and cls.shape == (1, 49104, 80)
    assert_focal_prior_bias(net)
    np.testing.assert_allclose(1 / (1 + np.exp(-cls.asnumpy()[0, :9, :3])), 0.01, rtol=0.2)


def test_efficientdet_d0_parameter_counts(efficientdet_d0):
    assert count_parameters(efficientdet_d0) == 3_871_913
    # 90 classes as in the official count: effdet's efficientdet_d0 (no bias before BN) has 3,877,763; the TF
    # original's 3,880,067 adds 2,304 redundant biases (1x1 projections, fusion and head convs, all followed by BN).
    assert count_parameters(build_detector(d0_config(), num_classes=90)) == 3_877_763


def test_fast_normalized_fusion_weights_inputs_by_relu_normalised_weights():
    ones = ms.Tensor(np.ones((1, 2, 3, 3), np.float32))
    out = FastNormalizedFusion()((ones, ones * 2.0), ms.Tensor(np.array([1.0, 3.0], np.float32)))
    np.testing.assert_allclose(out.asnumpy(), (1 * 1 + 3 * 2) / (4 + 1e-4), rtol=1e-6)
    # A negative weight is clipped to zero, so that input drops out.
    out = FastNormalizedFusion()((ones, ones * 2.0), ms.Tensor(np.array([-5.0, 2.0], np.float32)))
    np.testing.assert_allclose(out.asnumpy(), 2 * 2 / (2 + 1e-4), rtol=1e-6)


def test_every_fusion_node_has_its_own_weights_starting_at_one(efficientdet_d0):
    weights = [p for p in efficientdet_d0.trainable_params() if p.name.endswith("fusion_weight")]
    # 3 layers x (4 top-down nodes of 2 inputs + 3 bottom-up nodes of 3 inputs + P7's node of 2 inputs)
    assert len(weights) == 3 * 8 and len({p.name for p in weights}) == len(weights)
    assert sorted(int(p.shape[0]) for p in weights) == [2] * 15 + [3] * 9
    assert FusionNode(3, 8).fusion_weight.asnumpy().tolist() == [1.0, 1.0, 1.0]


def test_bifpn_pools_like_tf_same_at_odd_sizes():
    assert same_padding(64) == (0, 1) and same_padding(5) == (1, 1) and same_padding(1) == (1, 1)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    in_sizes = [(9, 7), (5, 4), (3, 2)]
    neck = BiFPN([8, 12, 16], in_sizes, channels=8, num_layers=1)
    sizes = neck.feature_sizes(in_sizes)
    assert sizes == [(9, 7), (5, 4), (3, 2), (2, 1), (1, 1)]
    rng = np.random.default_rng(0)
    feats = tuple(ms.Tensor(rng.normal(size=(1, c, h, w)).astype(np.float32))
                  for c, (h, w) in zip([8, 12, 16], in_sizes))
    neck.set_train(False)
    assert [tuple(o.shape[2:]) for o in neck(feats)] == sizes
    with pytest.raises(ValueError, match="built for backbone feature sizes"):
        neck.feature_sizes([(10, 10), (5, 5), (3, 3)])


def test_config_box_loss_is_effdets_huber():
    cfg = d0_config()
    assert list(cfg.prior_scaling) == [1.0, 1.0]  # raw deltas, as automl's FasterRcnnBoxCoder without scales
    diff = np.array([-0.5, -0.1, -0.03, 0.0, 0.05, 0.1, 0.7], np.float32)
    delta = 0.1
    huber = np.where(np.abs(diff) <= delta, 0.5 * diff ** 2, delta * (np.abs(diff) - 0.5 * delta))
    ours = cfg.box_loss_weight * smooth_l1(ms.Tensor(diff), ms.Tensor(np.zeros_like(diff)), cfg.box_loss_beta)
    np.testing.assert_allclose(ours.asnumpy(), 50.0 * huber / 4.0, rtol=1e-5, atol=1e-7)


def test_one_training_step_at_batch_1_lowers_the_loss_on_the_same_batch():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    cfg = d0_config(img_shape=[128, 128])  # full size is slow in PyNative; the anchors follow the image size
    assert_one_step_lowers_loss(build_detector(cfg, num_classes=3), cfg)

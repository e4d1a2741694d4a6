"""SSD300-VGG16: published layer table and parameter counts, full-size shapes, the conv4_3 L2 norm, one training
step, and default boxes equal to the model zoo's algorithm."""
import itertools
import math
import os

import mindspore as ms
import numpy as np
import pytest

from src.box.anchors import build_anchor_generator
from src.config import CONFIG_DIR, ConfigError, load_config
from src.models.backbones.vgg16 import L2Norm, ceil_max_pool_2x2, vgg16
from src.models.detector import anchor_spec_from_config, build_detector, count_parameters
from src.models.shapes import downsampled_hw

from model_checks import assert_one_step_lowers_loss, build_in_pynative

CONFIG = os.path.join(CONFIG_DIR, "ssd_vgg16_300.yaml")
SSD300_SIZES = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


@pytest.fixture(scope="module")
def ssd_vgg16():
    return build_in_pynative(CONFIG)


def test_vgg16_classifier_has_the_published_layer_table_and_parameter_count():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = vgg16(num_classes=1000)
    assert count_parameters(net) == 138_357_544  # torchvision vgg16 / the paper's configuration D
    convs = [p.shape for n, p in net.parameters_and_names() if n.startswith("features.") and n.endswith("weight")]
    channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert convs == [(c_out, c_in, 3, 3) for c_in, c_out in zip([3] + channels[:-1], channels)]


def test_ceil_mode_pool_rounds_up_and_matches_a_plain_max_pool():
    x = np.random.default_rng(0).uniform(0, 1, (1, 2, 5, 4)).astype(np.float32)  # post-ReLU: non-negative
    out = ceil_max_pool_2x2()(ms.Tensor(x)).asnumpy()
    assert out.shape == (1, 2, 3, 2)
    expected = np.array([[[x[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max() for j in range(2)] for i in range(3)]
                         for c in range(2)])
    np.testing.assert_array_equal(out[0], expected)


def test_ssd_vgg16_full_size_shapes(ssd_vgg16):
    net = ssd_vgg16
    spec = net.spec
    assert downsampled_hw((300, 300), 8) == (38, 38) and downsampled_hw((300, 300), 16) == (19, 19)
    assert spec.num_anchors == 8732 and spec.anchors_per_location == [4, 6, 6, 6, 4, 4]
    assert spec.feature_sizes == SSD300_SIZES
    assert net.backbone.out_channels == [512, 1024] and net.backbone.out_strides == [8, 16]
    assert net.neck.out_channels == [512, 1024, 512, 256, 256, 256]
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 300, 300)).astype(np.float32))
    features = net.neck(net.backbone(x))
    # The sizes computed from the layer geometry are the sizes the layers make.
    assert [tuple(f.shape[2:]) for f in features] == SSD300_SIZES
    assert [f.shape[1] for f in features] == net.neck.out_channels
    loc, cls = net.head(features)
    assert loc.shape == (1, 8732, 4) and cls.shape == (1, 8732, 81)
    assert np.isfinite(loc.asnumpy()).all() and np.isfinite(cls.asnumpy()).all()


def test_ssd_vgg16_parameter_count_matches_torchvision():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    # torchvision's ssd300_vgg16 has 35,641,826 parameters at 91 outputs (90 COCO ids + background).
    assert count_parameters(build_detector(load_config(CONFIG), num_classes=90)) == 35_641_826


def test_conv4_3_l2_norm_starts_at_scale_20(ssd_vgg16):
    np.testing.assert_array_equal(ssd_vgg16.backbone.conv4_3_norm.scale.asnumpy(), np.full(512, 20.0, np.float32))
    x = np.random.default_rng(1).normal(0, 3, (2, 512, 4, 5)).astype(np.float32)
    out = L2Norm(512)(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(np.sqrt((out ** 2).sum(axis=1)), 20.0, rtol=1e-5)
    # Direction is kept: the output is the input rescaled per position.
    np.testing.assert_allclose(out, 20.0 * x / np.linalg.norm(x, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_l2_norm_gradient_is_finite_where_every_channel_is_zero():
    x = np.random.default_rng(2).uniform(0, 1, (1, 8, 2, 2)).astype(np.float32)
    x[0, :, 0, 0] = 0.0  # a post-ReLU position with no activation
    norm = L2Norm(8)
    grad = ms.grad(lambda t: norm(t).sum())(ms.Tensor(x)).asnumpy()
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(norm(ms.Tensor(x)).asnumpy()[0, :, 0, 0], 0.0)


def test_ssd_vgg16_rejects_a_width_multiplier():
    with pytest.raises(ConfigError, match="width_mult"):
        build_detector(load_config(CONFIG, width_mult=0.5), num_classes=3)


def test_one_training_step_at_batch_1_lowers_the_loss_on_the_same_batch():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    # 257 is the smallest input at which every level exists: fc7 must be at least 17 for conv11_2 to be 1x1.
    cfg = load_config(CONFIG, img_shape=[257, 257])
    net = build_detector(cfg, num_classes=3)
    assert net.spec.feature_sizes == [(33, 33), (17, 17), (9, 9), (5, 5), (3, 3), (1, 1)]
    assert_one_step_lowers_loss(net, cfg)


def model_zoo_default_boxes(img_size, steps, min_scale, max_scale, aspect_ratios, feature_sizes):
    """The model zoo's SSD default-box algorithm (official/cv/SSD, GeneratDefaultBoxes), as loops: [cy, cx, h, w].

    Scales run linearly from min_scale to max_scale over the levels, plus 1.0. Per cell: (s, s), then
    (s*sqrt(r), s/sqrt(r)) and its transpose per ratio, then sqrt(s_k * s_k+1) square; a level 0 without ratios
    is (0.1, 0.1) plus ratio 2 both ways. Centres are (index + 0.5) * step / image, rows outer, columns inner.
    """
    levels = len(aspect_ratios)
    scales = [min_scale + (max_scale - min_scale) / (levels - 1) * k for k in range(levels)] + [1.0]
    boxes = []
    for k, size in enumerate(feature_sizes):
        s = scales[k]
        if k == 0 and not aspect_ratios[k]:
            wh = [(0.1, 0.1), (s * math.sqrt(2), s / math.sqrt(2)), (s / math.sqrt(2), s * math.sqrt(2))]
        else:
            wh = [(s, s)]
            for r in aspect_ratios[k]:
                wh += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
            wh.append((math.sqrt(s * scales[k + 1]),) * 2)
        fk = img_size / steps[k]
        for i, j in itertools.product(range(size), repeat=2):
            for w, h in wh:
                boxes.append(((i + 0.5) / fk, (j + 0.5) / fk, h, w))
    return np.array(boxes)


def test_default_boxes_equal_the_model_zoo_algorithm(ssd_vgg16):
    cfg = load_config(CONFIG)
    expected = model_zoo_default_boxes(300, cfg.steps, cfg.min_scale, cfg.max_scale, cfg.aspect_ratios,
                                       [h for h, _ in SSD300_SIZES])
    assert expected.shape == (8732, 4)
    np.testing.assert_allclose(ssd_vgg16.spec.anchors[:, [1, 0, 3, 2]], expected, rtol=0, atol=1e-6)


def test_model_zoo_ssd_vgg16_config_gives_its_7308_boxes():
    # The model zoo's own ssd_vgg16_config.yaml keeps the MobileNet ratios (3, 6, 6, 6, 6, 6 per cell).
    zoo = dict(min_scale=0.2, max_scale=0.95, aspect_ratios=[[], [2, 3], [2, 3], [2, 3], [2, 3], [2, 3]],
               steps=[8, 16, 32, 64, 100, 300])
    cfg = load_config(CONFIG, **zoo)
    anchors = build_anchor_generator(anchor_spec_from_config(cfg)).generate(SSD300_SIZES, (300, 300))
    expected = model_zoo_default_boxes(300, feature_sizes=[h for h, _ in SSD300_SIZES], **zoo)
    assert expected.shape == (7308, 4)
    np.testing.assert_allclose(anchors[:, [1, 0, 3, 2]], expected, rtol=0, atol=1e-6)

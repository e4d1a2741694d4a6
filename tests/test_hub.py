"""mindspore_hub_conf.create_network: every model config builds, in training and in inference form."""
import mindspore as ms
import numpy as np
import pytest

from mindspore_hub_conf import create_network
from src.config import ConfigError, model_configs
from src.models.detector import Detector
from src.models.inference import InferenceNet

MODELS = ["ssd_ghostnet", "ssd_mobilenet_v2", "ssd_vgg16", "ssd_resnet50_fpn", "efficientdet_d0"]


def test_every_model_of_the_zoo_has_a_config():
    configs = model_configs()
    assert set(MODELS) <= set(configs)
    assert {"ssd_ghostnet_300", "ssd_mobilenet_v2_300", "ssd_vgg16_300", "ssd_resnet50_fpn_640",
            "efficientdet_d0_512"} <= set(configs)


@pytest.mark.parametrize("name", MODELS)
def test_create_network_builds_each_model_for_training(name):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = create_network(name, num_classes=3, is_training=True)
    assert isinstance(net, Detector) and net.spec.model_name == name and net.spec.num_classes == 3


def test_inference_form_returns_boxes_and_scores_with_config_overrides():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = create_network("ssd300", num_classes=4, img_shape=[128, 128], width_mult=0.5, steps=[])
    assert isinstance(net, InferenceNet)
    boxes, scores = net(ms.Tensor(np.zeros((1, 3, 128, 128), np.float32)))
    anchors = net.network.spec.num_anchors
    assert boxes.shape == (1, anchors, 4) and scores.shape == (1, anchors, 4)
    assert float(scores.asnumpy().min()) >= 0.0 and float(scores.asnumpy().max()) <= 1.0


def test_unknown_model_and_bad_arguments_fail_clearly():
    with pytest.raises(ConfigError, match="unknown model 'yolo'.*ssd_vgg16"):
        create_network("yolo")
    with pytest.raises(ConfigError, match="unknown key 'widht_mult'"):
        create_network("ssd300", widht_mult=0.5)
    with pytest.raises(TypeError):
        create_network("ssd300", 80)

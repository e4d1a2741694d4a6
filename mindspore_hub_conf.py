"""MindSpore Hub entry: `create_network(name, **kwargs)` for every model in configs/.

    from mindspore_hub_conf import create_network
    net = create_network("ssd_ghostnet", num_classes=80)                     # inference: boxes + scores
    net = create_network("ssd_resnet50_fpn_640", is_training=True, img_shape=[512, 512])   # the bare detector

`name` is a config file name in configs/ (`ssd_vgg16_300`) or a model name (`ssd_vgg16`); `ssd300` is the model
zoo's name for SSD-MobileNetV2. Keyword arguments other than `num_classes` and `is_training` override config keys.
With `is_training=False` (the default) the network is the exported inference wrapper: normalised x1, y1, x2, y2
boxes [B, A, 4] and per-class scores [B, A, C]; NMS is `src.box.nms.multiclass_nms`, as in eval.
"""
import src  # noqa: F401  (sets the oneDNN ISA before MindSpore loads)
from src.config import ConfigError, load_config, model_configs
from src.models.detector import build_detector
from src.models.inference import InferenceNet

ALIASES = {"ssd300": "ssd_mobilenet_v2_300"}


def create_network(name, *args, num_classes=80, is_training=False, **config_overrides):
    if args:
        raise TypeError("create_network takes the model name and keyword arguments only")
    configs = model_configs()
    name = ALIASES.get(name, name)
    if name not in configs:
        raise ConfigError(f"unknown model '{name}'; available: {', '.join(sorted(configs))}")
    cfg = load_config(configs[name], **config_overrides)
    net = build_detector(cfg, num_classes)
    if is_training:
        return net
    net.set_train(False)
    return InferenceNet(net, cfg.prior_scaling)

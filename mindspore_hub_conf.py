"""MindSpore Hub entry: `create_network(name, **kwargs)` for every model in configs/.

    from mindspore_hub_conf import create_network
    net = create_network("ssd_ghostnet", num_classes=80)                     # inference: boxes + scores
    net = create_network("ssd_resnet50_fpn_640", is_training=True, img_shape=[512, 512])   # the bare detector

`name` is a config file name in configs/ (`ssd_vgg16_300`) or a model name (`ssd_vgg16`); `ssd300` is the model
zoo's name for SSD-MobileNetV2. `checkpoint_path` loads trained weights: the checkpoint's EMA weights when it holds
them, as eval and export use. Other keyword arguments override config keys.
With `is_training=False` (the default) the network is the exported inference wrapper: normalised x1, y1, x2, y2
boxes [B, A, 4] and per-class scores [B, A, C]; NMS is `src.box.nms.multiclass_nms`, as in eval.
"""
import src  # noqa: F401  (sets the oneDNN ISA before MindSpore loads)
from src.config import ConfigError, load_config, model_configs
from src.models.detector import build_detector
from src.models.inference import InferenceNet
from src.training.checkpoint import load_weights, read_checkpoint

ALIASES = {"ssd300": "ssd_mobilenet_v2_300"}


def create_network(name, *args, num_classes=80, is_training=False, checkpoint_path=None, **config_overrides):
    if args:
        raise TypeError("create_network takes the model name and keyword arguments only")
    configs = model_configs()
    name = ALIASES.get(name, name)
    if name not in configs:
        raise ConfigError(f"unknown model '{name}'; available: {', '.join(sorted(configs))}")
    cfg = load_config(configs[name], **config_overrides)
    net = build_detector(cfg, num_classes)
    if checkpoint_path:
        params, _ = read_checkpoint(checkpoint_path)
        load_weights(net, params, checkpoint_path, use_ema=True)
    if is_training:
        return net
    net.set_train(False)
    return InferenceNet(net, cfg.prior_scaling)

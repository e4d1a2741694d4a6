"""A trained detector from a checkpoint, with the class list it was trained on."""
from ..config import ConfigError
from ..models.detector import build_detector
from ..models.inference import InferenceNet
from ..training.checkpoint import CheckpointError, load_weights, read_checkpoint


def checkpoint_classes(cfg, meta, path):
    """Class names: the config's list, else the checkpoint's; a bare count gives placeholder names."""
    names = list(cfg.classes) or list(meta.get("class_names") or [])
    if not names and cfg.num_classes:
        names = [f"class_{i}" for i in range(int(cfg.num_classes))]
    if not names:
        raise CheckpointError(f"{path} records no class names; pass --classes or --num_classes")
    if cfg.num_classes and int(cfg.num_classes) != len(names):
        raise ConfigError(f"num_classes is {cfg.num_classes} but the class list has {len(names)} names")
    return names


def load_detector(cfg, path=None):
    """(detector in inference mode, class names, checkpoint metadata); the weights (the EMA's unless `cfg.ema` is
    false) are loaded strictly, and `meta["weights"]` says which."""
    path = path or cfg.checkpoint_path
    params, meta = read_checkpoint(path)
    trained = meta.get("model_name")
    if trained and trained != cfg.model_name:
        raise CheckpointError(f"{path} holds a {trained} model but the config builds {cfg.model_name}; pass the "
                              f"run's --config_path (configs/ has one per model)")
    names = checkpoint_classes(cfg, meta, path)
    net = build_detector(cfg, len(names))
    meta["weights"] = load_weights(net, params, path, cfg.ema)
    net.set_train(False)
    return net, names, meta


def inference_net(cfg, net):
    infer = InferenceNet(net, cfg.prior_scaling)
    infer.set_train(False)
    return infer


def category_ids(meta, names):
    """COCO category ids of the labels (the checkpoint's, else 1..C)."""
    ids = meta.get("category_ids")
    if ids and len(ids) == len(names):
        return [int(i) for i in ids]
    return list(range(1, len(names) + 1))

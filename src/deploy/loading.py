"""A trained detector from a checkpoint, with the class list it was trained on."""
from ..config import ConfigError
from ..evaluation.postprocess import NMSParams
from ..models.detector import build_detector
from ..models.inference import InferenceNet
from ..training.checkpoint import CheckpointError, load_weights, read_checkpoint


def checkpoint_classes(classes, num_classes, meta, path):
    """Class names: the config's `classes`, else the checkpoint's; a bare `num_classes` gives placeholder names."""
    names = list(classes) or list(meta.get("class_names") or [])
    if not names and num_classes:
        names = [f"class_{i}" for i in range(int(num_classes))]
    if not names:
        raise CheckpointError(f"{path} records no class names; pass --classes or --num_classes")
    if num_classes and int(num_classes) != len(names):
        raise ConfigError(f"num_classes is {num_classes} but the class list has {len(names)} names")
    return names


def detector_from_config(cfg, path=None):
    """The detector that `cfg` builds, with the weights of its checkpoint (the config's reader for inference).

    Returns (detector in inference mode, class names, checkpoint metadata). The weights (the EMA's unless
    `ema_weights` is false) are loaded strictly, and `meta["weights"]` says which."""
    path = path or cfg.checkpoint_path
    params, meta = read_checkpoint(path)
    trained = meta.get("model_name")
    if trained and trained != cfg.model_name:
        raise CheckpointError(f"{path} holds a {trained} model but the config builds {cfg.model_name}; pass the "
                              f"run's --config_path (configs/ has one per model)")
    names = checkpoint_classes(cfg.classes, cfg.num_classes, meta, path)
    net = build_detector(cfg, len(names))
    meta["weights"] = load_weights(net, params, path, cfg.ema_weights)
    net.set_train(False)
    return net, names, meta


def inference_net(net, variances):
    """The inference wrapper (network + box decoding with the coder's `variances`), in inference mode."""
    infer = InferenceNet(net, variances)
    infer.set_train(False)
    return infer


def card_from_config(cfg, class_names, category_ids, num_anchors):
    """The export card of a checkpoint built with `cfg`."""
    from .model_card import make_card
    return make_card(cfg.model_name, cfg.img_shape, cfg.img_mean, cfg.img_std, NMSParams.from_config(cfg),
                     class_names, category_ids, num_anchors, cfg.checkpoint_path)


def category_ids(meta, names):
    """COCO category ids of the labels (the checkpoint's, else 1..C)."""
    ids = meta.get("category_ids")
    if ids and len(ids) == len(names):
        return [int(i) for i in ids]
    return list(range(1, len(names) + 1))

"""Checks that every model's test runs the same way."""
import mindspore as ms
import numpy as np

from src.config import load_config
from src.losses import DetectionLoss
from src.models.detector import build_detector
from src.training.train_step import TrainStep, build_loss_scale, build_optimizer


def build_in_pynative(config_path, num_classes=80):
    """A model as its config builds it; PyNative, since one forward pass does not repay a graph compile."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return build_detector(load_config(config_path), num_classes=num_classes)


def assert_one_step_lowers_loss(net, cfg, num_positives=20, lr=0.01, seed=0):
    """Two SGD steps on one random batch of 1 with the config's loss: no overflow, finite, and the second lower."""
    rng = np.random.default_rng(seed)
    anchors = net.spec.num_anchors
    labels = np.zeros((1, anchors), np.int32)
    labels[0, :num_positives] = rng.integers(1, net.spec.num_classes + 1, num_positives)
    h, w = net.spec.img_shape
    inputs = [ms.Tensor(rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)),
              ms.Tensor(rng.normal(0, 0.5, (1, anchors, 4)).astype(np.float32)), ms.Tensor(labels),
              ms.Tensor(np.array([num_positives], np.int32))]
    step = TrainStep(DetectionLoss.from_config(net, cfg), build_optimizer(net, np.full(4, lr, np.float32), 0.9, 0.0),
                     build_loss_scale("fixed", 1.0), clip_norm=cfg.grad_clip_norm or 10.0)
    step.set_train(True)
    first, overflow, _ = step(*inputs)
    second, _, _ = step(*inputs)
    assert not bool(overflow.asnumpy())
    assert np.isfinite(first.asnumpy()) and float(second.asnumpy()) < float(first.asnumpy())


def save_test_checkpoint(config_path, path, class_names, category_ids=None, seed=0):
    """A checkpoint of an untrained model whose outputs are not degenerate: BN statistics drawn away from 0/1
    (so that export must fold them correctly) and classification biases spread, so that some boxes pass
    `min_score` and NMS has work to do. Written with the metadata train.py records."""
    from src.training.checkpoint import save_checkpoint
    cfg = load_config(config_path)
    ms.set_seed(seed)   # the initial weights, hence the (random) detections and their mAP, are the same every run
    net = build_in_pynative(config_path, num_classes=len(class_names))
    rng = np.random.default_rng(seed)
    for name, param in net.parameters_and_names():
        if name.endswith("moving_variance"):
            param.set_data(ms.Tensor(rng.uniform(0.5, 2.0, param.shape).astype(np.float32)))
        elif name.endswith("moving_mean"):
            param.set_data(ms.Tensor(rng.uniform(-0.3, 0.3, param.shape).astype(np.float32)))
        elif name.startswith("head.") and name.endswith("bias") and "cls" in name:
            param.set_data(ms.Tensor(rng.normal(-2.0, 1.5, param.shape).astype(np.float32)))
    ids = list(category_ids or range(1, len(class_names) + 1))
    save_checkpoint(str(path), net, meta={"model_name": cfg.model_name, "class_names": list(class_names),
                                          "category_ids": ids, "epoch": 0, "global_step": 0})
    return str(path)

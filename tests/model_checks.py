"""Checks that every model's test runs the same way."""
import math

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
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
    first, overflow = step(*inputs)[:2]
    second = step(*inputs)[0]
    assert not bool(overflow.asnumpy())
    assert np.isfinite(first.asnumpy()) and float(second.asnumpy()) < float(first.asnumpy())


DOG = "/usr/share/darknet/data/dog.jpg"


def sample_inputs(cfg, n, offset=0):
    """n normalised network inputs: shifted copies of a real photo where one is installed, else noise images;
    another `offset` gives other inputs."""
    import os

    import cv2

    from src.data.augment import EvalTransform
    rng = np.random.default_rng(offset)
    if os.path.isfile(DOG):
        image = cv2.cvtColor(cv2.imread(DOG), cv2.COLOR_BGR2RGB)
    else:
        image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    transform = EvalTransform(cfg.img_shape, cfg.img_mean, cfg.img_std)
    return np.stack([transform(np.roll(image, 37 * (i + offset), axis=1)) for i in range(n)])


def calibrate_batch_norm(net, images):
    """Set every BN's moving statistics to the batch statistics of `images`, as training would: one forward in
    training mode with the update momentum at 1. A random network otherwise has features of 1e8 (GhostNet), and
    float32 rounding, not the export, would decide whether two runtimes agree."""
    for _, cell in net.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            cell.bn_train = ops.BatchNorm(is_training=True, epsilon=cell.eps, momentum=1.0)
    net.set_train(True)
    net(ms.Tensor(images))
    net.set_train(False)
    # Channels that ReLU leaves at zero on these few images get a variance near 0, and 1/sqrt(var + eps) would
    # amplify rounding 300-fold; a trained network would have learned a small gamma there instead.
    for name, param in net.parameters_and_names():
        if name.endswith("moving_variance"):
            param.set_data(ms.Tensor(np.maximum(param.asnumpy(), 0.01)))


def save_test_checkpoint(config_path, path, class_names, category_ids=None, seed=0, calibration_inputs=None):
    """A checkpoint of an untrained model that behaves like a trained one where export is concerned: BN statistics
    calibrated on real inputs (so that export must fold non-trivial ones, and activations stay in a trained
    network's range) and classification biases spread, so that some boxes pass `min_score` and NMS has work to do.
    Written with the metadata train.py records. `calibration_inputs` (normalised NCHW) replaces the default
    calibration images: a random network is well-conditioned only on inputs like those it was calibrated on."""
    from src.training.checkpoint import save_checkpoint
    cfg = load_config(config_path)
    ms.set_seed(seed)   # the initial weights, hence the (random) detections and their mAP, are the same every run
    net = build_in_pynative(config_path, num_classes=len(class_names))
    calibrate_batch_norm(net, sample_inputs(cfg, 2) if calibration_inputs is None else calibration_inputs)
    rng = np.random.default_rng(seed)
    for name, param in net.parameters_and_names():
        if name.startswith("head.") and name.endswith("bias") and "cls" in name:
            param.set_data(ms.Tensor(rng.normal(-4.0, 1.5, param.shape).astype(np.float32)))
    ids = list(category_ids or range(1, len(class_names) + 1))
    save_checkpoint(str(path), net, meta={"model_name": cfg.model_name, "class_names": list(class_names),
                                          "category_ids": ids, "epoch": 0, "global_step": 0})
    return str(path)


def assert_focal_prior_bias(net, prior_prob=0.01):
    """Every class predictor's bias is exactly the focal-loss prior -log((1 - p) / p), so that every class starts at
    probability p (RetinaNet's initialisation; a common mistake, log(p), starts at about 0.0099 too)."""
    biases = {n: p.asnumpy() for n, p in net.parameters_and_names()
              if n.endswith(".bias") and ("cls_layers" in n or "cls_pred" in n)}
    assert biases
    want = -math.log((1.0 - prior_prob) / prior_prob)
    for name, value in biases.items():
        np.testing.assert_allclose(value, want, rtol=1e-6, err_msg=name)

"""`build_detector(cfg, num_classes)`: backbone -> neck -> head by the config's model name, with its anchors.

The anchors come from one generator, fed with the feature-map sizes that the model itself computes for
`img_shape`; nothing derived is read from YAML. The data pipeline (matching) and the decoder (eval, export) use
`detector.anchors`, so the three can never disagree.
"""
from dataclasses import dataclass

import mindspore.nn as nn
import numpy as np

from ..box.anchors import build_anchor_generator
from ..config import ConfigError
from ..losses import CLASSIFICATION_LOSSES
from . import backbones  # noqa: F401  (registers the backbones)
from . import recipes  # noqa: F401  (registers the models)
from .registry import MODELS
from .shapes import downsampled_hw, step_fits_grid



@dataclass
class DetectorSpec:
    """What the rest of the pipeline needs to know about a built detector."""
    model_name: str
    img_shape: tuple
    num_classes: int
    num_outputs: int          # class channels per anchor: C for sigmoid, C + 1 (background first) for softmax
    score_activation: str     # "sigmoid" or "softmax"
    feature_sizes: list
    anchors_per_location: list
    anchors: np.ndarray       # [A, 4] normalised cx, cy, w, h

    @property
    def num_anchors(self):
        return int(self.anchors.shape[0])


class Detector(nn.Cell):
    """A pure network: image [B, 3, H, W] -> (box deltas [B, A, 4], class logits [B, A, K])."""

    def __init__(self, backbone, neck, head, spec):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.spec = spec

    def use_recompute(self):
        """Recompute each block's activations in the backward pass instead of keeping them (config `recompute`).

        The blocks are the cells whose class sets `recompute_unit = True` (a residual block, a head tower): their
        inputs are kept, everything inside is computed again when the gradients need it. Returns how many.
        """
        units = [cell for _, cell in self.cells_and_names() if getattr(cell, "recompute_unit", False)]
        for cell in units:
            cell.recompute()
        return len(units)

    def construct(self, x):
        features = self.backbone(x)
        if self.neck is not None:
            features = self.neck(features)
        return self.head(features)


def anchor_spec_from_config(cfg):
    """The anchor generator's arguments, from the flat config keys."""
    if cfg.anchor_type == "ssd":
        return {"type": "ssd", "min_scale": cfg.min_scale, "max_scale": cfg.max_scale,
                "aspect_ratios": cfg.aspect_ratios, "steps": list(cfg.steps) or None,
                "scales": list(cfg.anchor_scales) or None}
    if cfg.anchor_type == "grid":
        return {"type": "grid", "anchor_scale": cfg.anchor_scale, "scales": cfg.grid_scales,
                "aspect_ratios": cfg.grid_ratios}
    raise ConfigError(f"anchor_type must be 'ssd' or 'grid', got {cfg.anchor_type!r}")


def check_anchor_steps(model_name, steps, img_shape, feature_sizes, backbone_stride):
    """Explicit SSD anchor `steps` must fit each level's grid at this img_shape (shapes.step_fits_grid).

    Any img_shape gives consistent feature sizes; only steps written for another size (SSD300's 100, 150, 300 at
    --img_shape 512 512) would spread a level's anchors over part of the image without an error anywhere else.
    """
    if not steps:
        return
    img_h, img_w = img_shape
    for k, ((fh, fw), step) in enumerate(zip(feature_sizes, steps)):
        if step_fits_grid(img_h, fh, step) and step_fits_grid(img_w, fw, step):
            continue
        derived = ", ".join(f"{img_h / h:.4g}" if img_h / h == img_w / w else f"{img_h / h:.4g}x{img_w / w:.4g}"
                            for h, w in feature_sizes)
        raise ConfigError(
            f"{model_name} at img_shape {list(img_shape)}: steps[{k}] = {step} does not fit anchor level {k + 1}, "
            f"a {fh}x{fw} grid: its anchors would span {fh * step}x{fw * step} px of the {img_h}x{img_w} input. Pass "
            f"--steps '[]' to derive each step as img_shape / grid size ({derived} here), or steps that fit "
            f"(the backbone's total stride is {backbone_stride})")


def build_detector(cfg, num_classes):
    """Assemble the detector named by `cfg.model_name` for `num_classes` object classes."""
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    if cfg.loss not in CLASSIFICATION_LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(CLASSIFICATION_LOSSES)}, got {cfg.loss!r}")
    img_shape = tuple(int(v) for v in cfg.img_shape)
    if len(img_shape) != 2 or min(img_shape) < 32:
        raise ConfigError(f"img_shape must be [height, width] of at least 32, got {list(cfg.img_shape)}")
    score_activation = CLASSIFICATION_LOSSES[cfg.loss].score_activation
    num_outputs = num_classes + 1 if score_activation == "softmax" else num_classes

    try:
        generator = build_anchor_generator(anchor_spec_from_config(cfg))
        recipe = MODELS.get(cfg.model_name)
    except (KeyError, ValueError) as e:
        raise ConfigError(str(e).strip("'\"")) from None
    backbone, neck, head_factory = recipe(float(cfg.width_mult), img_shape)
    in_sizes = [downsampled_hw(img_shape, s) for s in backbone.out_strides]
    feature_sizes = neck.feature_sizes(in_sizes) if neck is not None else in_sizes
    levels = len(feature_sizes)
    try:
        per_location = generator.num_anchors_per_location(levels)
    except ValueError as e:
        raise ConfigError(f"{cfg.model_name} at img_shape {list(img_shape)} has {levels} feature levels "
                         f"{feature_sizes}, but the anchor settings disagree: {e}") from None
    if any(h < 1 or w < 1 for h, w in feature_sizes):
        raise ConfigError(f"{cfg.model_name}: img_shape {list(img_shape)} is too small, feature sizes "
                         f"{feature_sizes}")
    if cfg.anchor_type == "ssd":
        check_anchor_steps(cfg.model_name, list(cfg.steps), img_shape, feature_sizes, max(backbone.out_strides))
    anchors = generator.generate(feature_sizes, img_shape)
    expected = sum(h * w * k for (h, w), k in zip(feature_sizes, per_location))
    if anchors.shape[0] != expected:
        raise ConfigError(f"{cfg.model_name}: anchor generator made {anchors.shape[0]} boxes, the head predicts "
                         f"{expected}")
    prior = float(cfg.prior_prob) if score_activation == "sigmoid" and cfg.prior_prob > 0 else None
    head = head_factory(per_location, num_outputs, prior)
    spec = DetectorSpec(cfg.model_name, img_shape, num_classes, num_outputs, score_activation, feature_sizes,
                        per_location, anchors.astype(np.float32))
    return Detector(backbone, neck, head, spec)


def count_parameters(net):
    return int(sum(np.prod(p.shape) for p in net.trainable_params()))

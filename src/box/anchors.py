"""Anchor (default box) generators.

Every generator returns normalised `cx, cy, w, h` float32 anchors of shape [A, 4], ordered by level, then
feature-map row, then column, then box, which is the order in which the detection heads flatten their outputs.
Both classes answer `num_anchors_per_location(num_levels=None) -> list[int]` and
`generate(feature_sizes, img_size) -> [A, 4]`.
"""
import inspect
import math

import numpy as np


def _pair(value, what):
    """An int or an (h, w) pair -> (float h, float w)."""
    if np.isscalar(value):
        return float(value), float(value)
    if len(value) != 2:
        raise ValueError(f"{what} must be a number or an (h, w) pair, got {value!r}")
    return float(value[0]), float(value[1])


def _grid_anchors(feature_hw, step_hw, img_hw, centre_offset, box_wh):
    """Anchors of one level: centres (index + offset) * step / image size, each centre carrying every box in `box_wh`.

    box_wh is [B, 2] normalised (w, h). Returns float64 [fh * fw * B, 4] in row, column, box order.
    """
    fh, fw = int(feature_hw[0]), int(feature_hw[1])
    cy = (np.arange(fh, dtype=np.float64) + centre_offset) * step_hw[0] / img_hw[0]
    cx = (np.arange(fw, dtype=np.float64) + centre_offset) * step_hw[1] / img_hw[1]
    num_boxes = len(box_wh)
    out = np.empty((fh, fw, num_boxes, 4), dtype=np.float64)
    out[..., 0] = cx[None, :, None]
    out[..., 1] = cy[:, None, None]
    out[..., 2] = box_wh[None, None, :, 0]
    out[..., 3] = box_wh[None, None, :, 1]
    return out.reshape(-1, 4)


def _level_steps(feature_sizes, img_hw, steps, what):
    """(feature (h, w), step (h, w)) per level; without explicit steps the step is image size / feature size."""
    out = []
    for k, size in enumerate(feature_sizes):
        feature_hw = _pair(size, "feature size")
        if steps is None:
            step_hw = (img_hw[0] / feature_hw[0], img_hw[1] / feature_hw[1])
        else:
            step_hw = _pair(steps[k], what)
        out.append((feature_hw, step_hw))
    return out


def _check_level_count(name, expected, feature_sizes):
    if len(feature_sizes) != expected:
        raise ValueError(f"{name} is configured for {expected} levels but got {len(feature_sizes)} feature sizes")


class SSDAnchorGenerator:
    """SSD default boxes, identical to the MindSpore model zoo's (official/cv/SSD) generator.

    Level k has scale s = scales[k]; its boxes are (s, s), then (s*sqrt(r), s/sqrt(r)) and (s/sqrt(r), s*sqrt(r))
    for each ratio r, then (s', s') with s' = sqrt(scales[k] * scales[k + 1]). Sizes are relative to the image side,
    as in the model zoo, and the boxes are not clipped. `scales` (levels + 1 values) defaults to the model zoo's
    linear spacing from min_scale to max_scale, plus 1.0. `steps` are per-level strides in pixels (a number or an
    (h, w) pair); without them the stride is image size / feature size.
    """

    def __init__(self, min_scale=0.2, max_scale=0.95,
                 aspect_ratios=((), (2, 3), (2, 3), (2, 3), (2, 3), (2, 3)), steps=None, scales=None):
        self.aspect_ratios = [tuple(float(r) for r in level) for level in aspect_ratios]
        num_levels = len(self.aspect_ratios)
        if num_levels == 0:
            raise ValueError("aspect_ratios must list one (possibly empty) ratio list per level")
        if any(r <= 0 for level in self.aspect_ratios for r in level):
            raise ValueError(f"aspect ratios must be positive, got {aspect_ratios!r}")
        if scales is None:
            # The model zoo's linear spacing; with one level there is nothing to interpolate.
            spacing = (max_scale - min_scale) / (num_levels - 1) if num_levels > 1 else 0.0
            scales = [min_scale + spacing * k for k in range(num_levels)] + [1.0]
        self.scales = [float(s) for s in scales]
        if len(self.scales) != num_levels + 1:
            raise ValueError(f"scales needs {num_levels + 1} values (levels + 1), got {len(self.scales)}")
        if steps is not None and len(steps) != num_levels:
            raise ValueError(f"steps has {len(steps)} values but aspect_ratios has {num_levels} levels")
        self.steps = None if steps is None else list(steps)

    @property
    def num_levels(self):
        return len(self.aspect_ratios)

    def num_anchors_per_location(self, num_levels=None):
        """Boxes per feature-map cell, one count per level."""
        if num_levels is not None and num_levels != self.num_levels:
            raise ValueError(f"SSDAnchorGenerator has {self.num_levels} levels (aspect_ratios), not {num_levels}")
        return [len(self._box_sizes(k)) for k in range(self.num_levels)]

    def _box_sizes(self, level):
        """Normalised (w, h) of every box at one cell of `level`, float64 [B, 2]."""
        s = self.scales[level]
        ratios = self.aspect_ratios[level]
        if level == 0 and not ratios:
            # Model zoo special case (ssd300 MobileNetV2 configs): a small 0.1 box plus s at ratios 2 and 1/2.
            root2 = math.sqrt(2.0)
            return np.array([(0.1, 0.1), (s * root2, s / root2), (s / root2, s * root2)])
        sizes = [(s, s)]
        for r in ratios:
            root = math.sqrt(r)
            sizes += [(s * root, s / root), (s / root, s * root)]
        s_between = math.sqrt(s * self.scales[level + 1])
        sizes.append((s_between, s_between))
        return np.array(sizes)

    def generate(self, feature_sizes, img_size):
        """Default boxes for feature maps of `feature_sizes` [(h, w), ...] on an image of `img_size` (h, w)."""
        _check_level_count("SSDAnchorGenerator", self.num_levels, feature_sizes)
        img_hw = _pair(img_size, "img_size")
        levels = [_grid_anchors(feature_hw, step_hw, img_hw, 0.5, self._box_sizes(k))
                  for k, (feature_hw, step_hw) in enumerate(_level_steps(feature_sizes, img_hw, self.steps, "step"))]
        return np.concatenate(levels).astype(np.float32)


class GridAnchorGenerator:
    """RetinaNet / EfficientDet anchors: `len(aspect_ratios) * len(scales)` boxes per cell at every level.

    At stride t the base size is anchor_scale * t; ratio r and scale s give h = base * s / sqrt(r) and
    w = base * s * sqrt(r) in pixels. Boxes at a cell run ratio-major, scale-minor, as in the model zoo.
    `strides` are per-level strides in pixels (a number or an (h, w) pair); without them the stride is
    image size / feature size, and any number of levels is accepted.
    """

    def __init__(self, anchor_scale=4.0, scales=(1.0, 2 ** 0.5), aspect_ratios=(1.0, 2.0, 0.5), strides=None):
        self.anchor_scale = float(anchor_scale)
        self.scales = [float(s) for s in scales]
        self.aspect_ratios = [float(r) for r in aspect_ratios]
        if not self.scales or not self.aspect_ratios:
            raise ValueError("GridAnchorGenerator needs at least one scale and one aspect ratio")
        if any(v <= 0 for v in self.scales + self.aspect_ratios + [self.anchor_scale]):
            raise ValueError("anchor_scale, scales and aspect_ratios must be positive")
        self.strides = None if strides is None else list(strides)

    @property
    def num_levels(self):
        """Number of levels fixed by `strides`, or None when any number of levels is accepted."""
        return None if self.strides is None else len(self.strides)

    def num_anchors_per_location(self, num_levels=None):
        """Boxes per feature-map cell, one count per level."""
        if num_levels is None:
            if self.strides is None:
                raise ValueError("GridAnchorGenerator without strides needs num_levels")
            num_levels = len(self.strides)
        elif self.strides is not None and num_levels != len(self.strides):
            raise ValueError(f"GridAnchorGenerator has {len(self.strides)} strides, not {num_levels} levels")
        return [len(self.aspect_ratios) * len(self.scales)] * num_levels

    def _relative_sizes(self):
        """(w, h) of each box in units of the base size, ratio-major then scale, [B, 2]."""
        ratio, scale = np.meshgrid(self.aspect_ratios, self.scales, indexing="ij")
        root = np.sqrt(ratio.ravel())
        return np.stack([scale.ravel() * root, scale.ravel() / root], axis=1)

    def generate(self, feature_sizes, img_size):
        """Anchors for feature maps of `feature_sizes` [(h, w), ...] on an image of `img_size` (h, w)."""
        if self.strides is not None:
            _check_level_count("GridAnchorGenerator", len(self.strides), feature_sizes)
        img_hw = _pair(img_size, "img_size")
        relative = self._relative_sizes()
        levels = []
        for feature_hw, step_hw in _level_steps(feature_sizes, img_hw, self.strides, "stride"):
            # Pixel sizes from the stride, then normalised by the image side of the same axis.
            box_wh = relative * self.anchor_scale * np.array([step_hw[1] / img_hw[1], step_hw[0] / img_hw[0]])
            levels.append(_grid_anchors(feature_hw, step_hw, img_hw, 0.5, box_wh))
        return np.concatenate(levels).astype(np.float32)


ANCHOR_GENERATORS = {"ssd": SSDAnchorGenerator, "grid": GridAnchorGenerator}


def build_anchor_generator(spec):
    """Generator from a dict: `type` is a key of ANCHOR_GENERATORS, the other keys are constructor arguments."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in ANCHOR_GENERATORS:
        raise ValueError(f"unknown anchor generator type {kind!r}; known: {sorted(ANCHOR_GENERATORS)}")
    cls = ANCHOR_GENERATORS[kind]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(spec) - accepted)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} for anchor generator {kind!r}; accepted: {sorted(accepted)}")
    return cls(**spec)

"""The step-by-step SSD expand and crop, kept as the reference that the fused TrainTransform is tested against.

:func:`random_expand` builds the whole zoomed-out canvas and :func:`random_crop` cuts the crop out of it; with the same
generator state they draw the same random numbers as ``src.data.augment.sample_expand_crop`` and give the same window
and boxes. Slow (the canvas can be ``max_ratio**2`` times the image): for tests only.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from src.data.augment import (MIN_IOU_CHOICES, Window, _as_boxes, _as_image, _as_labels, _fill_pixel, _new_filled,
                              crop_boxes, sample_crop, sample_expand, sample_expand_crop)


def extract_window(img: np.ndarray, window: Window, fill) -> np.ndarray:
    """The pixels of ``window`` (image coordinates, may reach outside) as a new array; ``fill`` outside the image.

    Allocates only the window (a window inside the image is a copy of a slice)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = window
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return img[y0:y1, x0:x1].copy()
    out = _new_filled(y1 - y0, x1 - x0, _fill_pixel(fill))
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = img[iy0:iy1, ix0:ix1]
    return out


def random_expand(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, fill, max_ratio: float = 4.0,
                  prob: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """SSD zoom-out, literally: builds the whole canvas (up to ``max_ratio**2`` times the pixels). Reference only;
    training uses the fused :class:`TrainTransform`."""
    boxes = _as_boxes(boxes)
    h, w = img.shape[:2]
    canvas_h, canvas_w, left, top = sample_expand(h, w, rng, prob, max_ratio)
    if (canvas_h, canvas_w) == (h, w):
        return img, boxes
    canvas = extract_window(img, (-left, -top, canvas_w - left, canvas_h - top), fill)
    return canvas, boxes + np.array([left, top, left, top], dtype=np.float32)


def random_crop(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                min_ious: Sequence[Optional[float]] = MIN_IOU_CHOICES, max_trials: int = 50,
                prob: float = 1.0, min_scale: float = 0.3) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SSD min-IoU random crop (see :func:`sample_crop`); boxes whose centre is in the crop are kept and clipped."""
    boxes = _as_boxes(boxes)
    labels = _as_labels(labels, boxes.shape[0])
    h, w = img.shape[:2]
    win = sample_crop(h, w, boxes, rng, min_ious, max_trials, min_scale, prob=prob)
    if win is None:
        return img, boxes, labels
    boxes, labels = crop_boxes(boxes, labels, win)
    x0, y0, x1, y1 = win
    return img[y0:y1, x0:x1].copy(), boxes, labels


def random_expand_crop(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator, fill,
                       expand_prob: float = 0.5, max_expand: float = 4.0, crop_prob: float = 1.0,
                       min_ious: Sequence[Optional[float]] = MIN_IOU_CHOICES,
                       crop_min_scale: float = 0.3) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand then crop as one operation: builds only the chosen window. Same result as :func:`random_expand`
    followed by :func:`random_crop` with the same generator state (the window itself can still be large when no crop
    is taken; :class:`TrainTransform` renders it at the output size instead)."""
    img = _as_image(img)
    h, w = img.shape[:2]
    window, boxes, labels = sample_expand_crop(h, w, boxes, labels, rng, expand_prob, max_expand, crop_prob, min_ious,
                                               crop_min_scale)
    return extract_window(img, window, fill), boxes, labels

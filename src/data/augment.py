"""SSD training augmentations and the evaluation transform, in numpy and OpenCV.

Conventions
-----------
* images: HWC ``uint8`` numpy arrays, RGB, or BGR as OpenCV decodes them where a ``bgr`` flag says so (training
  feeds BGR: the output is the same, without a full-size colour conversion); the network input is always RGB;
* boxes: pixel ``x1, y1, x2, y2`` ``float32`` ``[N, 4]`` in continuous coordinates (the image spans ``[0, W] x [0, H]``,
  pixel ``(i, j)`` covers ``[j, j + 1] x [i, i + 1]``); labels: ``int32`` ``[N]``; ``N`` may be 0;
* randomness only through a ``np.random.Generator`` passed in;
* ``mean`` / ``std`` are in pixel units (0..255), per RGB channel. The mean pixel also fills the zoomed-out canvas.

The training pipeline (:class:`TrainTransform`) is::

    expand (zoom out) + SSD min-IoU crop  ->  resize  ->  photometric distortion  ->  horizontal flip  ->  normalise

Expand and crop are sampled on numbers only (:func:`sample_expand_crop`): the crop window is chosen in the *virtual*
expanded canvas, and only the pixels that end up in the output are ever built (:func:`resize_window` renders the window
straight at the output size). The big canvas (up to ``max_expand**2`` times the image) is never allocated.
The literal, slow expand-then-crop (which builds the whole canvas) is kept in ``tests/augment_reference.py`` as the
reference: with the same generator state it draws the same random numbers and gives the same window and boxes as the
fused path.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    "INTERPOLATION",
    "MIN_IOU_CHOICES",
    "photometric_distort",
    "sample_expand",
    "sample_crop",
    "crop_boxes",
    "sample_expand_crop",
    "resize_window",
    "random_hflip",
    "resize",
    "normalize_to_chw",
    "TrainTransform",
    "EvalTransform",
]

#: The one interpolation used to resize images to the network input: training, evaluation, prediction, export and the
#: C++ inference (``cv::INTER_LINEAR``) must all agree on it.
INTERPOLATION = cv2.INTER_LINEAR

#: SSD's crop modes: ``None`` keeps the whole image, a number is the IoU that at least one box must reach with the crop.
MIN_IOU_CHOICES: Tuple[Optional[float], ...] = (None, 0.1, 0.3, 0.5, 0.7, 0.9)

Window = Tuple[int, int, int, int]  # x0, y0, x1, y1 (integers, x1/y1 exclusive)


# ----------------------------------------------------------------------------------------------------------- helpers
def _as_boxes(boxes) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def _as_labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int32).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"got {n} boxes but {labels.shape[0]} labels")
    return labels


def _as_image(img) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HWC 3-channel image, got shape {img.shape}")
    if img.strides[2] != 1 or img.strides[1] != 3 or img.strides[0] < 0:  # e.g. img[:, ::-1]: OpenCV needs rows
        img = np.ascontiguousarray(img)
    return img


def _fill_pixel(fill) -> np.ndarray:
    """The fill colour as 3 uint8 values (a scalar is repeated)."""
    fill = np.broadcast_to(np.asarray(fill, dtype=np.float64).reshape(-1), (3,))
    return np.clip(np.rint(fill), 0, 255).astype(np.uint8)


def _new_filled(h: int, w: int, pixel: np.ndarray) -> np.ndarray:
    """A new ``h x w x 3`` uint8 image of one colour (row by row: much faster than broadcasting a pixel)."""
    out = np.empty((h, w, 3), dtype=np.uint8)
    if h and w:
        out[0] = pixel
        out[1:] = out[0]
    return out


def _iou_with_windows(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """IoU of ``boxes`` [N, 4] with ``windows`` [T, 4], as [T, N]."""
    ix = np.minimum(windows[:, None, 2], boxes[None, :, 2]) - np.maximum(windows[:, None, 0], boxes[None, :, 0])
    iy = np.minimum(windows[:, None, 3], boxes[None, :, 3]) - np.maximum(windows[:, None, 1], boxes[None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area_b = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    area_w = (windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1])
    union = area_w[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, 1e-12)


# ------------------------------------------------------------------------------------------------------ photometric
def _scale_shift(img: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``saturate(alpha * img + beta)`` for uint8 (``convertScaleAbs`` is exact when the result cannot go negative)."""
    if beta >= 0.0:
        return cv2.convertScaleAbs(img, alpha=alpha, beta=beta)
    return cv2.addWeighted(img, alpha, img, 0.0, beta)


def photometric_distort(img: np.ndarray, rng: np.random.Generator, brightness_delta: float = 32.0,
                        contrast_range: Tuple[float, float] = (0.5, 1.5),
                        saturation_range: Tuple[float, float] = (0.5, 1.5), hue_delta: float = 18.0,
                        prob: float = 0.5, bgr: bool = False) -> np.ndarray:
    """SSD's photometric distortion of a uint8 image; returns uint8 (``img`` itself when nothing was drawn).

    Each of brightness (add ``U(-brightness_delta, brightness_delta)``), contrast (multiply by ``U(contrast_range)``),
    saturation (multiply S by ``U(saturation_range)``) and hue (rotate H by ``U(-hue_delta, hue_delta)`` degrees) is
    applied with probability ``prob``; brightness comes first, and contrast goes before or after the HSV ones (even
    odds). Brightness and an adjacent contrast are one saturating affine op (``alpha * (x + delta)``, as SSD's float
    pipeline, clipped once); saturation and hue act on the planes of OpenCV's 8-bit HSV (hue in 2-degree steps), and
    the HSV round trip only happens when one of them is drawn. ``bgr``: the image's channels are in BGR order.
    """
    img = _as_image(img)
    delta = rng.uniform(-brightness_delta, brightness_delta) if rng.random() < prob else 0.0
    contrast_first = rng.random() < 0.5
    alpha = rng.uniform(*contrast_range) if rng.random() < prob else None
    saturation = rng.uniform(*saturation_range) if rng.random() < prob else None
    hue = rng.uniform(-hue_delta, hue_delta) if rng.random() < prob else None
    use_hsv = saturation is not None or hue is not None

    pre = 1.0
    if alpha is not None and (contrast_first or not use_hsv):
        pre, alpha = alpha, None
    out = img
    if delta != 0.0 or pre != 1.0:
        out = _scale_shift(out, pre, pre * delta)
    if use_hsv:
        # OpenCV's 8-bit HSV: H in 0..179 (2-degree steps), S and V in 0..255; the 180-range conversions are the
        # fast ones
        h, s, v = cv2.split(cv2.cvtColor(out, cv2.COLOR_BGR2HSV if bgr else cv2.COLOR_RGB2HSV))
        if hue is not None:
            h = cv2.LUT(h, ((np.arange(256) + int(round(hue / 2.0))) % 180).astype(np.uint8))
        if saturation is not None:
            s = cv2.convertScaleAbs(s, alpha=saturation)
        out = cv2.cvtColor(cv2.merge((h, s, v)), cv2.COLOR_HSV2BGR if bgr else cv2.COLOR_HSV2RGB)
    if alpha is not None:
        out = cv2.convertScaleAbs(out, alpha=alpha)
    return out


# ------------------------------------------------------------------------------------- geometry, sampled on numbers
def sample_expand(h: int, w: int, rng: np.random.Generator, prob: float = 0.5,
                  max_ratio: float = 4.0) -> Tuple[int, int, int, int]:
    """Draw SSD's zoom-out: returns ``(canvas_h, canvas_w, left, top)``, the image's place in the canvas.

    With probability ``prob`` the canvas is ``int(side * r)`` for ``r ~ U(1, max_ratio)`` and the image sits at a
    uniform integer offset; otherwise the canvas is the image itself (``(h, w, 0, 0)``).
    """
    if prob <= 0.0 or max_ratio <= 1.0 or rng.random() >= prob:
        return h, w, 0, 0
    ratio = rng.uniform(1.0, max_ratio)
    canvas_h, canvas_w = int(h * ratio), int(w * ratio)
    left = int(rng.uniform(0.0, canvas_w - w))
    top = int(rng.uniform(0.0, canvas_h - h))
    return canvas_h, canvas_w, left, top


def sample_crop(h: int, w: int, boxes: np.ndarray, rng: np.random.Generator,
                min_ious: Sequence[Optional[float]] = MIN_IOU_CHOICES, max_trials: int = 50,
                min_scale: float = 0.3, aspect_range: Tuple[float, float] = (0.5, 2.0),
                prob: float = 1.0) -> Optional[Window]:
    """Draw SSD's random crop of an ``h x w`` image; returns an integer window ``(x0, y0, x1, y1)`` or ``None``.

    With probability ``prob`` a mode is drawn from ``min_ious``; ``None`` keeps the image. Otherwise up to
    ``max_trials`` windows are drawn with sides ``U(min_scale, 1)`` of the image's, an aspect ratio (h/w, in pixels)
    inside ``aspect_range`` and a uniform position; the first one is taken where at least one box reaches IoU >= the
    mode (as in the original Caffe SSD sampler) and at least one box centre lies strictly inside (so that a box
    survives). An image without boxes takes the first window of valid shape. ``None`` when no trial succeeds. All
    trials are drawn at once (vectorised).
    """
    if prob <= 0.0 or not min_ious or (prob < 1.0 and rng.random() >= prob):
        return None
    min_iou = min_ious[int(rng.integers(len(min_ious)))]
    if min_iou is None:
        return None
    boxes = _as_boxes(boxes)
    r = rng.random((max_trials, 4))
    cw = (min_scale + (1.0 - min_scale) * r[:, 0]) * w
    ch = (min_scale + (1.0 - min_scale) * r[:, 1]) * h
    left = r[:, 2] * (w - cw)
    top = r[:, 3] * (h - ch)
    windows = np.floor(np.stack([left, top, left + cw, top + ch], axis=1))
    aspect = ch / cw
    ok = (aspect >= aspect_range[0]) & (aspect <= aspect_range[1])
    ok &= (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
    if boxes.shape[0]:
        b = boxes.astype(np.float64)
        ok &= _iou_with_windows(b, windows).max(axis=1) >= min_iou
        cx = (b[:, 0] + b[:, 2]) * 0.5
        cy = (b[:, 1] + b[:, 3]) * 0.5
        inside = ((cx[None] > windows[:, 0:1]) & (cx[None] < windows[:, 2:3])
                  & (cy[None] > windows[:, 1:2]) & (cy[None] < windows[:, 3:4]))
        ok &= inside.any(axis=1)
    hits = np.flatnonzero(ok)
    if hits.size == 0:
        return None
    x0, y0, x1, y1 = windows[hits[0]]
    return int(x0), int(y0), int(x1), int(y1)


def crop_boxes(boxes: np.ndarray, labels: np.ndarray, window: Window) -> Tuple[np.ndarray, np.ndarray]:
    """Keep the boxes whose centre lies strictly inside ``window``, clip them to it, shift to its origin."""
    boxes = _as_boxes(boxes)
    labels = _as_labels(labels, boxes.shape[0])
    x0, y0, x1, y1 = window
    cx = (boxes[:, 0] + boxes[:, 2]) * 0.5
    cy = (boxes[:, 1] + boxes[:, 3]) * 0.5
    keep = (cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)
    out = boxes[keep]
    lo = np.array([x0, y0, x0, y0], dtype=np.float32)
    hi = np.array([x1, y1, x1, y1], dtype=np.float32)
    out = np.clip(out, lo, hi) - lo
    return out.astype(np.float32), labels[keep]


def sample_expand_crop(h: int, w: int, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                       expand_prob: float = 0.5, max_expand: float = 4.0, crop_prob: float = 1.0,
                       min_ious: Sequence[Optional[float]] = MIN_IOU_CHOICES, crop_min_scale: float = 0.3,
                       max_trials: int = 50) -> Tuple[Window, np.ndarray, np.ndarray]:
    """Expand then crop, on numbers only.

    Returns ``(window, boxes, labels)``: ``window`` is ``(x0, y0, x1, y1)`` in the coordinates of the *original* image
    (it may reach outside it, where the mean pixel fills), and ``boxes`` are in the window's coordinates. Draws the
    same random numbers as the step-by-step expand followed by crop (``tests/augment_reference.py``).
    """
    boxes = _as_boxes(boxes)
    labels = _as_labels(labels, boxes.shape[0])
    canvas_h, canvas_w, left, top = sample_expand(h, w, rng, expand_prob, max_expand)
    shift = np.array([left, top, left, top], dtype=np.float32)
    boxes = boxes + shift
    win = sample_crop(canvas_h, canvas_w, boxes, rng, min_ious, max_trials, crop_min_scale, prob=crop_prob)
    if win is None:
        win = (0, 0, canvas_w, canvas_h)
    else:
        boxes, labels = crop_boxes(boxes, labels, win)
    x0, y0, x1, y1 = win
    return (x0 - left, y0 - top, x1 - left, y1 - top), boxes, labels


# ------------------------------------------------------------------------------------------------- building pixels
def resize_window(img: np.ndarray, window: Window, out_hw: Tuple[int, int], fill) -> Tuple[np.ndarray, np.ndarray]:
    """Render ``window`` of ``img`` (``fill`` where it reaches outside the image) straight at size ``out_hw``.

    Returns ``(out, affine)`` where ``affine = [ax, ay, bx, by]`` maps window coordinates to output coordinates
    (``x_out = ax * x + bx``, ``y_out = ay * y + by``): move the boxes with it.

    A window inside the image is one ``cv2.resize`` of a slice (bit-identical to resizing the crop). For a window that
    reaches into the fill, the part of the image inside it is resized with one ``cv2.resize`` into the output
    rectangle it covers, rounded to whole output pixels, and the rest is the fill colour; ``affine`` is the mapping of
    that image part, so boxes and pixels agree exactly. Against resizing the big window array this moves the image by
    under half an output pixel and leaves the image/fill edge unblended; nothing larger than the output is allocated.
    """
    h, w = img.shape[:2]
    x0, y0, x1, y1 = window
    out_h, out_w = int(out_hw[0]), int(out_hw[1])
    ax, ay = out_w / (x1 - x0), out_h / (y1 - y0)
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        out = cv2.resize(img[y0:y1, x0:x1], (out_w, out_h), interpolation=INTERPOLATION)
        return out, np.array([ax, ay, 0.0, 0.0])
    out = _new_filled(out_h, out_w, _fill_pixel(fill))
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)  # the image inside the window
    c0, c1 = (min(max(int(round((v - x0) * ax)), 0), out_w) for v in (ix0, ix1))  # ... and its output rectangle
    r0, r1 = (min(max(int(round((v - y0) * ay)), 0), out_h) for v in (iy0, iy1))
    if c1 <= c0 or r1 <= r0 or ix1 <= ix0 or iy1 <= iy0:
        return out, np.array([ax, ay, 0.0, 0.0])  # the image is (almost) out of view: nominal mapping
    cv2.resize(img[iy0:iy1, ix0:ix1], (c1 - c0, r1 - r0), dst=out[r0:r1, c0:c1], interpolation=INTERPOLATION)
    kx, ky = (c1 - c0) / (ix1 - ix0), (r1 - r0) / (iy1 - iy0)
    return out, np.array([kx, ky, c0 + (x0 - ix0) * kx, r0 + (y0 - iy0) * ky])


def random_hflip(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                 prob: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """Mirror left-right with probability ``prob``: ``x1' = W - x2``, ``x2' = W - x1``."""
    boxes = _as_boxes(boxes)
    if rng.random() >= prob:
        return img, boxes
    w = img.shape[1]
    flipped = np.empty_like(boxes)
    flipped[:, 0] = w - boxes[:, 2]
    flipped[:, 2] = w - boxes[:, 0]
    flipped[:, 1] = boxes[:, 1]
    flipped[:, 3] = boxes[:, 3]
    return cv2.flip(img, 1), flipped


def resize(img: np.ndarray, boxes: Optional[np.ndarray], out_hw: Tuple[int, int]):
    """Resize to ``out_hw = (H, W)`` with :data:`INTERPOLATION`; boxes (or ``None``) are scaled alike.
    Returns ``(img, boxes)``."""
    h, w = img.shape[:2]
    out_h, out_w = int(out_hw[0]), int(out_hw[1])
    if (h, w) != (out_h, out_w):
        img = cv2.resize(img, (out_w, out_h), interpolation=INTERPOLATION)
    if boxes is not None:
        boxes = _as_boxes(boxes) * np.array([out_w / w, out_h / h, out_w / w, out_h / h], dtype=np.float32)
    return img, boxes


def normalize_to_chw(img: np.ndarray, mean, std, bgr: bool = False) -> np.ndarray:
    """``(img - mean) / std`` per RGB channel, as a contiguous float32 RGB ``[3, H, W]``.

    One pass per plane: each uint8 plane goes through a 256-entry float32 look-up table straight into the output.
    ``bgr``: the image's channels are in BGR order (as decoded); the output is RGB all the same."""
    img = _as_image(img)
    h, w = img.shape[:2]
    mean = np.broadcast_to(np.asarray(mean, dtype=np.float32).reshape(-1), (3,))
    std = np.broadcast_to(np.asarray(std, dtype=np.float32).reshape(-1), (3,))
    levels = np.arange(256, dtype=np.float32)
    out = np.empty((3, h, w), dtype=np.float32)
    for c, plane in enumerate(cv2.split(img)):
        c = 2 - c if bgr else c
        cv2.LUT(plane, (levels - mean[c]) / std[c], dst=out[c])
    return out


# ------------------------------------------------------------------------------------------------------ transforms
class TrainTransform:
    """SSD training transform: ``__call__(img, boxes, labels, rng) -> (chw float32, boxes, labels)``.

    Order: expand + crop (fused, sampled on numbers, see :func:`sample_expand_crop`) -> resize to ``out_hw``
    (rendered directly from the source image by :func:`resize_window`) -> :func:`photometric_distort` (on the small
    image: cheaper, and the same distribution up to interpolation) -> :func:`random_hflip` -> :func:`normalize_to_chw`.
    Returned boxes are ``x1, y1, x2, y2`` normalised to [0, 1] by the output size; boxes under 1 output pixel wide or
    high are dropped with their labels. Each step has its own probability, and a probability of 0 turns it off (it
    then draws no random number). ``photometric`` holds :func:`photometric_distort`'s strengths (``brightness_delta``,
    ``contrast_range``, ``saturation_range``, ``hue_delta``). ``bgr``: input images come in BGR order, as OpenCV
    decodes them; the output equals the RGB path's bit for bit, without converting the full-size image first.
    """

    def __init__(self, out_hw, mean, std, expand_prob=0.5, max_expand=4.0, crop_prob=1.0,
                 min_ious=MIN_IOU_CHOICES, crop_min_scale=0.3, photometric_prob=0.5, photometric=None,
                 flip_prob=0.5, bgr=False):
        if isinstance(out_hw, (int, np.integer)):
            out_hw = (out_hw, out_hw)
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))
        self.mean = np.broadcast_to(np.asarray(mean, dtype=np.float32).reshape(-1), (3,)).copy()
        self.std = np.broadcast_to(np.asarray(std, dtype=np.float32).reshape(-1), (3,)).copy()
        self.expand_prob = float(expand_prob)
        self.max_expand = float(max_expand)
        self.crop_prob = float(crop_prob)
        self.min_ious = tuple(min_ious)
        self.crop_min_scale = float(crop_min_scale)
        self.photometric_prob = float(photometric_prob)
        self.photometric = dict(photometric or {})
        self.flip_prob = float(flip_prob)
        self.bgr = bool(bgr)
        self._fill = self.mean[::-1].copy() if self.bgr else self.mean
        self._size = np.array([self.out_hw[1], self.out_hw[0]] * 2, dtype=np.float32)  # W, H, W, H

    def __call__(self, img, boxes, labels, rng: np.random.Generator):
        img = _as_image(img)
        boxes = _as_boxes(boxes)
        labels = _as_labels(labels, boxes.shape[0])
        h, w = img.shape[:2]
        window, boxes, labels = sample_expand_crop(h, w, boxes, labels, rng, self.expand_prob, self.max_expand,
                                                   self.crop_prob, self.min_ious, self.crop_min_scale)
        img, (ax, ay, bx, by) = resize_window(img, window, self.out_hw, self._fill)
        boxes = boxes * np.array([ax, ay, ax, ay], np.float32) + np.array([bx, by, bx, by], np.float32)
        np.clip(boxes, 0.0, self._size, out=boxes)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= 1.0) & ((boxes[:, 3] - boxes[:, 1]) >= 1.0)
        boxes, labels = boxes[keep], labels[keep]
        if self.photometric_prob > 0.0:
            img = photometric_distort(img, rng, prob=self.photometric_prob, bgr=self.bgr, **self.photometric)
        if self.flip_prob > 0.0:
            img, boxes = random_hflip(img, boxes, rng, self.flip_prob)
        boxes = np.clip(boxes / self._size, 0.0, 1.0)
        return normalize_to_chw(img, self.mean, self.std, self.bgr), boxes, labels


class EvalTransform:
    """Evaluation / prediction transform: ``__call__(img) -> chw float32`` (resize with :data:`INTERPOLATION`, then
    normalise). Export and the C++ inference must do the same."""

    def __init__(self, out_hw, mean, std):
        if isinstance(out_hw, (int, np.integer)):
            out_hw = (out_hw, out_hw)
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))
        self.mean = np.broadcast_to(np.asarray(mean, dtype=np.float32).reshape(-1), (3,)).copy()
        self.std = np.broadcast_to(np.asarray(std, dtype=np.float32).reshape(-1), (3,)).copy()

    def __call__(self, img):
        img, _ = resize(_as_image(img), None, self.out_hw)
        return normalize_to_chw(img, self.mean, self.std)

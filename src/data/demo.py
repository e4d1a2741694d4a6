"""A built-in synthetic detection set in COCO layout, so that training and evaluation run anywhere.

The class of an object is its SHAPE (circle, square, triangle, star, ring, cross); colours are random, so a detector
cannot cheat on colour. One to four objects of 40 to 200 px overlap partly on textured, noisy backgrounds with lines
and soft blobs as distractors. Every image is drawn from its own seed ``(seed, split, index)``, so the output is
identical on every run and the first images of a split do not depend on how many are asked for.

Layout (what ``parse_coco`` reads):
    root/train2017/000001.jpg ...      root/annotations/instances_train2017.json
    root/val2017/000001.jpg ...        root/annotations/instances_val2017.json
    root/demo_meta.json                parameters; the set is reused while they match
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import time

import cv2
import numpy as np

from .records import DatasetError

CLASS_NAMES = ("circle", "square", "triangle", "star", "ring", "cross")
# Sparse on purpose: readers must map category ids to contiguous labels and back.
CATEGORY_IDS = (1, 3, 5, 7, 9, 11)
DEMO_VERSION = 2              # bump when the drawing changes, so cached sets are redrawn
META_NAME = "demo_meta.json"
SPLITS = (("train2017", 1), ("val2017", 2))   # folder, seed component

# SSD300's smallest default box is 30 px; much smaller objects could only be matched by force. Sizes, counts and
# occlusion are set so that SSD-GhostNet learns the set from scratch within the README's first command (600 steps):
# with 28 px objects, up to 6 per image and 40% occlusion it reached mAP 0.12 there (lr 2e-3); with these, 0.21
# (lr 4e-3), and 0.54 with the recipe scripts/run_demo.sh trains now (docs/accuracy.md).
MIN_OBJECT_PX = 40
MAX_OBJECT_PX = 200
MAX_OBJECTS = 4
MIN_VISIBLE = 0.8             # an occluded object keeps at least this share of its pixels
JPEG_QUALITY = 90
NOISE_TILE_PX = 640           # noise is cut from one tile this big, so images may be at most this big

# Small enough for unit tests (well under a second), same drawing code.
TINY = {"num_train": 6, "num_val": 4, "image_size": (96, 128)}


# -- shapes ------------------------------------------------------------------------------------------------------
def _regular(n: int, radius: float, phase: float) -> np.ndarray:
    angles = phase + np.arange(n) * (2 * np.pi / n)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius


def _star(radius: float, phase: float) -> np.ndarray:
    angles = phase + np.arange(10) * (np.pi / 5)
    radii = np.where(np.arange(10) % 2 == 0, radius, 0.42 * radius)
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)


def _cross(radius: float, phase: float) -> np.ndarray:
    a, b = radius, 0.25 * radius   # arm length, arm half width
    pts = np.array([[b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b],
                    [-b, -a], [b, -a]], np.float64)
    c, s = np.cos(phase), np.sin(phase)
    return pts @ np.array([[c, s], [-s, c]])


def _shape_polygons(kind: str, radius: float, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(filled outlines, holes) centred on 0, before the aspect jitter."""
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "circle":
        return [_regular(64, radius, 0)], []
    if kind == "ring":
        return [_regular(64, radius, 0)], [_regular(64, radius * rng.uniform(0.5, 0.65), 0)]
    if kind == "square":
        return [_regular(4, radius, phase)], []
    if kind == "triangle":
        return [_regular(3, radius, phase)], []
    if kind == "star":
        return [_star(radius, phase)], []
    if kind == "cross":
        return [_cross(radius, phase)], []
    raise ValueError(kind)


def _render_mask(kind: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Anti-aliased coverage (float32 0..1) of one shape on a square canvas just larger than it."""
    side = int(np.ceil(2 * radius * 1.2)) + 4
    centre = np.array([side / 2, side / 2])
    stretch = np.array([rng.uniform(0.85, 1.15), 1.0])   # a little aspect jitter: shapes, not templates
    fills, holes = _shape_polygons(kind, radius, rng)
    mask = np.zeros((side, side), np.uint8)
    to_fixed = lambda p: np.round((p * stretch + centre) * 16).astype(np.int32)  # noqa: E731, 4 bits sub-pixel
    cv2.fillPoly(mask, [to_fixed(p) for p in fills], 255, cv2.LINE_AA, shift=4)
    if holes:
        cv2.fillPoly(mask, [to_fixed(p) for p in holes], 0, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


# -- one image ---------------------------------------------------------------------------------------------------
def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    t = (np.arange(w, dtype=np.float32)[None, :] * np.float32(np.cos(theta))
         + np.arange(h, dtype=np.float32)[:, None] * np.float32(np.sin(theta)))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    # Per-channel planes merged by OpenCV: numpy broadcasting over a trailing axis of 3 is several times slower.
    img = cv2.merge([t * float(c1[c] - c0[c]) + float(c0[c]) for c in range(3)])
    # Low-frequency texture: coarse noise blown up, so regions differ in colour like real backgrounds.
    coarse = rng.normal(0, 28, (h // 24 + 2, w // 24 + 2, 3)).astype(np.float32)
    img += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    # Soft blobs: round-ish but blurred, so that sharp-edged circles stay the only circles. Drawn and blurred at a
    # quarter of the size (they are smooth anyway), which is 16x cheaper.
    bh, bw = h // 4, w // 4
    blobs = np.zeros((bh, bw, 3), np.float32)
    for _ in range(rng.integers(0, 5)):
        centre = (int(rng.integers(0, bw)), int(rng.integers(0, bh)))
        axes = (int(rng.integers(2, bw // 4)), int(rng.integers(2, bh // 4)))
        cv2.ellipse(blobs, centre, axes, float(rng.uniform(0, 180)), 0, 360, rng.uniform(-90, 90, 3).tolist(), -1)
    img += cv2.resize(cv2.GaussianBlur(blobs, (0, 0), sigmaX=max(bh, bw) / 40), (w, h),
                      interpolation=cv2.INTER_LINEAR)
    _lines(img, rng, int(rng.integers(3, 12)), thickness=(1, 3))
    return img


def _lines(img: np.ndarray, rng: np.random.Generator, count: int, thickness: tuple[int, int]) -> None:
    h, w = img.shape[:2]
    for _ in range(count):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p0, p1, rng.uniform(0, 255, 3).tolist(), int(rng.integers(*thickness)), cv2.LINE_AA)


def _contrasting_colour(local_mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour that stands out from the background under the object (else tiny objects vanish in noise)."""
    best, best_dist = None, -1.0
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        dist = float(np.linalg.norm(colour - local_mean))
        if dist > 90:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    return best


@functools.lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    # Fixed seed: part of the drawing, like the shapes, not of the user's seed.
    return np.random.default_rng(12345).standard_normal((NOISE_TILE_PX, NOISE_TILE_PX, 3), dtype=np.float32)


def _draw_image(h: int, w: int, rng: np.random.Generator,
                object_size: tuple[int, int] = (MIN_OBJECT_PX, MAX_OBJECT_PX)
                ) -> tuple[np.ndarray, list[tuple[list[int], int]]]:
    """(BGR uint8 image, [(x1, y1, x2, y2), label] of each object)."""
    img = _background(h, w, rng)
    owner = np.full((h, w), -1, np.int16)        # which object is visible at each pixel
    full_area: list[int] = []
    objects: list[tuple[list[int], int]] = []
    count = 0 if rng.random() < 0.07 else int(rng.integers(1, MAX_OBJECTS + 1))
    min_px = object_size[0]
    max_px = max(min(object_size[1], 0.6 * min(h, w)), min_px + 1)
    for _ in range(count):
        label = int(rng.integers(len(CLASS_NAMES)))
        size = float(np.exp(rng.uniform(np.log(min_px), np.log(max_px))))   # log-uniform: as many small as large
        alpha = _render_mask(CLASS_NAMES[label], size / 2, rng)
        solid = alpha >= 0.5
        ys, xs = np.nonzero(solid)
        if len(ys) == 0:
            continue
        # Trim the canvas to the shape so that placement keeps the whole object inside the image.
        crop = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        alpha, solid = alpha[crop], solid[crop]
        oh, ow = solid.shape
        if oh >= h or ow >= w:
            continue
        visible = np.bincount(owner[owner >= 0], minlength=len(full_area))
        for _attempt in range(30):
            x0, y0 = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
            under = owner[y0:y0 + oh, x0:x0 + ow]
            lost = np.bincount(under[solid] + 1, minlength=len(full_area) + 1)[1:]
            if np.all(visible - lost >= MIN_VISIBLE * np.asarray(full_area, np.float64)):
                break
        else:
            continue  # nowhere to put it without hiding another object too much
        region = img[y0:y0 + oh, x0:x0 + ow]
        colour = _contrasting_colour(region.reshape(-1, 3).mean(axis=0), rng)
        # A soft light direction across the object, so that its surface is not one flat colour.
        gx = np.linspace(-0.5, 0.5, ow, dtype=np.float32)[None, :] * np.float32(rng.uniform(-1, 1))
        gy = np.linspace(-0.5, 0.5, oh, dtype=np.float32)[:, None] * np.float32(rng.uniform(-1, 1))
        shade = 1 + 0.18 * (gx + gy)
        paint = cv2.merge([shade * float(c) for c in colour])
        region += (paint - region) * cv2.merge([alpha, alpha, alpha])
        under[solid] = len(full_area)
        full_area.append(int(solid.sum()))
        objects.append(([x0, y0, x0 + ow, y0 + oh], label))
    _lines(img, rng, int(rng.integers(0, 3)), thickness=(1, 2))   # thin occluders over everything
    # Sensor noise: a window of a fixed noise tile at a random offset, as random-looking as fresh noise per image
    # but without drawing a million normal numbers each time.
    tile = _noise_tile()
    oy, ox = int(rng.integers(0, tile.shape[0] - h + 1)), int(rng.integers(0, tile.shape[1] - w + 1))
    img += tile[oy:oy + h, ox:ox + w] * np.float32(rng.uniform(4, 14))
    return np.clip(img, 0, 255).astype(np.uint8), objects


# -- the set -----------------------------------------------------------------------------------------------------
def _write_split(root: str, folder: str, split_seed: int, count: int, seed: int,
                 image_size: tuple[int, int], object_size: tuple[int, int]) -> None:
    os.makedirs(os.path.join(root, folder))
    images, annotations = [], []
    lo, hi = image_size
    for i in range(count):
        rng = np.random.default_rng([seed, split_seed, i])
        h, w = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        img, objects = _draw_image(h, w, rng, object_size)
        file_name = f"{i + 1:06d}.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode demo image {file_name}")
        with open(os.path.join(root, folder, file_name), "wb") as f:
            f.write(buf.tobytes())
        images.append({"id": i + 1, "file_name": file_name, "width": w, "height": h})
        for (x1, y1, x2, y2), label in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": CATEGORY_IDS[label],
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    doc = {"info": {"description": "synthetic shapes (src/data/demo.py)"}, "images": images,
           "annotations": annotations,
           "categories": [{"id": c, "name": n, "supercategory": "shape"} for n, c in zip(CLASS_NAMES, CATEGORY_IDS)]}
    with open(os.path.join(root, "annotations", f"instances_{folder}.json"), "w") as f:
        json.dump(doc, f)


def _read_meta(root: str) -> dict | None:
    try:
        with open(os.path.join(root, META_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ensure_demo_dataset(root: str, num_train: int = 240, num_val: int = 60, seed: int = 0,
                        image_size: tuple[int, int] = (256, 400),
                        object_size: tuple[int, int] = (MIN_OBJECT_PX, MAX_OBJECT_PX)) -> str:
    """Make (or reuse) the synthetic set under ``root`` and return ``root``.

    ``image_size``: the range of image heights and widths in pixels. ``object_size``: the range of object sizes
    (the larger side, before a little aspect jitter; at most 0.6 of the shorter image side). ``TINY`` holds
    parameters for tests.
    The set is drawn in a temporary sibling folder and renamed into place, so a killed run leaves no half set.
    """
    root = os.path.abspath(root)
    lo, hi = int(image_size[0]), int(image_size[1])
    omin, omax = int(object_size[0]), int(object_size[1])
    if not (32 <= lo <= hi <= NOISE_TILE_PX) or not (4 <= omin <= omax) or num_train < 1 or num_val < 1:
        raise DatasetError(f"demo dataset: need image sizes 32 <= min <= max <= {NOISE_TILE_PX}, object sizes "
                           f"4 <= min <= max and at least one image per split, got image_size={image_size}, "
                           f"object_size={object_size}, num_train={num_train}, num_val={num_val}")
    meta = {"version": DEMO_VERSION, "num_train": int(num_train), "num_val": int(num_val), "seed": int(seed),
            "image_size": [lo, hi], "object_size": [omin, omax], "classes": list(CLASS_NAMES),
            "category_ids": list(CATEGORY_IDS)}
    if _read_meta(root) == meta:
        print(f"reusing the demo dataset in {root}")
        return root
    if os.path.exists(root) and not os.path.isdir(root):
        raise DatasetError(f"{root} is a file; the demo dataset needs a folder")
    if os.path.isdir(root) and os.listdir(root) and _read_meta(root) is None:
        raise DatasetError(f"{root} exists and is not a demo dataset (no {META_NAME}); choose an empty folder")

    start = time.perf_counter()
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.tmp-", dir=parent)
    try:
        os.makedirs(os.path.join(tmp, "annotations"))
        for (folder, split_seed), count in zip(SPLITS, (num_train, num_val)):
            _write_split(tmp, folder, split_seed, count, seed, (lo, hi), (omin, omax))
        with open(os.path.join(tmp, META_NAME), "w") as f:
            json.dump(meta, f, indent=1)
        if os.path.isdir(root) and os.listdir(root):
            old = tmp + ".old"
            os.rename(root, old)            # an older demo set (checked above): swap it out, then delete it
            os.rename(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, root)        # replaces an empty folder too
            except OSError:
                if _read_meta(root) != meta:  # another process may have finished the same set first
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote the demo dataset ({num_train} train, {num_val} val images) to {root} "
          f"in {time.perf_counter() - start:.1f} s")
    return root

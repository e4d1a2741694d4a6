"""The C++ program's output files, and a Python reference that writes the same layout.

Layout (the model zoo's): for each image `<stem>.<ext>`, raw float32 little-endian arrays without a header,
    <stem>_0.bin   boxes  [A, 4]  x1, y1, x2, y2 divided by the network input's width and height
    <stem>_1.bin   scores [A, C]  per-class probability (no background column)
where A is the model's anchor count and C its class count (both in the model's .json card).
"""
import os

import numpy as np

from ..data.image_io import read_bgr
from ..data.records import DatasetError
from ..fileio import atomic_path


def bin_paths(result_dir, stem):
    return os.path.join(result_dir, f"{stem}_0.bin"), os.path.join(result_dir, f"{stem}_1.bin")


def write_result_bins(result_dir, stem, boxes, scores):
    """The reference writer: one image's `boxes` [A, 4] and `scores` [A, C], atomically."""
    for path, array in zip(bin_paths(result_dir, stem), (boxes, scores)):
        with atomic_path(path) as tmp:
            np.ascontiguousarray(array, dtype="<f4").tofile(tmp)


def read_result_bins(result_dir, stem, num_classes):
    """(boxes [A, 4], scores [A, C]) of one image, or None when its files are missing; sizes are checked."""
    box_path, score_path = bin_paths(result_dir, stem)
    if not (os.path.isfile(box_path) and os.path.isfile(score_path)):
        return None
    boxes = np.fromfile(box_path, dtype="<f4")
    scores = np.fromfile(score_path, dtype="<f4")
    if boxes.size == 0 or boxes.size % 4:
        raise DatasetError(f"{box_path}: {boxes.size} floats is not a whole number of boxes [A, 4]")
    num_anchors = boxes.size // 4
    if scores.size != num_anchors * num_classes:
        raise DatasetError(f"{score_path}: {scores.size} floats, expected {num_anchors} anchors x {num_classes} "
                           f"classes = {num_anchors * num_classes} (a model with another class count?)")
    return boxes.reshape(num_anchors, 4), scores.reshape(num_anchors, num_classes)


def image_size(entry, img_dir):
    """(height, width) of a COCO image entry: from the json, else from the image file."""
    if entry.get("height") and entry.get("width"):
        return int(entry["height"]), int(entry["width"])
    path = os.path.join(img_dir, entry["file_name"])
    image, reason = read_bgr(path)
    if image is None:
        raise DatasetError(f"{path}: the annotation gives no size and the image cannot be used ({reason})")
    return image.shape[:2]


def write_reference_results(runtime, info, image_paths, result_dir):
    """What the C++ program does, in Python: eval's transform, the runtime, one pair of .bin files per image."""
    from ..data.image_io import read_rgb
    from .predictor import Predictor
    predictor = Predictor(runtime, info)
    for path in image_paths:
        image, reason = read_rgb(path)
        if image is None:
            raise DatasetError(f"{path}: {reason}")
        write_result_bins(result_dir, os.path.splitext(os.path.basename(path))[0], *predictor.outputs(image))

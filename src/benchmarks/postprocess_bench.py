"""Evaluation post-processing from stored raw outputs: decode + NMS + COCOeval, timed per 1000 images.

The raw outputs are the head's (box deltas [A, 4], class logits [A, K]) of a pool of synthetic images, written to
.npy files once and memory-mapped, as postprocess.py reads an inference run's files. Each pool image has random
COCO-like ground truth; the anchors that match it predict its box and class with noise, and every other anchor has
low background scores, a tail of which passes min_score, as an undertrained model's do. Image i of the evaluated
set uses pool image i % pool_size, with its own image id, so COCOeval sees `num_images` images.
"""
import os
import tempfile
import time

import numpy as np

from ..box.coder import BoxCoder
from ..box.iou import box_iou, cxcywh_to_xyxy
from ..evaluation.coco_evaluator import COCOEvaluator
from ..evaluation.postprocess import NMSParams, image_detections

IMAGE_HW = (480, 640)
POOL_BYTES = 256 << 20  # the stored pool is at most this large


def _random_gt(rng, num_classes, max_boxes=12):
    n = int(rng.integers(1, max_boxes + 1))
    size = rng.uniform(0.05, 0.6, (n, 2))
    centre = rng.uniform(size / 2, 1 - size / 2)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1).astype(np.float32)
    return boxes, rng.integers(0, num_classes, n)


def _raw_outputs(rng, anchors, boxes, labels, num_outputs, softmax, coder):
    """Head outputs for one image: matched anchors (IoU >= 0.5) predict their gt, the rest background."""
    num_anchors = len(anchors)
    deltas = rng.normal(0.0, 0.5, (num_anchors, 4)).astype(np.float32)
    logits = rng.normal(-6.0, 1.5, (num_anchors, num_outputs)).astype(np.float32)
    if softmax:
        logits[:, 0] += 8.0  # background column
    iou = box_iou(boxes, cxcywh_to_xyxy(anchors))
    best = iou.argmax(0)
    matched = np.flatnonzero(iou.max(0) >= 0.5)
    gt = best[matched]
    deltas[matched] = coder.encode(boxes[gt], anchors[matched]) + rng.normal(0, 0.1, (len(matched), 4))
    column = labels[gt] + (1 if softmax else 0)
    logits[matched, column] = rng.normal(3.0, 1.0, len(matched))
    return deltas, logits


def _decode(deltas, logits, anchors, coder, softmax):
    boxes = coder.decode(deltas, anchors)
    if softmax:
        e = np.exp(logits - logits.max(-1, keepdims=True))
        scores = (e / e.sum(-1, keepdims=True))[:, 1:]
    else:
        scores = 1.0 / (1.0 + np.exp(-logits))
    return boxes, scores


def benchmark_postprocess(anchors, num_classes, softmax, variances, nms_params: NMSParams, num_images=1000, seed=0):
    """Times decode + NMS over `num_images` stored raw outputs, then COCOeval over all of them."""
    coder = BoxCoder(variances)
    anchors = np.asarray(anchors, np.float32)
    num_outputs = num_classes + (1 if softmax else 0)
    per_image = len(anchors) * (4 + num_outputs) * 4
    pool = int(max(2, min(100, num_images, POOL_BYTES // per_image)))
    rng = np.random.default_rng(seed)
    gts = [_random_gt(rng, num_classes) for _ in range(pool)]
    h, w = IMAGE_HW
    with tempfile.TemporaryDirectory(prefix="fdet_bench_") as folder:
        delta_path, logit_path = os.path.join(folder, "deltas.npy"), os.path.join(folder, "logits.npy")
        deltas = np.lib.format.open_memmap(delta_path, "w+", np.float32, (pool, len(anchors), 4))
        logits = np.lib.format.open_memmap(logit_path, "w+", np.float32, (pool, len(anchors), num_outputs))
        for i, (boxes, labels) in enumerate(gts):
            deltas[i], logits[i] = _raw_outputs(rng, anchors, boxes, labels, num_outputs, softmax, coder)
        del deltas, logits
        stored_deltas, stored_logits = np.load(delta_path, mmap_mode="r"), np.load(logit_path, mmap_mode="r")

        images, annotations = [], []
        for img_id in range(1, num_images + 1):
            boxes, labels = gts[(img_id - 1) % pool]
            images.append({"id": img_id, "width": w, "height": h, "file_name": f"{img_id}.jpg"})
            for box, label in zip(boxes * np.array([w, h, w, h]), labels):
                x1, y1, x2, y2 = (float(v) for v in box)
                annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": int(label) + 1,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                    "iscrowd": 0})
        gt = {"images": images, "annotations": annotations,
              "categories": [{"id": c + 1, "name": f"class{c}"} for c in range(num_classes)]}
        evaluator = COCOEvaluator(gt, [f"class{c}" for c in range(num_classes)], list(range(1, num_classes + 1)))

        start = time.perf_counter()
        detections = 0
        for img_id in range(1, num_images + 1):
            k = (img_id - 1) % pool
            boxes, scores = _decode(np.asarray(stored_deltas[k]), np.asarray(stored_logits[k]), anchors, coder,
                                    softmax)
            result = image_detections(boxes, scores, IMAGE_HW, nms_params)
            detections += len(result[0])
            evaluator.add(img_id, *result)
        nms_seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = evaluator.evaluate(verbose=False)
        coco_seconds = time.perf_counter() - start
    total = nms_seconds + coco_seconds
    return {"images": num_images, "anchors": len(anchors), "classes": num_classes, "stored_pool_images": pool,
            "detections_per_image": detections / num_images, "decode_nms_s": nms_seconds,
            "cocoeval_s": coco_seconds, "total_s": total, "s_per_1000_images": total * 1000.0 / num_images,
            "mAP_of_synthetic_outputs": float(metrics["mAP"])}

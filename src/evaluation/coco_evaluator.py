"""COCO box evaluation on top of pycocotools.

Detections are collected per image as pixel boxes ``x1, y1, x2, y2`` in the ORIGINAL image's coordinates, with their
scores and contiguous labels ``0..C-1``. ``category_ids[k]`` is the COCO category id of label ``k`` (COCO's own ids
are sparse: 1..90 for 80 classes).

Every image listed in the ground truth is evaluated, including images whose only annotations are crowd regions and
images without any annotation (a detection there is a false positive; a ground-truth box on an image without
detections is a miss). pycocotools handles ``iscrowd`` itself, so nothing is filtered here.

The model's classes are the categories evaluated: ``COCOeval.params.catIds`` is set to ``category_ids``, so a
ground-truth category that the detector does not know does not pull the mean down.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

try:  # the same evaluation in C++, about 10x faster; its results equal pycocotools' (tests/test_coco_evaluator.py)
    from faster_coco_eval.core.faster_eval_api import COCOeval_faster
except ImportError:  # pragma: no cover - optional
    COCOeval_faster = None

from ..fileio import write_json_atomic

__all__ = ["COCOEvaluator", "per_class_ap", "load_coco_gt", "cocoeval_class"]
ENGINES = ("auto", "pycocotools", "faster_coco_eval")

PathOrDict = Union[str, os.PathLike, Dict[str, Any], COCO]


def cocoeval_class(engine="auto"):
    """The COCOeval to use: faster_coco_eval's when installed ("auto"), or the one named."""
    if engine not in ENGINES:
        raise ValueError(f"COCO engine must be one of {ENGINES}, got {engine!r}")
    if engine == "faster_coco_eval" and COCOeval_faster is None:
        raise ImportError("faster-coco-eval is not installed (pip install faster-coco-eval)")
    if engine == "pycocotools" or COCOeval_faster is None:
        return COCOeval
    return COCOeval_faster


@contextlib.contextmanager
def _quiet():
    """Swallows pycocotools' progress chatter ("creating index...", "DONE (t=0.01s)")."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _as_id(value: Any) -> Any:
    """numpy integers (and integral floats) become Python ints, so that they hash like the ids of the json."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value


def load_coco_gt(gt: PathOrDict) -> COCO:
    """Builds a pycocotools ``COCO`` object from a json path, a COCO-format dict or another ``COCO`` object.

    The dataset is copied (the caller's dict is left alone) and completed where COCOeval would otherwise fail on a
    hand-made file: ``iscrowd`` defaults to 0, ``area`` to the box's ``w * h``, and a missing annotation ``id`` is
    numbered after the largest one present.
    """
    if isinstance(gt, COCO):
        data = gt.dataset
    elif isinstance(gt, dict):
        data = gt
    elif isinstance(gt, (str, os.PathLike)):
        with open(gt, "r", encoding="utf-8") as f:
            data = json.load(f)
    else:
        raise TypeError(f"ground truth must be a json path, a COCO-format dict or a COCO object, not {type(gt)!r}")
    for key in ("images", "categories"):
        if key not in data:
            raise ValueError(f"COCO ground truth has no '{key}' list")

    anns_in = data.get("annotations") or []
    next_id = 1 + max([int(a["id"]) for a in anns_in if isinstance(a.get("id"), (int, np.integer))], default=0)
    anns = []
    for a in anns_in:
        a = dict(a)  # COCOeval writes an 'ignore' flag into the ground-truth dicts
        if "bbox" not in a or "image_id" not in a or "category_id" not in a:
            raise ValueError(f"COCO annotation lacks bbox, image_id or category_id: {a!r}")
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = float(a["bbox"][2]) * float(a["bbox"][3])
        if "id" not in a:
            a["id"] = next_id
            next_id += 1
        anns.append(a)

    dataset = {
        "info": data.get("info", {}),
        "images": [dict(im) for im in data["images"]],
        "categories": [dict(c) for c in data["categories"]],
        "annotations": anns,
    }
    coco = COCO()
    coco.dataset = dataset
    with _quiet():
        coco.createIndex()
    return coco


def per_class_ap(coco_eval: Any, iou_thr: Optional[float] = None, area: str = "all",
                 max_dets: int = 100) -> Dict[int, Optional[float]]:
    """Per-category AP read from an accumulated ``COCOeval``: ``{category_id: AP or None}``.

    ``coco_eval.eval['precision']`` has the shape ``[T iou, R recall, K category, A area, M maxDets]``. For each
    category this averages the slice at area range ``area`` and ``max_dets`` detections over every IoU threshold
    (``iou_thr=None``: AP@[.5:.95]) or over the one threshold ``iou_thr`` (0.5 gives AP50), ignoring the -1 entries
    that pycocotools leaves where a category has no (non-crowd) ground truth. A category with nothing but -1 entries
    has no ground truth in the evaluated images: it maps to ``None``, never to NaN.
    """
    params = coco_eval.eval.get("params") if isinstance(coco_eval.eval, dict) else None
    if params is None:
        params = coco_eval.params
    precision = np.asarray(coco_eval.eval["precision"])
    if precision.ndim != 5:
        raise ValueError(f"COCOeval precision must have 5 dimensions, got shape {precision.shape}")
    try:
        a_idx = list(params.areaRngLbl).index(area)
    except ValueError:
        raise ValueError(f"area range {area!r} not in {list(params.areaRngLbl)}") from None
    try:
        m_idx = list(params.maxDets).index(max_dets)
    except ValueError:
        raise ValueError(f"maxDets {max_dets} not in {list(params.maxDets)}") from None
    s = precision[:, :, :, a_idx, m_idx]  # [T, R, K]
    if iou_thr is not None:
        t_idx = np.flatnonzero(np.isclose(np.asarray(params.iouThrs, dtype=np.float64), iou_thr))
        if t_idx.size == 0:
            raise ValueError(f"IoU threshold {iou_thr} not in {list(params.iouThrs)}")
        s = s[t_idx]
    cat_ids = list(params.catIds) if getattr(params, "useCats", 1) else [-1]
    if len(cat_ids) != s.shape[2]:
        raise ValueError(f"{len(cat_ids)} category ids for {s.shape[2]} precision columns")
    out: Dict[int, Optional[float]] = {}
    for k, cid in enumerate(cat_ids):
        v = s[:, :, k]
        v = v[v > -1]
        out[_as_id(cid)] = float(np.mean(v)) if v.size else None
    return out


def precision_curves(coco_eval: Any, category_ids: Sequence[int], area: str = "all", max_dets: int = 100):
    """COCOeval's interpolated precision for the categories ``category_ids``, in that order: ``(precision [T, R, K]
    with -1 where a category has no ground truth, recall thresholds [R], IoU thresholds [T])``. The mean of a curve
    over the recall thresholds is the category's AP at that IoU, exactly as COCOeval computes it."""
    params = coco_eval.eval.get("params") if isinstance(coco_eval.eval, dict) else None
    params = params or coco_eval.params
    precision = np.asarray(coco_eval.eval["precision"])
    a_idx = list(params.areaRngLbl).index(area)
    m_idx = list(params.maxDets).index(max_dets)
    column = {_as_id(c): k for k, c in enumerate(params.catIds)}
    s = precision[:, :, [column[_as_id(c)] for c in category_ids], a_idx, m_idx]
    return s, np.asarray(params.recThrs, np.float64), np.asarray(params.iouThrs, np.float64)


class COCOEvaluator:
    """Collects detections and scores them with pycocotools' ``COCOeval`` (bbox).

    Args:
        gt: COCO-format ground truth: a json path, a dict, or a ``pycocotools.coco.COCO``.
        class_names: the name of each contiguous label ``0..C-1``.
        category_ids: the COCO category id of each label; every one must exist in the ground truth.
        engine: "auto" (faster_coco_eval's C++ COCOeval when installed, else pycocotools), "pycocotools" or
            "faster_coco_eval".
    """

    def __init__(self, gt: PathOrDict, class_names: Sequence[str], category_ids: Sequence[int],
                 engine: str = "auto"):
        cocoeval_class(engine)  # an unknown or missing engine fails here, not after inference
        self.engine = engine
        self.coco_gt = load_coco_gt(gt)
        self.class_names = [str(n) for n in class_names]
        self.category_ids = [_as_id(c) for c in category_ids]
        if len(self.class_names) != len(self.category_ids):
            raise ValueError(f"{len(self.class_names)} class names but {len(self.category_ids)} category ids")
        if not self.category_ids:
            raise ValueError("no classes: class_names and category_ids are empty")
        seen = set()
        for c in self.category_ids:
            if c in seen:
                raise ValueError(f"category id {c} is given twice in category_ids")
            seen.add(c)
        gt_cats = set(self.coco_gt.getCatIds())
        missing = [c for c in self.category_ids if c not in gt_cats]
        if missing:
            raise ValueError(f"category id(s) {missing} not in the ground truth's categories {sorted(gt_cats)}")
        self._img_ids = set(self.coco_gt.getImgIds())
        self._results: List[Dict[str, Any]] = []

    # ------------------------------------------------------------------ collecting
    def __len__(self) -> int:
        return len(self._results)

    @property
    def results(self) -> List[Dict[str, Any]]:
        """The COCO result entries collected so far (a copy)."""
        return [dict(r, bbox=list(r["bbox"])) for r in self._results]

    def reset(self) -> None:
        """Forgets the collected detections (for reuse across epochs)."""
        self._results = []

    def add(self, img_id: int, boxes_xyxy: Any, scores: Any, labels: Any) -> None:
        """Adds one image's detections: ``boxes_xyxy`` [N, 4] pixels in the original image, ``scores`` [N],
        ``labels`` [N] in ``0..C-1``. Calling it again for the same image appends."""
        img_id = _as_id(img_id)
        if img_id not in self._img_ids:
            raise ValueError(f"image id {img_id!r} is not in the ground truth")
        boxes = np.asarray(boxes_xyxy, dtype=np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must have shape [N, 4], got {boxes.shape} for image {img_id}")
        n = boxes.shape[0]
        if scores.shape[0] != n or labels.shape[0] != n:
            raise ValueError(f"image {img_id}: {n} boxes, {scores.shape[0]} scores, {labels.shape[0]} labels")
        if n == 0:
            return
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise ValueError(f"image {img_id}: boxes or scores hold NaN or inf")
        if labels.dtype.kind == "f":
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                bad = labels[~np.isfinite(labels) | (labels != np.round(labels))][0]
                raise ValueError(f"image {img_id}: label {bad} is not an integer")
        elif labels.dtype.kind not in "iub":
            raise ValueError(f"image {img_id}: labels must be integers, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
        out_of_range = (labels < 0) | (labels >= len(self.category_ids))
        if out_of_range.any():
            raise ValueError(f"image {img_id}: label {int(labels[out_of_range][0])} outside the class range "
                             f"0..{len(self.category_ids) - 1}")

        x1, y1 = boxes[:, 0], boxes[:, 1]
        w = np.maximum(boxes[:, 2] - x1, 0.0)
        h = np.maximum(boxes[:, 3] - y1, 0.0)
        xywh = np.round(np.stack([x1, y1, w, h], axis=1), 2).tolist()
        for box, score, label in zip(xywh, scores.tolist(), labels.tolist()):
            self._results.append({
                "image_id": img_id,
                "category_id": self.category_ids[label],
                "bbox": box,
                "score": float(score),
            })

    def save(self, path: Union[str, os.PathLike]) -> str:
        """Writes the detections as a COCO result json, atomically (a temporary file, then a rename)."""
        return write_json_atomic(os.fspath(path), self._results)

    # ------------------------------------------------------------------ scoring
    def _num_gt(self, img_ids: Iterable[int]) -> Dict[int, int]:
        """Non-crowd ground-truth boxes per category in the given images."""
        counts = {c: 0 for c in self.category_ids}
        for i in img_ids:
            for a in self.coco_gt.imgToAnns.get(i, []):
                c = a["category_id"]
                if c in counts and not a.get("iscrowd", 0):
                    counts[c] += 1
        return counts

    def _results_coco(self) -> COCO:
        if self._results:
            # loadRes writes area, id, iscrowd and segmentation into the dicts it gets: give it copies
            with _quiet():
                return self.coco_gt.loadRes(self.results)
        # loadRes indexes anns[0] and fails on an empty list: build the empty result set by hand
        res = COCO()
        res.dataset = {
            "info": {},
            "images": list(self.coco_gt.dataset["images"]),
            "categories": [dict(c) for c in self.coco_gt.dataset["categories"]],
            "annotations": [],
        }
        with _quiet():
            res.createIndex()
        return res

    def evaluate(self, img_ids: Optional[Iterable[int]] = None, verbose: bool = True) -> Dict[str, Any]:
        """Scores the collected detections on ``img_ids`` (default: every image of the ground truth).

        Prints pycocotools' 12-line summary, ``mAP: <value>`` and a per-class table unless ``verbose`` is False.
        Returns ``{'mAP', 'AP50', 'stats' (the 12 numbers), 'per_class' {name: AP@[.5:.95] or None},
        'per_class_ap50' {name: AP50 or None}, 'num_gt' {name: non-crowd GT boxes}, 'num_detections'}``;
        ``None`` marks a class without ground truth in the evaluated images. ``mAP`` and ``AP50`` are 0.0 (not
        pycocotools' -1) when no class has ground truth.
        """
        if img_ids is None:
            ids = sorted(self._img_ids)
        else:
            ids = [_as_id(i) for i in img_ids]
            unknown = [i for i in ids if i not in self._img_ids]
            if unknown:
                raise ValueError(f"image id(s) {unknown[:10]} not in the ground truth")
            if not ids:
                raise ValueError("img_ids is empty")

        coco_dt = self._results_coco()
        coco_eval = cocoeval_class(self.engine)(self.coco_gt, coco_dt, iouType="bbox")
        coco_eval.params.imgIds = ids
        coco_eval.params.catIds = sorted(self.category_ids)
        with _quiet():
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        stats = [float(s) for s in coco_eval.stats[:12]]

        self.curves = precision_curves(coco_eval, self.category_ids)
        ap_all = per_class_ap(coco_eval)
        ap_50 = per_class_ap(coco_eval, iou_thr=0.5)
        counts = self._num_gt(ids)
        per_class = {n: ap_all[c] for n, c in zip(self.class_names, self.category_ids)}
        per_class_ap50 = {n: ap_50[c] for n, c in zip(self.class_names, self.category_ids)}
        num_gt = {n: counts[c] for n, c in zip(self.class_names, self.category_ids)}
        id_set = set(ids)
        result = {
            "mAP": max(stats[0], 0.0),
            "AP50": max(stats[1], 0.0),
            "stats": stats,
            "per_class": per_class,
            "per_class_ap50": per_class_ap50,
            "num_gt": num_gt,
            "num_detections": sum(1 for r in self._results if r["image_id"] in id_set),
        }
        if verbose:
            print(format_summary(stats))
            print(f"mAP: {result['mAP']:.4f}")
            print(format_per_class_table(self.class_names, per_class, per_class_ap50, num_gt))
        return result


    def confusion_matrix(self, img_ids: Optional[Iterable[int]] = None, iou_threshold: float = 0.5,
                         score_threshold: float = 0.25) -> np.ndarray:
        """[C + 1, C + 1] counts of true class (rows) against predicted class (columns), background last; see
        src/evaluation/confusion.py for the matching. Ground-truth categories the model does not know are left out."""
        from .confusion import image_confusion
        label_of = {c: k for k, c in enumerate(self.category_ids)}
        matrix = np.zeros((len(self.class_names) + 1,) * 2, np.int64)
        detections: Dict[Any, List[Dict[str, Any]]] = {}
        for r in self._results:
            detections.setdefault(r["image_id"], []).append(r)
        ids = sorted(self._img_ids) if img_ids is None else [_as_id(i) for i in img_ids]
        for img_id in ids:
            anns = [a for a in self.coco_gt.imgToAnns.get(img_id, []) if a["category_id"] in label_of]
            gt = [a for a in anns if not a.get("iscrowd", 0)]
            crowd = [_xyxy(a["bbox"]) for a in anns if a.get("iscrowd", 0)]
            dets = detections.get(img_id, [])
            image_confusion(matrix, [_xyxy(a["bbox"]) for a in gt], [label_of[a["category_id"]] for a in gt],
                            [_xyxy(d["bbox"]) for d in dets], [label_of[d["category_id"]] for d in dets],
                            [d["score"] for d in dets], crowd, iou_threshold, score_threshold)
        return matrix


def _xyxy(bbox):
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


# pycocotools' 12 summary lines: (AP or AR, IoU threshold or None for 0.50:0.95, area range, max detections).
_SUMMARY_ROWS = [(1, None, "all", 100), (1, 0.5, "all", 100), (1, 0.75, "all", 100), (1, None, "small", 100),
                 (1, None, "medium", 100), (1, None, "large", 100), (0, None, "all", 1), (0, None, "all", 10),
                 (0, None, "all", 100), (0, None, "small", 100), (0, None, "medium", 100), (0, None, "large", 100)]


def format_summary(stats: Sequence[float]) -> str:
    """The 12-line summary in pycocotools' layout, from COCOeval.stats (the same text whichever engine ran)."""
    lines = []
    for value, (ap, iou, area, max_dets) in zip(stats, _SUMMARY_ROWS):
        title, kind = ("Average Precision", "(AP)") if ap else ("Average Recall", "(AR)")
        iou_text = "0.50:0.95" if iou is None else f"{iou:0.2f}"
        lines.append(f" {title:<18} {kind} @[ IoU={iou_text:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = "
                     f"{value:0.3f}")
    return "\n".join(lines)


def format_per_class_table(class_names: Sequence[str], ap: Dict[str, Optional[float]],
                           ap50: Dict[str, Optional[float]], num_gt: Dict[str, int]) -> str:
    """A text table with one row per class: name, AP@[.5:.95], AP50 and the number of non-crowd GT boxes."""
    width = max([len("class")] + [len(n) for n in class_names])

    def fmt(v: Optional[float]) -> str:
        return "  no GT" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:7.4f}"

    lines = [f"{'class':<{width}}  {'AP':>7}  {'AP50':>7}  {'GT':>6}"]
    for n in class_names:
        lines.append(f"{n:<{width}}  {fmt(ap.get(n))}  {fmt(ap50.get(n))}  {num_gt.get(n, 0):>6d}")
    return "\n".join(lines)

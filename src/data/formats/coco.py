"""COCO instances json -> records.

Categories sorted by id become labels 0..C-1 (``category_ids`` maps back). Images without annotations are kept as
pure background, because evaluation must cover every image and training benefits from negatives.
"""
from __future__ import annotations

import json
import os
from numbers import Real
from typing import Sequence

import numpy as np

from ..records import (DatasetError, ParsedDataset, Record, SkipReport, drop_bad_boxes, drop_duplicate_images,
                       fits_int64, resolve_image_path)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_image_id(v) -> bool:
    return _is_int(v) and fits_int64(v)


def _load_json(json_path: str):
    try:
        with open(json_path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"cannot read the COCO annotation {json_path}: {e.strerror or e}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{json_path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{json_path}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise DatasetError(f"{json_path}: malformed JSON: nested too deeply to read") from None
    except ValueError as e:  # e.g. a number with more digits than Python converts
        raise DatasetError(f"{json_path}: malformed JSON: {str(e).splitlines()[0]}") from None


def _list_field(doc: dict, key: str, json_path: str, required: bool) -> list:
    if key not in doc:
        if required:
            raise DatasetError(f"{json_path}: no '{key}' list; is this a COCO instances file?")
        return []
    value = doc[key]
    if not isinstance(value, list):
        raise DatasetError(f"{json_path}: '{key}' should be a list, found {type(value).__name__}")
    return value


def _category_map(categories: list, classes: Sequence[str] | None, json_path: str):
    """``{category id: label}``, the class names and their category ids; unknown names are errors."""
    by_id: dict[int, str] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise DatasetError(f"{json_path}: category #{i + 1} needs an integer 'id' and a string 'name': {cat!r:.80}")
        if cat["id"] in by_id:
            raise DatasetError(f"{json_path}: category id {cat['id']} appears twice")
        by_id[cat["id"]] = cat["name"]
    ordered = sorted(by_id)
    if classes:
        if len(set(classes)) != len(classes):
            raise DatasetError(f"the class list names a class twice: {list(classes)}")
        id_of_name: dict[str, int] = {}
        for cid in ordered:  # the lowest id wins if a name repeats
            id_of_name.setdefault(by_id[cid], cid)
        missing = [c for c in classes if c not in id_of_name]
        if missing:
            known = ", ".join(by_id[c] for c in ordered)
            raise DatasetError(f"{json_path}: classes {missing} are not among its categories ({known})")
        chosen = [id_of_name[c] for c in classes]
    else:
        chosen = ordered
    if not chosen:
        raise DatasetError(f"{json_path}: no categories")
    return {cid: k for k, cid in enumerate(chosen)}, [by_id[c] for c in chosen], chosen, set(by_id)


def _bbox_xyxy(bbox) -> tuple[float, float, float, float] | None:
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return None
    if not all(isinstance(v, Real) and not isinstance(v, bool) for v in bbox):
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except OverflowError:  # an integer beyond float range: not a coordinate
        return None
    return x, y, x + w, y + h


def _area(value) -> float:
    """COCO's "area" as a float, NaN when absent or unusable."""
    if not isinstance(value, Real) or isinstance(value, bool):
        return np.nan
    try:
        value = float(value)
    except OverflowError:
        return np.nan
    return value if value > 0 else np.nan


def parse_coco(json_path: str, image_dir: str, classes: Sequence[str] | None = None) -> ParsedDataset:
    """Read a COCO instances json; images are looked up under ``image_dir``.

    ``classes``: category names to keep, in label order (others are ignored silently); None keeps all.
    """
    doc = _load_json(json_path)
    if not isinstance(doc, dict):
        raise DatasetError(f"{json_path}: the top level should be an object with 'images' and 'categories'")
    name = os.path.basename(json_path)
    report = SkipReport()
    label_of, class_names, category_ids, all_category_ids = _category_map(
        _list_field(doc, "categories", json_path, True), classes, json_path)

    # Images first: annotations are attached to them by id.
    images = _list_field(doc, "images", json_path, True)
    if not images:
        raise DatasetError(f"{json_path}: 'images' is empty, so there is nothing to read")
    listed: dict[int, list[dict]] = {}      # image id -> its entries, in order
    for i, img in enumerate(images):
        img_id = img.get("id") if isinstance(img, dict) else None
        if not _is_image_id(img_id) or not isinstance(img.get("file_name"), str):
            report.skip_image(f"{name} (image #{i + 1})", "bad image entry",
                              "needs an integer 'id' (64-bit) and a 'file_name'")
            continue
        listed.setdefault(img_id, []).append(img)

    records: dict[int, Record] = {}
    skipped_ids: set[int] = set()
    for img_id, entries in listed.items():
        source = f"{name} (image id {img_id})"
        file_names = list(dict.fromkeys(e["file_name"] for e in entries))
        if len(file_names) > 1:
            # Annotations name only the id: which image they belong to is unknown, so none of them is used.
            for e in entries:
                report.skip_image(source, "duplicate image id", f"{e['file_name']}; the id is shared by "
                                  f"{', '.join(file_names)}, so its annotations cannot be assigned")
            skipped_ids.add(img_id)
            continue
        img = entries[0]
        for _ in entries[1:]:
            report.skip_image(source, "duplicate image id", f"{img['file_name']} is listed again under the same id")
        path = resolve_image_path(image_dir, img["file_name"])
        if path is None:
            report.skip_image(source, "path outside image folder", img["file_name"])
            skipped_ids.add(img_id)
            continue
        width, height = img.get("width"), img.get("height")
        size_known = _is_int(width) and _is_int(height) and width > 0 and height > 0
        records[img_id] = Record(img_id=img_id, path=path, file_name=img["file_name"],
                                 boxes=np.zeros((0, 4), np.float32), labels=np.zeros((0,), np.int32),
                                 iscrowd=np.zeros((0,), bool), width=width if size_known else 0,
                                 height=height if size_known else 0, source=source)

    # Annotations: gather per image in python lists (json objects need a loop anyway), check boxes vectorised later.
    per_image: dict[int, list] = {}
    for i, ann in enumerate(_list_field(doc, "annotations", json_path, False)):
        if not isinstance(ann, dict):
            report.drop_boxes(f"{name} (annotation #{i + 1})", "malformed annotation", detail=f"{ann!r:.60}")
            continue
        ann_id = ann.get("id", f"#{i + 1}")
        img_id, cat_id = ann.get("image_id"), ann.get("category_id")
        if _is_int(img_id) and img_id in skipped_ids:
            continue  # its image is already reported as skipped
        record = records.get(img_id) if _is_int(img_id) else None
        if record is None:
            report.drop_boxes(f"{name} (annotation id {ann_id})", "unknown image id", detail=f"image id {img_id!r:.40}")
            continue
        if not _is_int(cat_id) or cat_id not in all_category_ids:
            report.drop_boxes(record.source, "unknown class",
                              detail=f"annotation id {ann_id}: category id {cat_id!r:.40}")
            continue
        if cat_id not in label_of:
            continue  # a known category that ``classes`` did not select: ignored on purpose
        box = _bbox_xyxy(ann.get("bbox"))
        if box is None:
            report.drop_boxes(record.source, "malformed box",
                              detail=f"annotation id {ann_id}: bbox {ann.get('bbox')!r:.60}")
            continue
        area = _area(ann.get("area"))
        per_image.setdefault(img_id, []).append((box, label_of[cat_id], bool(ann.get("iscrowd", 0)), area, ann_id))

    for img_id, anns in per_image.items():
        record = records[img_id]
        with np.errstate(over="ignore"):  # beyond float32: inf, dropped as not finite
            boxes = np.array([a[0] for a in anns], np.float32).reshape(-1, 4)
            areas = np.array([a[3] for a in anns], np.float32)
        keep = drop_bad_boxes(boxes, report, record.source, [f"annotation id {a[4]}" for a in anns])
        areas = areas[keep]
        record.boxes = boxes[keep]
        record.labels = np.array([a[1] for a in anns], np.int32)[keep]
        record.iscrowd = np.array([a[2] for a in anns], bool)[keep]
        # COCO's own "area" (of the segment) decides small/medium/large in COCOeval; keep it when every box has one.
        record.areas = areas if len(areas) and np.isfinite(areas).all() else None

    # Two ids naming one file: the same image twice (see drop_duplicate_images).
    return ParsedDataset(records=drop_duplicate_images(list(records.values()), report), class_names=class_names,
                         category_ids=category_ids, report=report, source=json_path)

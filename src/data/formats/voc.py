"""Pascal VOC xml -> records, in the model zoo's layout.

``voc_root/train/`` and ``voc_root/eval/`` each hold ``.xml`` and image files, either side by side or in
``Annotations/`` and ``Images/`` (or ``JPEGImages/``) subfolders. VOC coordinates are 1-based inclusive pixels, so
``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax`` (the detectron2 convention) gives 0-based xyxy.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..records import (DatasetError, ParsedDataset, Record, SkipReport, drop_bad_boxes, drop_duplicate_images,
                       fits_int64, resolve_image_path)

IMAGE_FOLDERS = ("Images", "JPEGImages")


@dataclass
class _VocObject:
    name: str
    box: tuple[float, float, float, float] | None  # None: a coordinate is missing or not a number
    difficult: bool


@dataclass
class _VocFile:
    xml_path: str
    source: str                     # e.g. "eval/000123.xml"
    file_name: str = ""
    width: int = 0
    height: int = 0
    objects: list[_VocObject] = field(default_factory=list)
    error: str = ""                 # set when the xml could not be read


def _layout(split_dir: str) -> tuple[str, str]:
    """(folder of the xml files, folder of the images)."""
    if not os.path.isdir(split_dir):
        raise DatasetError(f"VOC folder {split_dir} does not exist")
    anno_dir = os.path.join(split_dir, "Annotations")
    if not os.path.isdir(anno_dir):
        return split_dir, split_dir
    for folder in IMAGE_FOLDERS:
        if os.path.isdir(os.path.join(split_dir, folder)):
            return anno_dir, os.path.join(split_dir, folder)
    raise DatasetError(f"{split_dir} has Annotations/ but neither of {', '.join(IMAGE_FOLDERS)}/")


def _text(node: ET.Element, tag: str) -> str:
    child = node.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_xml(xml_path: str, source: str) -> _VocFile:
    entry = _VocFile(xml_path=xml_path, source=source)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        line, column = e.position
        entry.error = f"line {line}, column {column + 1}: {str(e).split(':')[0]}"
        return entry
    except OSError as e:
        entry.error = f"cannot read: {e.strerror or e}"
        return entry
    entry.file_name = _text(root, "filename")
    size = root.find("size")
    if size is not None:
        w, h = _number(_text(size, "width")), _number(_text(size, "height"))
        if w is not None and h is not None and w > 0 and h > 0 and w.is_integer() and h.is_integer():
            entry.width, entry.height = int(w), int(h)
    for obj in root.findall("object"):
        bnd = obj.find("bndbox")
        coords = [_number(_text(bnd, t)) if bnd is not None else None for t in ("xmin", "ymin", "xmax", "ymax")]
        box = None
        if all(c is not None for c in coords):
            xmin, ymin, xmax, ymax = coords
            box = (xmin - 1.0, ymin - 1.0, xmax, ymax)
        entry.objects.append(_VocObject(name=_text(obj, "name"), box=box, difficult=_text(obj, "difficult") == "1"))
    return entry


def _read_split(split_dir: str) -> tuple[list[_VocFile], str]:
    anno_dir, image_dir = _layout(split_dir)
    names = sorted(n for n in os.listdir(anno_dir) if n.lower().endswith(".xml"))
    if not names:
        raise DatasetError(f"no .xml annotation files in {anno_dir}")
    parent = os.path.dirname(os.path.abspath(split_dir))
    return [_read_xml(os.path.join(anno_dir, n), os.path.relpath(os.path.join(anno_dir, n), parent))
            for n in names], image_dir


def collect_voc_classes(split_dir: str) -> list[str]:
    """The sorted object names found in a split (pass the training split's names when reading eval)."""
    files, _ = _read_split(split_dir)
    return sorted({o.name for f in files for o in f.objects if o.name})


def _image_ids(files: list[_VocFile]) -> list[int]:
    """Numeric stems when all of them are numeric and distinct (ids users recognise), else 1, 2, ... in order."""
    stems = [os.path.splitext(os.path.basename(f.xml_path))[0] for f in files]
    if all(s.isascii() and s.isdigit() for s in stems):
        ids = [int(s) for s in stems]
        if len(set(ids)) == len(ids) and all(fits_int64(i) for i in ids):
            return ids
    return list(range(1, len(files) + 1))


def parse_voc(split_dir: str, classes: Sequence[str] | None = None) -> ParsedDataset:
    """Read one split folder (``voc_root/train`` or ``voc_root/eval``).

    ``classes``: names in label order; None takes the sorted names found in this split (with a warning, since
    train and eval must agree).
    """
    files, image_dir = _read_split(split_dir)
    report = SkipReport()
    if not classes:
        classes = sorted({o.name for f in files for o in f.objects if o.name})
        if not classes:
            raise DatasetError(f"{split_dir}: no objects in any .xml file, so no class names can be derived")
        report.warn(split_dir, f"no class names given; using the {len(classes)} names found here: {classes}")
    label_of = {name: k for k, name in enumerate(classes)}

    records = []
    for entry, img_id in zip(files, _image_ids(files)):
        if entry.error:
            report.skip_image(entry.source, "bad XML", entry.error)
            continue
        file_name = entry.file_name or os.path.splitext(os.path.basename(entry.xml_path))[0] + ".jpg"
        path = resolve_image_path(image_dir, file_name)
        if path is None:
            report.skip_image(entry.source, "path outside image folder", file_name)
            continue
        boxes, labels, difficult, names = [], [], [], []
        for k, obj in enumerate(entry.objects, start=1):
            if obj.box is None:
                report.drop_boxes(entry.source, "malformed box", detail=f"object {k} ({obj.name})")
            elif obj.name not in label_of:
                report.drop_boxes(entry.source, "unknown class", detail=f"object {k}: '{obj.name}'")
            else:
                boxes.append(obj.box)
                labels.append(label_of[obj.name])
                difficult.append(obj.difficult)
                names.append(f"object {k} ({obj.name})")
        with np.errstate(over="ignore"):  # beyond float32: inf, dropped as not finite
            boxes = np.array(boxes, np.float32).reshape(-1, 4)
        keep = drop_bad_boxes(boxes, report, entry.source, names)
        records.append(Record(img_id=img_id, path=path, file_name=file_name, boxes=boxes[keep],
                              labels=np.array(labels, np.int32)[keep], iscrowd=np.array(difficult, bool)[keep],
                              width=entry.width, height=entry.height, source=entry.source))
    return ParsedDataset(records=drop_duplicate_images(records, report), class_names=list(classes),
                         category_ids=list(range(1, len(classes) + 1)), report=report, source=split_dir)

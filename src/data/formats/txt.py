"""TXT ("other") annotations -> records.

One image per line: a path relative to the image folder, then boxes ``x1,y1,x2,y2,class_index`` in pixels, x first:

    train2017/0001.jpg 0,259,401,459,7 35,28,324,201,2

Blank lines and lines starting with ``#`` are ignored. The image id is the line number, so it stays the same when
other lines are fixed or removed.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..records import (DatasetError, ParsedDataset, Record, SkipReport, drop_bad_boxes, drop_duplicate_images,
                       resolve_image_path)

# Without class names, names are made up to the largest index in the file; a typo such as 10000000 should be an
# error naming the line, not ten million made-up classes.
MAX_DERIVED_CLASSES = 10000


class _BadLine(ValueError):
    pass


def _parse_box(token: str) -> tuple[float, float, float, float, int]:
    parts = token.split(",")
    if len(parts) != 5:
        raise _BadLine(f"'{token}' has {len(parts)} fields, expected x1,y1,x2,y2,class_index")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts[:4])
        cls = float(parts[4])
    except ValueError:
        raise _BadLine(f"'{token}' is not x1,y1,x2,y2,class_index numbers") from None
    if not cls.is_integer() or abs(cls) >= 2**31:
        raise _BadLine(f"'{token}' has a class index that is not a whole number")
    return x1, y1, x2, y2, int(cls)


def _read_lines(anno_path: str) -> list[tuple[int, str, list]]:
    """(line number, image path, boxes) of the well-formed lines; malformed ones come back with boxes None."""
    try:
        with open(anno_path, "rb") as f:
            raw_lines = f.read().splitlines()
    except OSError as e:
        raise DatasetError(f"cannot read the annotation file {anno_path}: {e.strerror or e}") from None
    rows = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            # utf-8-sig on the first line: editors on Windows start the file with a byte-order mark
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError:
            rows.append((number, "", "not UTF-8 text"))
            continue
        if not line or line.startswith("#"):
            continue
        path, *tokens = line.split()
        try:
            rows.append((number, path, [_parse_box(t) for t in tokens]))
        except _BadLine as e:
            rows.append((number, path, str(e)))
    return rows


def _class_list(classes, shown=5):
    return ", ".join(classes[:shown]) + (", ..." if len(classes) > shown else "")


def parse_txt(anno_path: str, image_dir: str, classes: Sequence[str] | None) -> ParsedDataset:
    """Read a TXT annotation file; ``classes`` gives the name of each class index.

    Without ``classes``, names ``class_0..class_{max}`` are made from the largest index in the file (a warning says
    so: the names then mean nothing to the reader of the results).
    """
    name = os.path.basename(anno_path)
    report = SkipReport()
    rows = _read_lines(anno_path)
    if not rows:
        raise DatasetError(f"{anno_path} lists no images (it is empty or holds only comments)")
    if not classes:
        indices = [(b[4], number) for number, _, boxes in rows if isinstance(boxes, list) for b in boxes if b[4] >= 0]
        if not indices:
            raise DatasetError(f"{anno_path}: no class names given and no valid box to derive them from")
        largest, number = max(indices)
        if largest >= MAX_DERIVED_CLASSES:
            raise DatasetError(f"{name}:{number}: class index {largest} with no class names given; pass the names "
                               "with --classes (or fix the index)")
        classes = [f"class_{k}" for k in range(largest + 1)]
        report.warn(name, f"no class names given; using class_0..class_{len(classes) - 1} from the data")
    num_classes = len(classes)

    records = []
    for number, rel, boxes in rows:
        source = f"{name}:{number}"
        if isinstance(boxes, str):
            report.skip_image(source, "malformed line", boxes)
            continue
        path = resolve_image_path(image_dir, rel)
        if path is None:
            report.skip_image(source, "path outside image folder", rel)
            continue
        table = np.array(boxes, np.float64).reshape(-1, 5)
        labels = table[:, 4].astype(np.int64)
        if (labels >= num_classes).any():
            # Not a bad record but data and config that disagree: going on would drop most boxes and learn nothing.
            k = int(np.flatnonzero(labels >= num_classes)[0])
            raise DatasetError(f"{anno_path}:{number}: box {k + 1} has class index {labels[k]}, but there are "
                               f"{num_classes} classes ({_class_list(classes)}); indices run from 0 to "
                               f"{num_classes - 1}. Check --classes against the data")
        known = labels >= 0
        for k in np.flatnonzero(~known):
            report.drop_boxes(source, "unknown class", detail=f"box {k + 1}: class index {labels[k]}, "
                                                              f"{num_classes} classes")
        box_names = [f"box {k + 1}" for k in np.flatnonzero(known)]
        with np.errstate(over="ignore"):  # beyond float32: inf, dropped as not finite
            xyxy = table[known, :4].astype(np.float32)
        keep = drop_bad_boxes(xyxy, report, source, box_names)
        records.append(Record(img_id=number, path=path, file_name=rel, boxes=xyxy[keep],
                              labels=labels[known][keep].astype(np.int32), iscrowd=np.zeros(int(keep.sum()), bool),
                              source=source))
    return ParsedDataset(records=drop_duplicate_images(records, report), class_names=list(classes),
                         category_ids=list(range(1, num_classes + 1)), report=report, source=anno_path)

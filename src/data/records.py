"""What every dataset reader produces, and the checks shared by all of them.

A reader turns an annotation source (COCO json, VOC xml, TXT lines) into ``Record``s and a ``SkipReport``.
Nothing here decides how records are stored or trained on; the MindRecord writer and the evaluator build on it.

Conventions: boxes are float32 pixel ``x1, y1, x2, y2`` in the original image, labels are contiguous ``0..C-1``,
``category_ids[k]`` is the COCO category id of label ``k``.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import DatasetError  # noqa: F401  (re-exported)
from .image_io import MAX_IMAGE_PIXELS, decode_bgr, image_header, too_large

# Annotation tools round coordinates, so COCO boxes often poke out of the image by a fraction of a pixel. Clipping
# those is silent; only boxes that move by more than this many pixels are counted as clipped.
CLIP_TOLERANCE_PX = 1.0


@dataclass
class Record:
    """One image and its boxes, as read from the annotation (before the image itself is checked)."""

    img_id: int
    path: str                      # absolute path of the image
    file_name: str                 # the image name as written in the annotation
    boxes: np.ndarray              # float32 [N, 4] xyxy pixels
    labels: np.ndarray             # int32 [N], 0..C-1
    iscrowd: np.ndarray            # bool [N]; COCO crowd or VOC difficult: evaluated, never trained on
    width: int = 0                 # 0 when the annotation does not say
    height: int = 0
    source: str = ""               # where the record came from, for messages: "train.txt:17"
    areas: np.ndarray | None = None  # float32 [N] COCO "area" (segment area); None means box area

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the boxes where ``mask`` is True (all per-box arrays stay aligned)."""
        self.boxes = self.boxes[mask]
        self.labels = self.labels[mask]
        self.iscrowd = self.iscrowd[mask]
        if self.areas is not None:
            self.areas = self.areas[mask]


@dataclass
class ParsedDataset:
    """A reader's output. Records are as annotated: ``iter_checked_images`` checks them against the images."""

    records: list[Record]
    class_names: list[str]
    category_ids: list[int]
    report: "SkipReport"
    source: str = ""               # the annotation file or folder, named in errors


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class SkipReport:
    """Collects data problems: skipped images, dropped boxes, clipped boxes, and plain warnings.

    Every problem becomes one line naming its source. Only the first ``max_printed`` lines are printed (a big broken
    dataset would otherwise bury the log); all of them are kept in ``messages`` and counted in ``summary``.
    """

    def __init__(self, max_printed: int = 20, printer: Callable[[str], None] = _stderr_line):
        self.max_printed = max_printed
        self.printer = printer
        self.messages: list[str] = []
        self.skip_reasons: Counter[str] = Counter()
        self.drop_reasons: Counter[str] = Counter()
        self.boxes_clipped = 0
        self.sizes_corrected = 0

    # -- recording ---------------------------------------------------------------------------------------------
    def _emit(self, line: str) -> None:
        self.messages.append(line)
        if len(self.messages) <= self.max_printed:
            self.printer(f"WARNING: {line}")
        elif len(self.messages) == self.max_printed + 1:
            self.printer("WARNING: more data problems follow; they are not printed, the summary counts them")

    def skip_image(self, source: str, reason: str, detail: str = "") -> None:
        self.skip_reasons[reason] += 1
        self._emit(f"{source}: skipped image: {reason}" + (f" ({detail})" if detail else ""))

    def drop_boxes(self, source: str, reason: str, count: int = 1, detail: str = "") -> None:
        if count <= 0:
            return
        self.drop_reasons[reason] += count
        noun = "box" if count == 1 else f"{count} boxes"
        self._emit(f"{source}: dropped {noun}: {reason}" + (f" ({detail})" if detail else ""))

    def clip_boxes(self, source: str, count: int, detail: str = "") -> None:
        if count <= 0:
            return
        self.boxes_clipped += count
        noun = "box" if count == 1 else f"{count} boxes"
        self._emit(f"{source}: clipped {noun} to the image" + (f" ({detail})" if detail else ""))

    def correct_size(self, source: str, detail: str) -> None:
        self.sizes_corrected += 1
        self._emit(f"{source}: {detail}")

    def warn(self, source: str, message: str) -> None:
        """A problem that is neither a skip nor a box change (e.g. class names derived from the data)."""
        self._emit(f"{source}: {message}")

    # -- reading -----------------------------------------------------------------------------------------------
    @property
    def images_skipped(self) -> int:
        return sum(self.skip_reasons.values())

    @property
    def boxes_dropped(self) -> int:
        return sum(self.drop_reasons.values())

    @property
    def not_printed(self) -> int:
        return max(0, len(self.messages) - self.max_printed)

    def summary(self, total: int) -> str:
        """One line: ``skipped 3 of 1200 images (2 missing image, 1 unreadable image); dropped 4 boxes
        (3 zero-area or inverted, 1 unknown class); clipped 7 boxes``."""

        def breakdown(counter: Counter[str]) -> str:
            if not counter:
                return ""
            return " (" + ", ".join(f"{n} {reason}" for reason, n in counter.most_common()) + ")"

        line = (f"skipped {self.images_skipped} of {total} images{breakdown(self.skip_reasons)}; "
                f"dropped {self.boxes_dropped} boxes{breakdown(self.drop_reasons)}; "
                f"clipped {self.boxes_clipped} boxes")
        if self.sizes_corrected:
            line += f"; corrected {self.sizes_corrected} image sizes"
        if self.not_printed:
            line += f" ({self.not_printed} warnings not printed)"
        return line


def resolve_image_path(image_dir: str, rel: str) -> str | None:
    """The absolute path of ``rel`` inside ``image_dir``, or None when it is absolute or leaves the folder.

    The check is made after normalisation (``a/../../x`` leaves), against the folder with its own symlinks resolved.
    Symlinks *inside* the folder are followed later as usual: a dataset folder made of links is a common layout,
    and whoever placed them controls the data anyway; the annotation text is what we do not trust.
    """
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return None
    if os.path.isabs(rel) or os.path.splitdrive(rel)[0]:
        return None
    root = os.path.realpath(image_dir)
    full = os.path.normpath(os.path.join(root, rel))
    if full == root or os.path.commonpath([root, full]) != root:
        return None
    return full


def drop_bad_boxes(boxes: np.ndarray, report: SkipReport, source: str,
                   names: Sequence[str] | None = None) -> np.ndarray:
    """Mask of boxes that are finite and have positive width and height; the others are reported one by one.

    ``names[i]`` says which box it is in the source ("annotation id 17", "object 3") for the message.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    with np.errstate(invalid="ignore"):
        positive = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    keep = finite & positive
    for i in np.flatnonzero(~keep):
        reason = "not a finite number" if not finite[i] else "zero-area or inverted"
        what = names[i] if names is not None else f"box {i + 1}"
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        report.drop_boxes(source, reason, detail=f"{what}: x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g}")
    return keep


def fits_int64(value: int) -> bool:
    """Image ids are stored as int64 in the MindRecord."""
    return -2**63 <= value < 2**63


def _box_table(record: Record) -> np.ndarray:
    """The record's boxes, labels and crowd flags as sorted rows: equal tables mean the same annotation."""
    table = np.concatenate([record.boxes.astype(np.float64), record.labels[:, None].astype(np.float64),
                            record.iscrowd[:, None].astype(np.float64)], axis=1)
    return table[np.lexsort(table.T[::-1])] if len(table) else table


def drop_duplicate_images(records: list[Record], report: SkipReport) -> list[Record]:
    """One record per image file.

    A file listed twice with the same boxes is a harmless repeat: the first listing is kept. Listed with different
    boxes, it is not known which annotation is right (or whether the lines were meant to be merged), and training
    or evaluating on a partial one is wrong without saying so: every listing is skipped and reported.
    """
    listings: dict[str, list[Record]] = {}
    for record in records:
        listings.setdefault(record.path, []).append(record)
    kept = []
    for record in records:
        group = listings[record.path]
        if len(group) == 1:
            kept.append(record)
            continue
        first = group[0]
        if all(np.array_equal(_box_table(first), _box_table(other)) for other in group[1:]):
            if record is first:
                kept.append(record)
            else:
                report.skip_image(record.source, "duplicate image",
                                  f"{record.file_name} is already listed at {first.source} with the same boxes")
        else:
            others = ", ".join(other.source for other in group if other is not record)
            report.skip_image(record.source, "duplicate image",
                              f"{record.file_name} is also listed at {others} with other boxes; "
                              "not knowing which are right, none is used")
    return kept


def check_image(record: Record, data: bytes, report: SkipReport) -> tuple[int, int] | None:
    """Check ``record`` against its real image; returns ``(height, width)``, or None when the image is skipped.

    The size used is that of the decoded image (IMREAD_COLOR, as training decodes it), after the header's size is
    checked against MAX_IMAGE_PIXELS. The image's format is read from its bytes, not its name (a PNG named .jpg is
    fine: training decodes by content too). The record is updated in place: true width and height, boxes clipped
    to the image, boxes left empty by clipping dropped.
    """
    if not data:
        report.skip_image(record.source, "unreadable image", f"{record.file_name}: empty file")
        return None
    kind, header_hw = image_header(data)
    if header_hw is not None and header_hw[0] * header_hw[1] > MAX_IMAGE_PIXELS:
        report.skip_image(record.source, "image too large", f"{record.file_name}: {too_large(*header_hw)}")
        return None
    image = decode_bgr(data)
    if image is None or image.ndim < 2 or image.shape[0] == 0 or image.shape[1] == 0:
        what = "not a readable image" if kind == "other" else f"corrupt or truncated {kind} data"
        report.skip_image(record.source, "unreadable image", f"{record.file_name}: {what}")
        return None
    h, w = int(image.shape[0]), int(image.shape[1])
    if h * w > MAX_IMAGE_PIXELS:  # a format whose header we do not read
        report.skip_image(record.source, "image too large", f"{record.file_name}: {too_large(h, w)}")
        return None
    if (record.width or record.height) and (record.width, record.height) != (w, h):
        report.correct_size(record.source, f"annotation says {record.width}x{record.height}, "
                                           f"image {record.file_name} is {w}x{h}; using the image size")
    record.width, record.height = w, h

    if len(record.boxes):
        limits = np.array([w, h, w, h], np.float32)
        clipped = np.clip(record.boxes, 0.0, limits)
        moved = np.abs(clipped - record.boxes).max(axis=1) > CLIP_TOLERANCE_PX
        nonempty = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        record.boxes = clipped.astype(np.float32)
        outside = int((~nonempty).sum())
        if outside:
            report.drop_boxes(record.source, "outside image", outside, f"{w}x{h} image {record.file_name}")
            record.keep(nonempty)
            moved = moved[nonempty]
        report.clip_boxes(record.source, int(moved.sum()), f"{w}x{h} image {record.file_name}")
    return h, w


def read_image_bytes(record: Record, report: SkipReport) -> bytes | None:
    """The file's bytes, or None (reported as a missing or unreadable image)."""
    try:
        with open(record.path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        report.skip_image(record.source, "missing image", record.path)
    except IsADirectoryError:
        report.skip_image(record.source, "missing image", f"{record.path} is a folder")
    except OSError as e:
        report.skip_image(record.source, "unreadable image", f"{record.path}: {e.strerror or e}")
    return None


def iter_checked_images(parsed: ParsedDataset) -> Iterator[tuple[Record, bytes]]:
    """Each usable record with its image bytes, after ``check_image``; problems go to ``parsed.report``."""
    for record in parsed.records:
        data = read_image_bytes(record, parsed.report)
        if data is not None and check_image(record, data, parsed.report) is not None:
            yield record, data


def _rounded(v) -> float:
    # float32 -> float gives 12.300000190734863; four decimals keep the json readable and exact enough (< 1e-4 px).
    return round(float(v), 4)


def to_coco_gt(records: Sequence[Record], class_names: Sequence[str], category_ids: Sequence[int]) -> dict:
    """A COCO ground truth of validated records (crowd boxes included, flagged), for pycocotools.

    Every format is evaluated against such a dict, so the same data in any format gives the same ground truth.
    """
    if len(class_names) != len(category_ids):
        raise ValueError(f"{len(class_names)} class names but {len(category_ids)} category ids")
    images, annotations = [], []
    for r in records:
        images.append({"id": int(r.img_id), "file_name": r.file_name, "width": int(r.width), "height": int(r.height)})
        boxes = np.asarray(r.boxes, np.float64).reshape(-1, 4)
        wh = boxes[:, 2:] - boxes[:, :2]
        areas = wh[:, 0] * wh[:, 1] if r.areas is None else np.asarray(r.areas, np.float64)
        for (x1, y1, _, _), (bw, bh), area, label, crowd in zip(boxes, wh, areas, r.labels, r.iscrowd):
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": int(r.img_id),
                "category_id": int(category_ids[int(label)]),
                "bbox": [_rounded(x1), _rounded(y1), _rounded(bw), _rounded(bh)],
                "area": _rounded(area),
                "iscrowd": int(bool(crowd)),
            })
    categories = [{"id": int(c), "name": str(n), "supercategory": ""} for n, c in zip(class_names, category_ids)]
    return {"info": {"description": "ground truth written by src.data"}, "images": images,
            "annotations": annotations, "categories": categories}

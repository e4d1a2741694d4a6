"""Validated records -> one MindRecord file, written once, atomically, and reused while its sources are unchanged.

Columns (what ``mindspore.dataset.MindDataset`` reads):
    image      bytes                 the image file as it is on disk (decode with ``image_io.decode_bgr``)
    boxes      float32 [-1, 4]       non-crowd boxes, xyxy pixels of the original image
    labels     int32   [-1]          0..C-1
    num_boxes  int32                 how many rows of boxes/labels are real
    img_id     int64                 the image id of the ground-truth json

MindRecord (MindSpore 2.10) cannot store an empty array: a [0, 4] column is written without error but reads back as
a 0-d array holding whatever was in memory. So an image without boxes stores one padding row (zeros, label -1) and
``num_boxes`` 0; ``unpack_targets`` returns the real rows. A bytes column arrives in python as a numpy array of dtype
``S<len>`` and shape (1,).

A MindRecord file and its ``.db`` index record the file's *basename* (header ``shard_addresses`` and the index's
SHARD_NAME table): renaming ``x.mindrecord`` to ``y.mindrecord`` breaks it, moving it to another folder does not.
So a build is written under its final basename in a temporary folder and moved into place.

Files in ``out_dir`` for ``name``: ``{name}.mindrecord`` (+ ``.db``), ``{name}_gt.json`` (COCO ground truth, crowd
boxes included), and ``{name}.meta.json`` (fingerprint, classes, counts), which is written last: a build without it
is never reused.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from ..fileio import fsync_dir, write_json_atomic
from .records import DatasetError, ParsedDataset, iter_checked_images, to_coco_gt

SCHEMA = {
    "image": {"type": "bytes"},
    "boxes": {"type": "float32", "shape": [-1, 4]},
    "labels": {"type": "int32", "shape": [-1]},
    "num_boxes": {"type": "int32"},
    "img_id": {"type": "int64"},
}
COLUMNS = list(SCHEMA)
# The cache's one version: bump it when the readers or the stored layout change, so that old builds are rebuilt.
CACHE_VERSION = 3
ROWS_PER_WRITE = 64       # bounds the image bytes held in memory while writing
PROGRESS_EVERY = 5000     # a COCO-sized build takes minutes: say that it is moving
# Files whose change means a rebuild: annotations, and the images themselves (one added later must not be missed).
SOURCE_SUFFIXES = (".json", ".xml", ".txt", ".jpg", ".jpeg", ".png", ".bmp")
OUTPUT_SUFFIXES = ("_gt.json", ".meta.json")


@dataclass
class MindRecordInfo:
    path: str                 # the .mindrecord file, for MindDataset
    gt_json: str              # COCO ground truth of exactly the images in the file
    num_images: int
    class_names: list[str]
    category_ids: list[int]


# -- reading helpers for the data pipeline -----------------------------------------------------------------------
def unpack_targets(boxes: np.ndarray, labels: np.ndarray, num_boxes) -> tuple[np.ndarray, np.ndarray]:
    """The real ``boxes [N, 4]`` float32 and ``labels [N]`` int32 of a row (drops the padding of an empty image)."""
    n = int(np.asarray(num_boxes).reshape(-1)[0])
    return (np.asarray(boxes, np.float32).reshape(-1, 4)[:n],
            np.asarray(labels, np.int32).reshape(-1)[:n])


def _row(img_id: int, data: bytes, boxes: np.ndarray, labels: np.ndarray) -> dict:
    n = len(boxes)
    if n == 0:  # see the module doc: empty arrays do not survive MindRecord
        boxes, labels = np.zeros((1, 4), np.float32), np.full((1,), -1, np.int32)
    return {"image": data, "boxes": np.ascontiguousarray(boxes, np.float32),
            "labels": np.ascontiguousarray(labels, np.int32), "num_boxes": n, "img_id": int(img_id)}


# -- fingerprints ------------------------------------------------------------------------------------------------
def source_fingerprint(paths: Iterable[str], suffixes: Sequence[str] = SOURCE_SUFFIXES) -> list[dict]:
    """Path, size and mtime of each source file; for a folder, a digest of those of its annotation and image files.

    A folder's own mtime changes only when entries are added or removed, not when an xml is edited, so folders are
    walked. Only files ending in ``suffixes`` count (annotations and images), and never our own outputs
    (``*_gt.json``, ``*.meta.json``, hidden temporary folders): the MindRecord folder may well live inside the data
    folder.
    Add the result to the fingerprint together with the config keys that change the records.
    """
    out = []
    for path in paths:
        path = os.path.abspath(path)
        if os.path.isfile(path):
            st = os.stat(path)
            out.append({"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        elif os.path.isdir(path):
            digest, count = hashlib.sha1(), 0
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for fname in sorted(files):
                    if fname.lower().endswith(tuple(suffixes)) and not fname.endswith(OUTPUT_SUFFIXES):
                        st = os.stat(os.path.join(folder, fname))
                        rel = os.path.relpath(os.path.join(folder, fname), path)
                        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                        count += 1
            out.append({"path": path, "files": count, "digest": digest.hexdigest()})
        else:
            out.append({"path": path, "missing": True})
    return out


def _normalised(value):
    """The value as it reads back from json (tuples become lists), so that a fresh fingerprint compares equal."""
    return json.loads(json.dumps(value, sort_keys=True))


# -- files -------------------------------------------------------------------------------------------------------
def _paths(out_dir: str, name: str) -> dict[str, str]:
    base = os.path.join(out_dir, name)
    return {"mindrecord": f"{base}.mindrecord", "db": f"{base}.mindrecord.db", "gt": f"{base}_gt.json",
            "meta": f"{base}.meta.json"}


def _reusable(paths: dict[str, str], fingerprint) -> dict | None:
    """The meta of a complete build made from the same fingerprint, else None."""
    try:
        with open(paths["meta"]) as f:
            meta = json.load(f)
        if meta.get("version") != CACHE_VERSION or meta.get("fingerprint") != fingerprint:
            return None
        # Sizes recorded at build time: a file replaced or truncated since then is not the build we described.
        for key, size in meta["file_sizes"].items():
            if os.path.getsize(paths[key]) != size:
                return None
        return meta
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _temp_prefix(name: str) -> str:
    # host and pid in the name: a leftover can be told from a build still running, even on a shared filesystem
    return f".{name}.build-{socket.gethostname()}-"


def _remove_stale_temps(out_dir: str, name: str) -> None:
    """Temporary folders of builds on this host whose process is gone (killed mid-write)."""
    prefix = _temp_prefix(name)
    for folder in glob.glob(os.path.join(glob.escape(out_dir), glob.escape(prefix) + "*")):
        try:
            pid = int(os.path.basename(folder)[len(prefix):].split("-")[0])
            os.kill(pid, 0)
            continue  # still running (maybe another rank building the same set)
        except ValueError:
            pass
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        shutil.rmtree(folder, ignore_errors=True)


def _info(paths: dict[str, str], meta: dict) -> MindRecordInfo:
    return MindRecordInfo(path=paths["mindrecord"], gt_json=paths["gt"], num_images=meta["num_images"],
                          class_names=list(meta["class_names"]), category_ids=list(meta["category_ids"]))


def _write_build(parsed: ParsedDataset, tmp_dir: str, name: str) -> tuple[list, int]:
    """Write ``{name}.mindrecord`` and ``{name}_gt.json`` into ``tmp_dir``; returns (records kept, boxes written)."""
    from mindspore.mindrecord import FileWriter

    tmp_paths = _paths(tmp_dir, name)
    writer = FileWriter(tmp_paths["mindrecord"], shard_num=1, overwrite=True)
    writer.add_schema(SCHEMA, "detection records: image bytes, non-crowd xyxy boxes, labels")
    kept, rows, num_boxes = [], [], 0
    for record, data in iter_checked_images(parsed):
        train = ~record.iscrowd
        rows.append(_row(record.img_id, data, record.boxes[train], record.labels[train]))
        kept.append(record)
        num_boxes += int(train.sum())
        if len(rows) == ROWS_PER_WRITE:
            writer.write_raw_data(rows)
            rows = []
        if len(kept) % PROGRESS_EVERY == 0:
            print(f"{name}: {len(kept)} of {len(parsed.records)} images written", flush=True)
    if not kept:
        return kept, 0  # the caller reports it; the writer is abandoned with its folder
    if rows:
        writer.write_raw_data(rows)
    writer.commit()
    with open(tmp_paths["gt"], "w") as f:
        json.dump(to_coco_gt(kept, parsed.class_names, parsed.category_ids), f)
    return kept, num_boxes


def _count_rows(path: str) -> int:
    import mindspore.dataset as ds

    return ds.MindDataset(path, columns_list=["img_id"], shuffle=False).get_dataset_size()


def ensure_mindrecord(parsed_factory: Callable[[], ParsedDataset], out_dir: str, name: str, fingerprint: dict,
                      force: bool = False, build: bool = True) -> MindRecordInfo:
    """The MindRecord build ``name`` in ``out_dir``: reused when its fingerprint matches, else rebuilt.

    ``parsed_factory()`` reads the annotations; it is called only when a rebuild is needed. ``fingerprint`` should
    hold ``source_fingerprint(...)`` of the annotation files and every config key that changes the records.
    ``build=False`` (a process that waited for another one's build) raises DatasetError instead of rebuilding.
    """
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"name should be a plain file name, got {name!r}")
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = _paths(out_dir, name)
    fingerprint = _normalised(fingerprint)
    meta = None if force else _reusable(paths, fingerprint)
    if meta is not None:
        print(f"reusing {paths['mindrecord']} ({meta['num_images']} images; its sources are unchanged)")
        return _info(paths, meta)
    if not build:
        raise DatasetError(f"{paths['mindrecord']} is missing or older than its sources, and this process was "
                           "told to reuse it, not to build it")

    _remove_stale_temps(out_dir, name)
    start = time.perf_counter()
    parsed = parsed_factory()
    skipped_while_parsing = parsed.report.images_skipped
    # The final basename inside a private folder: MindRecord files remember their own name (see module doc).
    tmp_dir = tempfile.mkdtemp(prefix=f"{_temp_prefix(name)}{os.getpid()}-", dir=out_dir)
    try:
        kept, num_boxes = _write_build(parsed, tmp_dir, name)
        summary = parsed.report.summary(len(parsed.records) + skipped_while_parsing)
        print(f"{name}: {summary}")
        if not kept:
            raise DatasetError(f"no usable image in {parsed.source or name}: {summary}")
        tmp_paths = _paths(tmp_dir, name)
        # Commit: forget the old build first, so a kill from here on leaves no meta and forces a rebuild.
        if os.path.exists(paths["meta"]):
            os.remove(paths["meta"])
            fsync_dir(out_dir)
        for key in ("mindrecord", "db", "gt"):
            os.replace(tmp_paths[key], paths[key])
        fsync_dir(out_dir)
        rows = _count_rows(paths["mindrecord"])
        if rows != len(kept):
            raise RuntimeError(f"{paths['mindrecord']} holds {rows} rows after writing {len(kept)}")
        meta = {
            "version": CACHE_VERSION, "fingerprint": fingerprint, "class_names": list(parsed.class_names),
            "category_ids": [int(c) for c in parsed.category_ids], "num_images": len(kept),
            "num_boxes": num_boxes, "num_crowd_boxes": int(sum(int(r.iscrowd.sum()) for r in kept)),
            "summary": summary, "columns": COLUMNS,
            "file_sizes": {key: os.path.getsize(paths[key]) for key in ("mindrecord", "db", "gt")},
        }
        write_json_atomic(paths["meta"], meta, indent=1)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"wrote {paths['mindrecord']} ({len(kept)} images, {num_boxes} boxes) "
          f"in {time.perf_counter() - start:.1f} s")
    return _info(paths, meta)

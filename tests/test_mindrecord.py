"""MindRecord builds: round trip (empty images included), reuse, rebuild, and crashes that leave no false build."""
import json
import os
import socket

import cv2
import numpy as np
import pytest

# src first: importing it sets the oneDNN option that must precede the first ``import mindspore``.
from src.data import mindrecord as mr
from src.data.formats import parse_coco, parse_txt
from src.data.image_io import decode_bgr
from src.data.records import DatasetError

pytest.importorskip("mindspore")
import mindspore.dataset as ds  # noqa: E402
from mindspore.mindrecord import FileWriter  # noqa: E402

CLASSES = ["cat", "dog"]


def write_jpg(path, width, height, value):
    img = np.full((height, width, 3), value, np.uint8)
    assert cv2.imwrite(str(path), img)


@pytest.fixture
def txt_set(tmp_path):
    """Three images: two boxes, no box at all, one box; returns (anno path, image dir)."""
    img = tmp_path / "img"
    img.mkdir()
    for k, (w, h) in enumerate([(40, 30), (24, 20), (36, 36)], start=1):
        write_jpg(img / f"{k}.jpg", w, h, 40 * k)
    anno = tmp_path / "train.txt"
    anno.write_text("1.jpg 2,3,20,25,0 10,5,30,28,1\n2.jpg\n3.jpg 1.5,2.5,30,31,1\n")
    return anno, img


def build(anno, img, out, fingerprint_extra=None, force=False):
    calls = []

    def factory():
        calls.append(1)
        return parse_txt(str(anno), str(img), CLASSES)

    fingerprint = {"dataset": "other", "classes": CLASSES, "sources": mr.source_fingerprint([anno])}
    fingerprint.update(fingerprint_extra or {})
    info = mr.ensure_mindrecord(factory, str(out), "train", fingerprint, force=force)
    return info, len(calls)


def read_rows(path):
    rows = []
    for row in ds.MindDataset(path, columns_list=mr.COLUMNS, shuffle=False).create_dict_iterator(output_numpy=True):
        rows.append(row)
    return sorted(rows, key=lambda r: int(r["img_id"]))


def build_files(out):
    return sorted(n for n in os.listdir(out) if not n.startswith("."))


def test_round_trip_keeps_empty_images_and_crowd_only_in_gt(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    write_jpg(img / "a.jpg", 40, 30, 10)
    write_jpg(img / "b.jpg", 20, 20, 90)
    anno = tmp_path / "a.json"
    anno.write_text(json.dumps({
        "images": [{"id": 5, "file_name": "a.jpg", "width": 40, "height": 30},
                   {"id": 9, "file_name": "b.jpg", "width": 20, "height": 20}],
        "annotations": [{"id": 1, "image_id": 5, "category_id": 4, "bbox": [2, 3, 18, 22], "area": 396},
                        {"id": 2, "image_id": 5, "category_id": 2, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 1},
                        {"id": 3, "image_id": 9, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 1}],
        "categories": [{"id": 2, "name": "cat"}, {"id": 4, "name": "dog"}]}))
    info = mr.ensure_mindrecord(lambda: parse_coco(str(anno), str(img)), str(tmp_path / "out"), "val",
                                {"sources": mr.source_fingerprint([anno])})
    assert info.num_images == 2 and info.class_names == ["cat", "dog"] and info.category_ids == [2, 4]
    assert info.path == str(tmp_path / "out" / "val.mindrecord")

    rows = read_rows(info.path)
    assert [int(r["img_id"]) for r in rows] == [5, 9]
    # how a bytes column arrives: a 1-element array of dtype S<len>
    assert rows[0]["image"].dtype.kind == "S" and rows[0]["image"].shape == (1,)
    assert rows[0]["image"].tobytes() == (img / "a.jpg").read_bytes()
    assert decode_bgr(rows[0]["image"]).shape == (30, 40, 3)
    boxes, labels = mr.unpack_targets(rows[0]["boxes"], rows[0]["labels"], rows[0]["num_boxes"])
    np.testing.assert_allclose(boxes, [[2, 3, 20, 25]])                  # the crowd box is not trained on
    assert labels.tolist() == [1] and boxes.dtype == np.float32 and labels.dtype == np.int32
    boxes, labels = mr.unpack_targets(rows[1]["boxes"], rows[1]["labels"], rows[1]["num_boxes"])
    assert boxes.shape == (0, 4) and labels.shape == (0,)                # only a crowd box: nothing to train on

    with open(info.gt_json) as f:
        gt = json.load(f)
    assert [(a["image_id"], a["category_id"], a["iscrowd"]) for a in gt["annotations"]] == [(5, 4, 0), (5, 2, 1),
                                                                                           (9, 2, 1)]
    assert [i["id"] for i in gt["images"]] == [5, 9]
    assert gt["annotations"][0]["area"] == 396


def test_txt_round_trip_and_reuse(tmp_path, txt_set, capsys):
    anno, img = txt_set
    info, calls = build(anno, img, tmp_path / "out")
    assert calls == 1 and info.num_images == 3
    assert build_files(tmp_path / "out") == ["train.meta.json", "train.mindrecord", "train.mindrecord.db",
                                             "train_gt.json"]
    rows = read_rows(info.path)
    assert [int(r["img_id"]) for r in rows] == [1, 2, 3]
    unpacked = [mr.unpack_targets(r["boxes"], r["labels"], r["num_boxes"]) for r in rows]
    np.testing.assert_allclose(unpacked[0][0], [[2, 3, 20, 25], [10, 5, 30, 28]])
    assert unpacked[0][1].tolist() == [0, 1]
    assert unpacked[1][0].shape == (0, 4)
    np.testing.assert_allclose(unpacked[2][0], [[1.5, 2.5, 30, 31]])
    assert "skipped 0 of 3 images" in capsys.readouterr().out

    again, calls = build(anno, img, tmp_path / "out")
    assert calls == 0 and again == info
    assert "reusing" in capsys.readouterr().out
    _, calls = build(anno, img, tmp_path / "out", force=True)
    assert calls == 1


def test_rebuilt_when_annotation_or_config_changes(tmp_path, txt_set):
    anno, img = txt_set
    build(anno, img, tmp_path / "out")
    anno.write_text("1.jpg 2,3,20,25,1\n3.jpg\n# edited\n")
    os.utime(anno, ns=(1, 10**18))                          # make sure the mtime moves even on coarse clocks
    info, calls = build(anno, img, tmp_path / "out")
    assert calls == 1 and info.num_images == 2
    rows = read_rows(info.path)
    assert [int(r["img_id"]) for r in rows] == [1, 2] and int(rows[0]["num_boxes"]) == 1
    _, calls = build(anno, img, tmp_path / "out", fingerprint_extra={"classes": ["dog", "cat"]})
    assert calls == 1


def test_crash_while_writing_keeps_the_previous_build(tmp_path, txt_set, monkeypatch):
    anno, img = txt_set
    out = tmp_path / "out"

    def explode(self, rows, parallel_writer=False):
        raise RuntimeError("killed mid-write")

    # First build crashes: nothing under a final name, no temporary folder left.
    with monkeypatch.context() as m:
        m.setattr(FileWriter, "write_raw_data", explode)
        with pytest.raises(RuntimeError, match="killed mid-write"):
            build(anno, img, out)
    assert os.listdir(out) == []

    info, _ = build(anno, img, out)
    before = {n: (out / n).read_bytes() for n in build_files(out)}
    anno.write_text("3.jpg 1,1,5,5,0\n")
    os.utime(anno, ns=(1, 10**18))
    with monkeypatch.context() as m:
        m.setattr(FileWriter, "write_raw_data", explode)
        with pytest.raises(RuntimeError):
            build(anno, img, out)
    assert {n: (out / n).read_bytes() for n in build_files(out)} == before
    assert len(read_rows(info.path)) == 3


def test_crash_while_committing_is_never_reused(tmp_path, txt_set, monkeypatch):
    anno, img = txt_set
    out = tmp_path / "out"
    build(anno, img, out)
    real_replace = os.replace

    def replace_then_die(src, dst):
        real_replace(src, dst)
        if dst.endswith(".mindrecord"):
            raise KeyboardInterrupt  # killed after the new data file landed, before its index and meta

    with monkeypatch.context() as m:
        m.setattr(mr.os, "replace", replace_then_die)
        with pytest.raises(KeyboardInterrupt):
            build(anno, img, out, force=True)
    assert not (out / "train.meta.json").exists()
    info, calls = build(anno, img, out)                      # same fingerprint, but no meta: rebuilt
    assert calls == 1 and len(read_rows(info.path)) == 3


def test_truncated_file_under_a_valid_meta_is_rebuilt(tmp_path, txt_set):
    anno, img = txt_set
    info, _ = build(anno, img, tmp_path / "out")
    with open(info.path, "r+b") as f:
        f.truncate(100)
    _, calls = build(anno, img, tmp_path / "out")
    assert calls == 1


def test_nothing_usable_is_an_error_naming_the_source(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.jpg").write_bytes(b"not an image")
    anno = tmp_path / "bad.txt"
    anno.write_text("x.jpg 1,1,5,5,0\nmissing.jpg\n")
    with pytest.raises(DatasetError, match=r"no usable image in .*bad\.txt: skipped 2 of 2 images"):
        mr.ensure_mindrecord(lambda: parse_txt(str(anno), str(tmp_path / "img"), CLASSES), str(tmp_path / "out"),
                             "train", {"x": 1})
    assert os.listdir(tmp_path / "out") == []


def test_stale_temporary_folder_of_a_dead_build_is_removed(tmp_path, txt_set):
    anno, img = txt_set
    out = tmp_path / "out"
    stale = out / f".train.build-{socket.gethostname()}-999999999-abc"
    stale.mkdir(parents=True)
    (stale / "train.mindrecord").write_bytes(b"half")
    build(anno, img, out)
    assert not stale.exists()


def test_source_fingerprint_sees_edits_inside_folders(tmp_path):
    (tmp_path / "a.xml").write_text("<a/>")
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("x")
    first = mr.source_fingerprint([tmp_path, tmp_path / "nothing.json"])
    assert first[0]["files"] == 2 and first[1]["missing"] is True
    (tmp_path / "notes.md").write_text("changed")             # other files and build outputs do not count
    (tmp_path / "train_gt.json").write_text("{}")
    (tmp_path / "train.meta.json").write_text("{}")
    (tmp_path / ".train.build-x").mkdir()
    (tmp_path / ".train.build-x" / "a.json").write_text("{}")
    assert mr.source_fingerprint([tmp_path, tmp_path / "nothing.json"]) == first
    (tmp_path / "c.jpg").write_bytes(b"y")                    # an image added later does count
    second = mr.source_fingerprint([tmp_path, tmp_path / "nothing.json"])
    assert second != first
    (tmp_path / "a.xml").write_text("<a></a>")
    assert mr.source_fingerprint([tmp_path, tmp_path / "nothing.json"]) != second

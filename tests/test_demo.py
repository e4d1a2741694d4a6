"""The synthetic demo set: deterministic, varied, read by the COCO reader, cached and written atomically."""
import os

import numpy as np
import pytest

from src.data import demo
from src.data.demo import CATEGORY_IDS, CLASS_NAMES, TINY, ensure_demo_dataset
from src.data.formats import parse_coco
from src.data.records import DatasetError, iter_checked_images


def all_files(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def read_split(root, split):
    parsed = parse_coco(os.path.join(root, "annotations", f"instances_{split}.json"), os.path.join(root, split))
    return parsed, [r for r, _ in iter_checked_images(parsed)]


def test_same_seed_gives_identical_files(tmp_path):
    a = all_files(ensure_demo_dataset(str(tmp_path / "a"), **TINY))
    b = all_files(ensure_demo_dataset(str(tmp_path / "b"), **TINY))
    assert a == b
    assert len([k for k in a if k.endswith(".jpg")]) == TINY["num_train"] + TINY["num_val"]
    c = all_files(ensure_demo_dataset(str(tmp_path / "c"), **dict(TINY, seed=1)))
    assert c["train2017/000001.jpg"] != a["train2017/000001.jpg"]


def test_objects_of_several_classes_and_sizes(tmp_path):
    root = ensure_demo_dataset(str(tmp_path / "d"), num_train=12, num_val=1, image_size=(256, 400))
    small = ensure_demo_dataset(str(tmp_path / "s"), num_train=24, num_val=1, image_size=(96, 128))
    parsed, records = read_split(small, "train2017")
    assert parsed.report.images_skipped == 0 and parsed.report.boxes_dropped == 0
    assert parsed.report.boxes_clipped == 0                       # objects lie inside their image
    assert parsed.class_names == list(CLASS_NAMES) and parsed.category_ids == list(CATEGORY_IDS)
    labels = np.concatenate([r.labels for r in records])
    assert len(set(labels.tolist())) >= 4
    assert max(len(r.boxes) for r in records) >= 3
    sizes = {(r.width, r.height) for r in records}
    assert len(sizes) > 1 and all(96 <= s <= 128 for wh in sizes for s in wh)

    _, big = read_split(root, "train2017")
    assert all(256 <= s <= 400 for r in big for s in (r.width, r.height))
    # several object sizes at the default image size (small images cap objects at 0.6 of their side)
    sides = np.concatenate([np.maximum(r.boxes[:, 2] - r.boxes[:, 0], r.boxes[:, 3] - r.boxes[:, 1]) for r in big])
    assert sides.min() >= 30 and sides.max() >= 2.5 * sides.min()


def test_reused_when_parameters_match_and_redrawn_when_not(tmp_path, capsys):
    root = str(tmp_path / "demo")
    ensure_demo_dataset(root, **TINY)
    stamp = os.stat(os.path.join(root, "train2017", "000001.jpg")).st_mtime_ns
    ensure_demo_dataset(root, **TINY)
    assert "reusing" in capsys.readouterr().out
    assert os.stat(os.path.join(root, "train2017", "000001.jpg")).st_mtime_ns == stamp
    ensure_demo_dataset(root, **dict(TINY, num_train=TINY["num_train"] + 1))
    assert len(os.listdir(os.path.join(root, "train2017"))) == TINY["num_train"] + 1
    assert sorted(os.listdir(tmp_path)) == ["demo"]               # no temporary or old folder left behind


def test_killed_generation_leaves_nothing_and_foreign_folders_are_refused(tmp_path, monkeypatch):
    calls = []

    def crash(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while drawing the second split
        return original(*args, **kwargs)

    original = demo._write_split
    monkeypatch.setattr(demo, "_write_split", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_dataset(str(tmp_path / "demo"), **TINY)
    assert os.listdir(tmp_path) == []

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not a demo dataset"):
        ensure_demo_dataset(str(tmp_path / "mine"), **TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"

"""Tests of src/evaluation/coco_evaluator.py with tiny hand-made ground truths.

Expected values are worked out by hand from COCO's rules: 10 IoU thresholds, 101 recall points (0, 0.01, ..., 1),
precision made monotone from the right, and a recall point beyond the last reached recall scoring 0. Exact boxes have
IoU 1, so every threshold gives the same AP in these cases.
"""
import copy
import json
import os
import types

import numpy as np
import pytest

from src.evaluation.coco_evaluator import COCOEvaluator, per_class_ap

HALF = 51.0 / 101.0  # recall stops at 0.5 with precision 1: recall points 0.00..0.50 (51 of 101) score 1


def make_gt(images, anns, cat_ids=(1,), names=None):
    """images: list of ids; anns: list of (image_id, category_id, [x, y, w, h]) or with a 4th item iscrowd."""
    names = names or [f"c{c}" for c in cat_ids]
    annotations = []
    for i, a in enumerate(anns, start=1):
        img, cat, box = a[0], a[1], a[2]
        crowd = a[3] if len(a) > 3 else 0
        annotations.append({"id": i, "image_id": img, "category_id": cat, "bbox": list(box),
                            "area": box[2] * box[3], "iscrowd": crowd})
    return {
        "images": [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in images],
        "categories": [{"id": c, "name": n} for c, n in zip(cat_ids, names)],
        "annotations": annotations,
    }


def xyxy(box):
    x, y, w, h = box
    return [x, y, x + w, y + h]


def test_perfect_detections_give_map_one():
    b1, b2, b3 = [10, 20, 100, 80], [300, 200, 50, 40], [5, 5, 20, 20]
    gt = make_gt([1, 2], [(1, 1, b1), (1, 2, b2), (2, 1, b3)], cat_ids=(1, 2))
    ev = COCOEvaluator(gt, ["a", "b"], [1, 2])
    ev.add(1, [xyxy(b1), xyxy(b2)], [0.9, 0.8], [0, 1])
    ev.add(2, [xyxy(b3)], [0.7], [0])
    r = ev.evaluate(verbose=False)
    assert r["mAP"] == pytest.approx(1.0)
    assert r["AP50"] == pytest.approx(1.0)
    assert r["per_class"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    assert len(r["stats"]) == 12


def test_one_of_two_found_is_51_over_101():
    # one image, two GT boxes, one exact detection: recall 0.5 at precision 1 -> 51 of 101 recall points score 1
    b1, b2 = [10, 10, 50, 50], [200, 200, 60, 40]
    gt = make_gt([1], [(1, 1, b1), (1, 1, b2)])
    ev = COCOEvaluator(gt, ["obj"], [1])
    ev.add(1, [xyxy(b1)], [0.9], [0])
    r = ev.evaluate(verbose=False)
    assert r["mAP"] == pytest.approx(HALF, abs=1e-9)
    assert r["AP50"] == pytest.approx(HALF, abs=1e-9)
    assert r["stats"][8] == pytest.approx(0.5)  # AR@100 = recall 0.5 at every threshold


def test_sparse_category_ids_map_back():
    boxes = {1: [10, 10, 40, 40], 3: [100, 100, 40, 60], 7: [300, 50, 80, 30]}
    gt = make_gt([5], [(5, c, b) for c, b in boxes.items()], cat_ids=(1, 3, 7), names=["x", "y", "z"])
    dets = [xyxy(boxes[1]), xyxy(boxes[3]), xyxy(boxes[7])]
    ev = COCOEvaluator(gt, ["x", "y", "z"], [1, 3, 7])
    ev.add(5, dets, [0.9, 0.8, 0.7], [0, 1, 2])
    assert [d["category_id"] for d in ev.results] == [1, 3, 7]
    r = ev.evaluate(verbose=False)
    assert r["mAP"] == pytest.approx(1.0)
    assert r["per_class"] == {"x": pytest.approx(1.0), "y": pytest.approx(1.0), "z": pytest.approx(1.0)}
    # a wrong mapping (1 and 7 swapped) must show: only class 3 is right, so mAP = (0 + 1 + 0) / 3
    bad = COCOEvaluator(gt, ["z", "y", "x"], [7, 3, 1])
    bad.add(5, dets, [0.9, 0.8, 0.7], [0, 1, 2])
    assert bad.evaluate(verbose=False)["mAP"] == pytest.approx(1.0 / 3.0)


def test_image_without_detections_counts_as_miss():
    b1, b2 = [10, 10, 50, 50], [20, 30, 40, 40]
    gt = make_gt([1, 2], [(1, 1, b1), (2, 1, b2)])
    ev = COCOEvaluator(gt, ["obj"], [1])
    ev.add(1, [xyxy(b1)], [0.9], [0])  # nothing for image 2
    assert ev.evaluate(verbose=False)["mAP"] == pytest.approx(HALF, abs=1e-9)
    # restricted to image 1, the one box is found
    assert ev.evaluate(img_ids=[1], verbose=False)["mAP"] == pytest.approx(1.0)


def test_image_without_annotations_is_evaluated():
    # image 3 has no annotation; a detection there is a false positive ranked above the true positive:
    # precision 0 then 0.5 at recall 1 -> made monotone, 0.5 at every recall point -> AP 0.5
    b1 = [10, 10, 50, 50]
    gt = make_gt([1, 3], [(1, 1, b1)])
    ev = COCOEvaluator(gt, ["obj"], [1])
    ev.add(1, [xyxy(b1)], [0.8], [0])
    ev.add(3, [[0, 0, 30, 30]], [0.9], [0])
    assert ev.evaluate(verbose=False)["mAP"] == pytest.approx(0.5)


def test_crowd_gt_is_not_a_miss():
    b1, crowd = [10, 10, 50, 50], [200, 200, 150, 100]
    gt = make_gt([1], [(1, 1, b1), (1, 1, crowd, 1)])
    ev = COCOEvaluator(gt, ["obj"], [1])
    ev.add(1, [xyxy(b1)], [0.8], [0])
    r = ev.evaluate(verbose=False)
    assert r["mAP"] == pytest.approx(1.0)
    assert r["num_gt"] == {"obj": 1}
    # a detection inside the crowd region, even ranked first, is ignored rather than a false positive
    ev.add(1, [[220, 210, 300, 280]], [0.95], [0])
    assert ev.evaluate(verbose=False)["mAP"] == pytest.approx(1.0)
    # the same box without iscrowd is an ordinary missed object: recall 0.5
    gt2 = make_gt([1], [(1, 1, b1), (1, 1, crowd, 0)])
    ev2 = COCOEvaluator(gt2, ["obj"], [1])
    ev2.add(1, [xyxy(b1)], [0.8], [0])
    assert ev2.evaluate(verbose=False)["mAP"] == pytest.approx(HALF, abs=1e-9)


def test_no_detections_at_all_gives_zero(capsys, tmp_path):
    gt = make_gt([1, 2], [(1, 1, [10, 10, 50, 50]), (2, 2, [0, 0, 10, 10])], cat_ids=(1, 2))
    ev = COCOEvaluator(gt, ["a", "b"], [1, 2])
    ev.add(1, np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))  # an empty image is accepted too
    r = ev.evaluate()
    assert r["mAP"] == 0.0 and r["AP50"] == 0.0
    assert r["per_class"] == {"a": 0.0, "b": 0.0}
    assert r["num_detections"] == 0
    out = capsys.readouterr().out
    assert "mAP: 0.0000" in out
    assert out.count("Average Precision") == 6
    ev.save(tmp_path / "empty.json")
    assert json.loads((tmp_path / "empty.json").read_text()) == []


def test_per_class_values():
    # a: 1 GT found -> 1.0; b: 2 GT, one found -> 51/101; c: no GT at all (a stray detection) -> None
    a1, b1, b2 = [10, 10, 50, 50], [100, 100, 40, 40], [300, 300, 40, 40]
    gt = make_gt([1], [(1, 1, a1), (1, 2, b1), (1, 2, b2)], cat_ids=(1, 2, 3))
    ev = COCOEvaluator(gt, ["a", "b", "c"], [1, 2, 3])
    ev.add(1, [xyxy(a1), xyxy(b1), [0, 0, 5, 5]], [0.9, 0.8, 0.7], [0, 1, 2])
    r = ev.evaluate(verbose=False)
    assert r["per_class"]["a"] == pytest.approx(1.0)
    assert r["per_class"]["b"] == pytest.approx(HALF, abs=1e-9)
    assert r["per_class"]["c"] is None
    assert r["per_class_ap50"] == {"a": pytest.approx(1.0), "b": pytest.approx(HALF, abs=1e-9), "c": None}
    assert r["num_gt"] == {"a": 1, "b": 2, "c": 0}
    # the mean runs over the classes that have GT only
    assert r["mAP"] == pytest.approx((1.0 + HALF) / 2, abs=1e-9)


def test_per_class_ap_reads_area_all_maxdets_100_and_skips_minus_one():
    params = types.SimpleNamespace(catIds=[4, 9], iouThrs=np.array([0.5, 0.75]), areaRngLbl=["all", "small"],
                                   maxDets=[1, 100], useCats=1)
    prec = np.full((2, 3, 2, 2, 2), 7.0)  # [T, R, K, A, M]: 7 everywhere that must not be read
    prec[:, :, 0, 0, 1] = [[1.0, 0.5, -1.0], [0.5, 0.5, 0.0]]
    prec[:, :, 1, 0, 1] = -1.0  # category 9 has no GT
    fake = types.SimpleNamespace(params=params, eval={"precision": prec, "params": params})
    assert per_class_ap(fake) == {4: pytest.approx(2.5 / 5), 9: None}  # (1+.5+.5+.5+0)/5
    assert per_class_ap(fake, iou_thr=0.5) == {4: pytest.approx(0.75), 9: None}  # (1+.5)/2
    with pytest.raises(ValueError):
        per_class_ap(fake, iou_thr=0.6)


def test_printed_output_has_table_and_map_line(capsys):
    b1, b2 = [10, 10, 50, 50], [200, 200, 60, 40]
    gt = make_gt([1], [(1, 1, b1), (1, 1, b2)], names=["widget"])
    ev = COCOEvaluator(gt, ["widget"], [1])
    ev.add(1, [xyxy(b1)], [0.9], [0])
    ev.evaluate()
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = [ln for ln in lines if ln.startswith(" Average Precision") or ln.startswith(" Average Recall")]
    assert len(table) == 12
    assert "IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.505" in table[0]
    assert f"mAP: {HALF:.4f}" in lines
    row = [ln for ln in lines if ln.startswith("widget")]
    assert len(row) == 1 and row[0].split() == ["widget", f"{HALF:.4f}", f"{HALF:.4f}", "2"]
    for chatter in ("creating index", "index created", "Loading and preparing", "DONE", "Accumulating"):
        assert chatter not in out


def test_validation_errors():
    gt = make_gt([1], [(1, 1, [0, 0, 10, 10])], cat_ids=(1, 2))
    with pytest.raises(ValueError, match="99"):
        COCOEvaluator(gt, ["a", "b"], [1, 99])
    with pytest.raises(ValueError):
        COCOEvaluator(gt, ["a"], [1, 2])
    ev = COCOEvaluator(gt, ["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="label 5"):
        ev.add(1, [[0, 0, 10, 10]], [0.5], [5])
    with pytest.raises(ValueError, match="label -1"):
        ev.add(1, [[0, 0, 10, 10]], [0.5], [-1])
    with pytest.raises(ValueError, match="42"):
        ev.add(42, [[0, 0, 10, 10]], [0.5], [0])
    with pytest.raises(ValueError):
        ev.add(1, [[0, 0, 10, 10]], [0.5, 0.4], [0])
    assert len(ev) == 0


def test_save_is_coco_result_json_and_atomic(tmp_path):
    gt = make_gt([7], [(7, 3, [0, 0, 10, 10])], cat_ids=(3,))
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    ev = COCOEvaluator(str(gt_path), ["only"], [3])
    ev.add(np.int64(7), np.array([[10.123, 20.456, 30.7891, 40.0012]]), np.float32([0.625]), np.int64([0]))
    out = ev.save(tmp_path / "sub" / "dets.json")
    saved = json.loads(open(out).read())
    assert len(saved) == 1
    d = saved[0]
    assert d["image_id"] == 7 and d["category_id"] == 3 and d["score"] == pytest.approx(0.625)
    assert d["bbox"] == pytest.approx([10.12, 20.46, 20.67, 19.55])
    assert os.listdir(tmp_path / "sub") == ["dets.json"]  # no temporary file left behind
    # evaluating does not write pycocotools' extra keys into the saved entries
    ev.evaluate(verbose=False)
    ev.save(out)
    assert set(json.loads(open(out).read())[0]) == {"image_id", "category_id", "bbox", "score"}


def test_ground_truth_dict_not_modified():
    gt = make_gt([1], [(1, 1, [0, 0, 10, 10])])
    del gt["annotations"][0]["area"]  # completed from the box inside the evaluator
    before = copy.deepcopy(gt)
    ev = COCOEvaluator(gt, ["a"], [1])
    ev.add(1, [[0, 0, 10, 10]], [0.9], [0])
    assert ev.evaluate(verbose=False)["mAP"] == pytest.approx(1.0)
    assert gt == before


def test_faster_coco_eval_gives_pycocotools_results():
    pytest.importorskip("faster_coco_eval")
    rng = np.random.default_rng(0)
    anns = []
    for img in range(1, 21):
        for _ in range(int(rng.integers(1, 5))):
            x, y = rng.uniform(0, 400, 2)
            w, h = rng.uniform(5, 200, 2)
            anns.append((img, int(rng.integers(1, 4)), [x, y, w, h], int(rng.random() < 0.1)))
    gt = make_gt(list(range(1, 21)), anns, cat_ids=(1, 2, 3))
    # Each gt found with jitter, plus a false positive, with random scores: the same detections for both engines.
    detections = [(img, np.array([np.array(xyxy(box)) + rng.normal(0, 6, 4), [0, 0, 30, 30]]), rng.random(2),
                   np.array([cat - 1, 0])) for img, cat, box, _ in anns]
    results = {}
    for engine in ("pycocotools", "faster_coco_eval"):
        ev = COCOEvaluator(gt, ["a", "b", "c"], [1, 2, 3], engine=engine)
        for detection in detections:
            ev.add(*detection)
        results[engine] = ev.evaluate(verbose=False)
    assert 0.1 < results["pycocotools"]["mAP"] < 0.9
    assert results["pycocotools"]["stats"] == results["faster_coco_eval"]["stats"]
    assert results["pycocotools"]["per_class"] == results["faster_coco_eval"]["per_class"]


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="COCO engine"):
        COCOEvaluator(make_gt([1], [(1, 1, [0, 0, 5, 5])]), ["a"], [1], engine="fast")

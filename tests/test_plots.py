"""The pictures: confusion matrix counts, PR curves against COCOeval, the dataset browser's numbers, valid PNGs."""
import os

import cv2
import numpy as np
import pytest

from src.evaluation.coco_evaluator import COCOEvaluator
from src.evaluation.confusion import image_confusion, row_normalised
from src.plots.evaluation import pr_curves, write_eval_plots


def _valid_png(path):
    assert os.path.getsize(path) > 1000
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100


def test_confusion_matrix_counts_a_hand_made_image():
    # Classes A (0) and B (1); background is index 2.
    matrix = np.zeros((3, 3), np.int64)
    gt = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]
    gt_labels = [0, 1, 0]
    det = [[0, 0, 10, 10],            # on the first A, as A: a true positive
           [20, 20, 30, 31],          # on B, as A: a confusion
           [70, 70, 80, 80],          # on nothing, as B: a false positive on background
           [1, 1, 9, 9],              # a second detection of the first A: a duplicate is a false positive too
           [40, 40, 50, 50]]          # on the second A, but below the score threshold: not counted, A is missed
    scores = [0.9, 0.8, 0.7, 0.6, 0.1]
    image_confusion(matrix, gt, gt_labels, det, [0, 0, 1, 0, 0], scores, iou_threshold=0.5, score_threshold=0.25)
    np.testing.assert_array_equal(matrix, [[1, 0, 1],     # A: detected as A once, missed once
                                           [1, 0, 0],     # B: detected as A
                                           [1, 1, 0]])    # background: a stray A (the duplicate) and a stray B
    np.testing.assert_allclose(row_normalised(matrix)[0], [0.5, 0, 0.5])
    # A detection on a crowd region is not a false positive.
    crowd = np.zeros((3, 3), np.int64)
    image_confusion(crowd, [], [], [[100, 100, 120, 120]], [1], [0.9], crowd_boxes=[[90, 90, 130, 130]])
    assert crowd.sum() == 0


def _evaluator_with_detections():
    rng = np.random.default_rng(0)
    images = [{"id": i, "width": 200, "height": 200, "file_name": f"{i}.jpg"} for i in range(1, 9)]
    anns, dets = [], []
    for img in images:
        for k in range(3):
            x, y = rng.uniform(0, 150, 2)
            cat = int(rng.integers(1, 3))
            anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": cat, "bbox": [x, y, 40, 40],
                         "area": 1600, "iscrowd": 0})
            # a detection per box: some shifted (lower IoU), some of the other class, random scores
            shift = rng.uniform(0, 18)
            dets.append((img["id"], [x + shift, y, x + shift + 40, y + 40],
                         rng.uniform(0.05, 1.0), cat - 1 if rng.random() < 0.8 else 2 - cat))
        dets.append((img["id"], [5, 5, 30, 30], rng.uniform(0.05, 0.6), int(rng.integers(0, 2))))  # background
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    ev = COCOEvaluator(gt, ["a", "b"], [1, 2])
    for img_id, box, score, label in dets:
        ev.add(img_id, np.array([box]), np.array([score]), np.array([label]))
    return ev


def test_the_area_under_each_pr_curve_is_cocoevals_ap():
    ev = _evaluator_with_detections()
    result = ev.evaluate(verbose=False)
    per_class, (_, _, mean_ap) = pr_curves(ev.curves, ["a", "b"])
    for name in ("a", "b"):
        recall, precision, area = per_class[name]
        assert np.trapz(precision, recall) == pytest.approx(result["per_class_ap50"][name], abs=2e-2)  # trapezoids
        assert area == pytest.approx(result["per_class_ap50"][name], abs=1e-3)  # COCO's 101-point mean
        assert 0 < area < 1
    assert mean_ap == pytest.approx(result["mAP"], abs=1e-3)


def test_eval_plots_are_written(tmp_path):
    ev = _evaluator_with_detections()
    result = ev.evaluate(verbose=False)
    paths = write_eval_plots(ev, result, str(tmp_path / "best"))
    assert [os.path.basename(p) for p in paths] == ["best_pr_curves.png", "best_per_class_ap.png",
                                                   "best_confusion_matrix.png", "best_confusion_matrix.csv"]
    for p in paths[:3]:
        _valid_png(p)
    text = (tmp_path / "best_confusion_matrix.csv").read_text().splitlines()
    assert text[0] == "counts: true \\ predicted,a,b,background" and text[3].startswith("background,")
    matrix = np.array([[int(v) for v in line.split(",")[1:]] for line in text[1:4]])
    np.testing.assert_array_equal(matrix, ev.confusion_matrix())


# ---- browse_dataset.py --------------------------------------------------------------------------------------------
def test_anchor_fit_of_a_hand_made_case():
    from src.data.browse import anchor_fit
    # Two levels: a 0.2-wide anchor at the centre (level 1), a 0.6-wide one (level 2); input 100 x 100 px.
    anchors = np.array([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6]])
    boxes = np.array([[0.4, 0.4, 0.6, 0.6],      # the level-1 anchor itself: IoU 1, 20 px
                      [0.45, 0.45, 0.55, 0.55],  # a quarter of it: IoU 0.25, 10 px
                      [0.2, 0.2, 0.8, 0.8],      # the level-2 anchor: IoU 1, 60 px
                      [0.2, 0.2, 0.7, 0.8]])     # 0.5 x 0.6 inside it: IoU 0.30 / 0.36 = 0.833, 54.8 px
    fit = anchor_fit(boxes, [0, 1, 0, 1], anchors, [1, 1], (100, 100), threshold=0.5)
    np.testing.assert_allclose(fit.best_iou, [1.0, 0.25, 1.0, 0.30 / 0.36])
    np.testing.assert_array_equal(fit.best_level, [0, 0, 1, 1])
    assert fit.share_below() == (4, 0.25)
    bands = {name: (count, share) for name, count, share in fit.by_band()}
    assert bands["< 16 px"] == (1, 1.0) and bands["16-32 px"] == (1, 0.0) and bands["32-64 px"] == (2, 0.0)
    assert fit.by_level(2) == [("level 1", 2, 0.5), ("level 2", 2, 0.0)]


def test_the_loss_sees_the_augmented_boxes(tmp_path):
    """Every positive anchor's box target decodes to an augmented ground-truth box of its class, within a pixel.
    (Not every box has one: two small boxes can share their single best anchor, and one of them loses it.)"""
    import mindspore.dataset as ds

    from src.config import load_config
    from src.data.browse import decoded_targets
    from src.data.pipeline import train_sample_from_config
    from src.data.sources import build_split
    from src.models.detector import build_detector
    cfg = load_config(dataset="demo", demo_root=str(tmp_path / "demo"), demo_num_train=6, demo_num_val=1,
                      mindrecord_dir=str(tmp_path / "mr"), expand_prob=0.5, crop_prob=1.0, flip_prob=0.5)
    info = build_split(cfg, "train")
    anchors = build_detector(cfg, len(info.class_names)).spec.anchors
    sample = train_sample_from_config(cfg, anchors)
    columns = ["image", "boxes", "labels", "num_boxes", "img_id"]
    checked = 0
    for row in ds.MindDataset(info.path, columns_list=columns, shuffle=False).create_tuple_iterator(output_numpy=True):
        _, boxes, labels = sample.augment(*row)
        loc, target_labels, _ = sample.encoder(boxes, labels)
        _, positive_labels, decoded = decoded_targets(sample.encoder, loc, target_labels, anchors)
        px = np.array(cfg.img_shape[::-1] * 2, np.float64)
        for box, label in zip(decoded * px, positive_labels):
            error = np.abs(boxes * px - box).max(axis=1)
            assert (error[labels == label] <= 1.0).any(), (box, boxes * px)
            checked += 1
    assert checked > 20


def test_browse_dataset_writes_its_pictures(tmp_path, capsys):
    import browse_dataset
    assert browse_dataset.main(["--dataset", "demo", "--demo_root", str(tmp_path / "demo"), "--demo_num_train", "6",
                                "--demo_num_val", "1", "--mindrecord_dir", str(tmp_path / "mr"),
                                "--out", str(tmp_path / "out"), "--num", "2"]) == 0
    files = sorted(os.listdir(tmp_path / "out"))
    assert files == ["dataset_summary.png", "sample_1.png", "sample_2.png"]
    for f in files:
        _valid_png(tmp_path / "out" / f)
    printed = capsys.readouterr().out
    assert "anchor fit:" in printed and "level 1" in printed and "circle" in printed

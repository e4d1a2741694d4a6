"""The whole path through the real entry points: data -> MindRecord -> train -> eval -> resume, and an overfit.

Small images and widths keep it to a few minutes; each train.py call compiles its graph once.
"""
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from src.data.demo import CLASS_NAMES, ensure_demo_dataset
from src.training.lr_schedule import warmup_cosine_lr
from src.training.results_log import read_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--img_shape", "128", "128", "--steps", "[]", "--width_mult", "0.5", "--batch_size", "4",
         "--eval_batch_size", "4", "--log_interval", "1"]


def run(script, args, timeout=900):
    proc = subprocess.run([sys.executable, script, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def logged(out, name):
    return [float(v) for v in re.findall(rf"\b{name} ([-+0-9.eE]+|nan)", out)]


@pytest.fixture(scope="module")
def demo_args(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    return d, SMALL + ["--dataset", "demo", "--demo_root", str(d / "demo"), "--demo_num_train", "16",
                       "--demo_num_val", "8", "--mindrecord_dir", str(d / "mindrecord"),
                       "--output_dir", str(d / "runs"), "--run_name", "e2e"]


def test_train_eval_resume_on_the_demo_set(demo_args):
    d, args = demo_args
    run_dir = d / "runs" / "e2e"
    # No augmentation, so that the loss is measured on a fixed task and must fall.
    schedule = ["--lr", "0.002", "--warmup_epochs", "1", "--batch_size", "2", "--augment", "False"]
    out = run("train.py", args + schedule + ["--epoch_size", "5", "--run_eval", "True", "--eval_interval", "5"])
    losses = logged(out, "loss")
    assert len(losses) == 40 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-8:]) < 0.85 * np.mean(losses[:8]), losses
    assert re.search(r"epoch 5: mAP [0-9.]+, the best so far: saved best.ckpt", out)
    for name in ("last.ckpt", "epoch_5.ckpt", "best.ckpt", "config.yaml", "train.log", "results.png"):
        assert (run_dir / name).is_file(), name
    rows = read_results(run_dir / "results.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5] and [r["global_step"] for r in rows] == [8, 16, 24, 32, 40]
    assert all(r["mAP"] is None for r in rows[:4]) and rows[4]["mAP"] is not None
    assert all(r["loss"] == pytest.approx(r["cls_loss"] + r["box_loss"], rel=1e-4) for r in rows)
    assert not [f for f in os.listdir(run_dir) if ".tmp" in f]

    out = run("eval.py", ["--checkpoint_path", str(run_dir / "last.ckpt")])  # reads the run's config.yaml
    assert len(re.findall(r"^ Average (Precision|Recall) ", out, re.M)) == 12
    m = re.search(r"^mAP: ([0-9.]+)$", out, re.M)
    # Five epochs of 16 tiny images teach too little for a meaningful bound here: that training learns is the
    # overfit test's check below (AP50 >= 0.9); this one checks the path and the report.
    assert m and 0.0 <= float(m.group(1)) <= 1.0
    detections = json.loads((run_dir / "last_detections.json").read_text())
    assert detections and all({"image_id", "category_id", "bbox", "score"} <= set(det) for det in detections)
    assert {det["category_id"] for det in detections} <= {1, 3, 5, 7, 9, 11}  # sparse ids mapped back

    # Resume into a longer schedule: it starts at epoch 6, on the lr curve of the 6-epoch schedule.
    out = run("train.py", args + schedule + ["--epoch_size", "6", "--resume", str(run_dir / "last.ckpt")])
    assert re.search(r"resumed .*last.ckpt at epoch 5, step 40", out)
    assert "epoch 1/6" not in out and "epoch 6/6 step 1/8" in out
    lr = logged(out, "lr")
    assert lr[0] == pytest.approx(warmup_cosine_lr(0.002, 8, 6, 1, end_ratio=0.01)[40], abs=1e-5)
    again = read_results(run_dir / "results.csv")
    assert again[:5] == rows and [r["epoch"] for r in again] == [1, 2, 3, 4, 5, 6]   # the history is kept


def _write_txt(root, split):
    """The demo set's COCO json rewritten as the TXT format, x first: `path x1,y1,x2,y2,label ...`."""
    gt = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
    label = {c["id"]: k for k, c in enumerate(sorted(gt["categories"], key=lambda c: c["id"]))}
    lines = []
    for img in gt["images"]:
        boxes = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        tokens = [f"{x:.1f},{y:.1f},{x + w:.1f},{y + h:.1f},{label[a['category_id']]}"
                  for a in boxes for x, y, w, h in [a["bbox"]]]
        lines.append(" ".join([f"{split}/{img['file_name']}"] + tokens))
    path = root / f"{split}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_overfit_a_handful_of_images(tmp_path):
    root = tmp_path / "few"
    ensure_demo_dataset(str(root), num_train=6, num_val=1, image_size=(160, 200), object_size=(40, 110))
    anno = _write_txt(root, "train2017")
    args = SMALL + ["--dataset", "other", "--image_dir", str(root), "--anno_path", str(anno),
                    "--eval_anno_path", str(anno), "--classes", *CLASS_NAMES, "--augment", "False",
                    # One batch holds every image, so BN's running statistics are those of the evaluated set.
                    "--batch_size", "6", "--eval_batch_size", "6", "--epoch_size", "150",
                    # SGD at a high lr fits six images fastest; the default recipe is for real data.
                    "--optimizer", "momentum", "--lr", "0.05", "--weight_decay", "4e-5",
                    "--warmup_epochs", "10", "--log_interval", "10", "--save_checkpoint_epochs", "150",
                    "--mindrecord_dir", str(tmp_path / "mr"), "--output_dir", str(tmp_path / "runs"),
                    "--run_name", "overfit"]
    run("train.py", args)
    out = run("eval.py", ["--checkpoint_path", str(tmp_path / "runs" / "overfit" / "last.ckpt")])
    ap50 = float(re.search(r"IoU=0.50 +\| area= +all \| maxDets=100 \] = ([0-9.]+)", out).group(1))
    assert ap50 >= 0.9, out[-3000:]

"""predict.py: eval's preprocessing and NMS on image files, from a checkpoint or an exported model."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import predict
from detection_match import ACROSS_RUNTIMES, coco_to_detections, unpaired
from src.config import load_config
from src.data.demo import CATEGORY_IDS, CLASS_NAMES
from src.deploy.draw import class_colour

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def predictions(out_dir):
    return {f[:-5]: json.loads((out_dir / f).read_text()) for f in sorted(os.listdir(out_dir)) if f.endswith(".json")}


@pytest.fixture(scope="module")
def from_checkpoint(deployed):
    out = deployed["dir"] / "pred_ckpt"
    assert predict.main(["--config_path", deployed["config"], "--checkpoint_path", deployed["ckpt"],
                         "--images", str(deployed["val_dir"]), "--out", str(out)]) == 0
    return out, predictions(out)


def test_detections_equal_evals_on_the_same_images(deployed, from_checkpoint):
    """Predict runs batch 1 and eval batch 8, which take different kernels: the detections are the same set to the
    precision float32 holds through the network (tests/detection_match.py), not bit for bit."""
    _, predicted = from_checkpoint
    gt = json.loads(deployed["gt"].read_text())
    evaluated = json.loads(deployed["eval_json"].read_text())
    cfg = load_config(deployed["config"])
    assert len(predicted) == len(gt["images"]) == 8
    label_of = {c: k for k, c in enumerate(CATEGORY_IDS)}
    total = 0
    for image in gt["images"]:
        ours = predicted[os.path.splitext(image["file_name"])[0]]
        assert (ours["width"], ours["height"]) == (image["width"], image["height"])
        theirs = coco_to_detections([r for r in evaluated if r["image_id"] == image["id"]], label_of)
        assert ours["detections"] and theirs
        for det in ours["detections"]:
            x1, y1, x2, y2 = det["box"]
            assert det["class_name"] == CLASS_NAMES[det["label"]]
            assert 0 <= x1 <= x2 <= image["width"] and 0 <= y1 <= y2 <= image["height"]
        left = unpaired(ours["detections"], theirs, (image["width"], image["height"]), cfg.min_score, cfg.max_boxes)
        assert left == ([], []), image["file_name"]
        total += len(theirs)
    assert total == len(evaluated)


def test_a_png_is_drawn_per_image(deployed, from_checkpoint):
    out, predicted = from_checkpoint
    for stem, doc in predicted.items():
        drawn = cv2.imread(str(out / f"{stem}.png"))
        original = cv2.imread(str(deployed["val_dir"] / f"{stem}.jpg"))
        assert drawn.shape == original.shape
        shown = [d for d in doc["detections"] if d["score"] >= 0.3]
        changed = np.any(drawn != original, axis=2)
        assert changed.any() == bool(shown), stem
        for det in shown:   # each drawn box's top-left corner carries its class colour
            x1, y1 = (int(round(v)) for v in det["box"][:2])
            assert changed[min(y1, drawn.shape[0] - 1), min(x1, drawn.shape[1] - 1)]


@pytest.mark.parametrize("suffix", [".onnx", ".mindir"])
def test_exported_models_give_the_same_detections(deployed, from_checkpoint, suffix):
    out = deployed["dir"] / f"pred{suffix}"
    assert predict.main(["--model_file", str(deployed["dir"] / ("model" + suffix)),
                         "--images", str(deployed["val_dir"]), "--out", str(out)]) == 0
    _, reference = from_checkpoint
    cfg = load_config(deployed["config"])
    for stem, doc in predictions(out).items():
        left = unpaired(doc["detections"], reference[stem]["detections"], (doc["width"], doc["height"]),
                        cfg.min_score, cfg.max_boxes, **ACROSS_RUNTIMES)
        assert left == ([], []), stem


def run_predict(args):
    proc = subprocess.run([sys.executable, "predict.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr.strip().splitlines()


def test_bad_inputs_are_one_line_errors_or_counted_skips(deployed, tmp_path):
    code, _, err = run_predict(["--images", str(deployed["val_dir"])])
    assert code == 2 and "exactly one of --checkpoint_path" in err[-1], err
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes((deployed["dir"] / "model.onnx").read_bytes())
    code, _, err = run_predict(["--model_file", str(lonely), "--images", str(deployed["val_dir"])])
    assert code == 2 and "lonely.json not found" in err[-1], err
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.jpg").write_bytes(b"")
    (photos / "ok.png").write_bytes(cv2.imencode(".png", np.full((50, 70, 3), 90, np.uint8))[1].tobytes())
    code, out, err = run_predict(["--model_file", str(deployed["dir"] / "model.onnx"), "--images", str(photos),
                                  "--out", str(tmp_path / "out")])
    assert code == 0 and any("skipped" in line and "broken.jpg: empty file" in line for line in err), err
    assert "1 images" in out and "1 skipped" in out
    assert sorted(os.listdir(tmp_path / "out")) == ["ok.json", "ok.png"]


def test_class_colours_differ():
    colours = {class_colour(k) for k in range(20)}
    assert len(colours) == 20

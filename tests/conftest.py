"""Shared fixtures. Importing `src` first sets the oneDNN CPU kernel choice before MindSpore loads."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import src  # noqa: E402,F401


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def default_cfg():
    from src.config import load_config
    return load_config()


@pytest.fixture(scope="session")
def deployed(tmp_path_factory):
    """A test checkpoint of SSD-MobileNetV2 300 on the demo classes, eval.py's results on 4 demo images, and the
    checkpoint exported to MINDIR and ONNX (batch 1): what predict and postprocess are compared against."""
    import mindspore as ms

    import eval as eval_script
    import export
    from model_checks import save_test_checkpoint
    from src.data.demo import CATEGORY_IDS, CLASS_NAMES

    d = tmp_path_factory.mktemp("deploy")
    config = os.path.join(REPO, "configs", "ssd_mobilenet_v2_300.yaml")
    ckpt = save_test_checkpoint(config, d / "model.ckpt", CLASS_NAMES, CATEGORY_IDS)
    data = ["--dataset", "demo", "--demo_root", str(d / "demo"), "--demo_num_train", "4", "--demo_num_val", "8",
            "--mindrecord_dir", str(d / "mindrecord")]
    assert eval_script.main(["--config_path", config, "--checkpoint_path", ckpt] + data) == 0
    for fmt in ("MINDIR", "ONNX"):
        assert export.main(["--config_path", config, "--checkpoint_path", ckpt, "--file_format", fmt]) == 0
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return {"dir": d, "config": config, "ckpt": ckpt, "val_dir": d / "demo" / "val2017",
            "gt": d / "demo" / "annotations" / "instances_val2017.json", "eval_json": d / "model_detections.json",
            "eval_result": d / "model_eval.json"}


@pytest.fixture(scope="session")
def own_detections_as_gt(deployed, tmp_path_factory):
    """A ground truth made of eval's own confident detections, and eval's mAP against it.

    The test network is random, so its mAP on the demo boxes is about 0, and equal zeros would prove nothing.
    Against its own detections it scores high, and a detection that postprocess lost, moved or rescored shows.
    """
    import json

    import numpy as np
    from detection_match import coco_to_detections

    from src.data.demo import CATEGORY_IDS, CLASS_NAMES
    from src.evaluation.coco_evaluator import COCOEvaluator

    gt = json.loads(deployed["gt"].read_text())
    detections = json.loads(deployed["eval_json"].read_text())
    confident = [d for d in detections if d["score"] >= 0.3]
    gt["annotations"] = [{"id": k + 1, "image_id": d["image_id"], "category_id": d["category_id"], "bbox": d["bbox"],
                          "area": d["bbox"][2] * d["bbox"][3], "iscrowd": 0} for k, d in enumerate(confident)]
    path = tmp_path_factory.mktemp("own_gt") / "own_gt.json"
    path.write_text(json.dumps(gt))
    evaluator = COCOEvaluator(str(path), CLASS_NAMES, CATEGORY_IDS)
    label_of = {c: k for k, c in enumerate(CATEGORY_IDS)}
    for image in gt["images"]:
        mine = coco_to_detections([d for d in detections if d["image_id"] == image["id"]], label_of)
        evaluator.add(image["id"], np.array([d["box"] for d in mine], np.float32).reshape(-1, 4),
                      np.array([d["score"] for d in mine]), np.array([d["label"] for d in mine]))
    return path, evaluator.evaluate(verbose=False)["mAP"], len(confident)

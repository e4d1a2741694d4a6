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

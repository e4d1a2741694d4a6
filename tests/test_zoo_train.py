"""Every model of the zoo, at full size, through train.py and eval.py on a tiny demo set (slow: -m slow).

CI covers each model by a full-size build and one training step (tests/test_model_*.py) and the default model by the
end-to-end test; this runs the real entry points for all five, as a user would, in about ten minutes.
"""
import math
import re

import pytest

from test_end_to_end import logged, run

CONFIGS = ["ssd_ghostnet_300", "ssd_mobilenet_v2_300", "ssd_vgg16_300", "ssd_resnet50_fpn_640", "efficientdet_d0_512"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo")


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_each_config_trains_and_evaluates_on_the_demo_set(name, demo_dir):
    args = ["--config_path", f"configs/{name}.yaml", "--dataset", "demo", "--demo_root", str(demo_dir / "demo"),
            "--demo_num_train", "8", "--demo_num_val", "4", "--mindrecord_dir", str(demo_dir / "mindrecord"),
            "--output_dir", str(demo_dir / "runs"), "--run_name", name, "--batch_size", "2", "--eval_batch_size", "2",
            "--epoch_size", "2", "--log_interval", "1"]
    out = run("train.py", args, timeout=1800)
    losses = logged(out, "loss")
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses), losses
    out = run("eval.py", ["--checkpoint_path", str(demo_dir / "runs" / name / "last.ckpt")], timeout=900)
    assert len(re.findall(r"^ Average (Precision|Recall) ", out, re.M)) == 12
    assert re.search(r"^mAP: [0-9.]+$", out, re.M)

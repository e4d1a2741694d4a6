"""Bad config files, command lines and checkpoints through the real entry points: exit code 2, one `error:` line
naming the problem, no traceback.

Runs that stop before MindSpore loads take a second each and run one by one; those that need MindSpore (a
checkpoint, a model build, a dataset) start together from one fixture, so that their imports overlap.
"""
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(REPO, "default_config.yaml")
MOBILENET = os.path.join(REPO, "configs", "ssd_mobilenet_v2_300.yaml")
VGG16 = os.path.join(REPO, "configs", "ssd_vgg16_300.yaml")
TIMEOUT = 300


def run(*argv):
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)


def one_error_line(returncode, stderr):
    """The single error line of a run that stopped as a user error should."""
    assert returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    return errors[0]


# -- config files and command lines: stopped before MindSpore loads --------------------------------------------------
@pytest.mark.parametrize("yaml_text, message", [
    ("lerning_rate: 0.1\n", "bad.yaml: unknown key 'lerning_rate'"),
    ("batch_size: eight\n", "bad.yaml: key 'batch_size' expects an integer, got 'eight'"),
    ("img_shape: 300\n", "bad.yaml: key 'img_shape' expects a list, got 300"),
    ("aspect_ratios: [[2], [two]]\n", "bad.yaml: key 'aspect_ratios' expects a list of number lists, got ['two']"),
    ("classes: [cat, dog]\nnum_classes: 3\n", "num_classes is 3 but classes names 2 (cat, dog); leave num_classes"),
])
def test_bad_config_file(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"__BASE__: {DEFAULT}\n{yaml_text}")
    proc = run("train.py", "--config_path", str(path))
    line = one_error_line(proc.returncode, proc.stderr)
    assert line.startswith("train.py: error: ") and message in line, line


@pytest.mark.parametrize("argv, message", [
    (["export.py", "--checkpoint_path", "m.ckpt", "--file_fromat", "ONNX"],
     "export.py: error: unknown key '--file_fromat' (did you mean '--file_format'?)"),
    (["eval.py", "--checkpoint_path", "m.ckpt", "--eval_batch_size", "2.5"],
     "eval.py: error: command line: key 'eval_batch_size' expects an integer, got 2.5"),
    (["train.py", "--aspect_ratios", "2", "3"],
     "train.py: error: command line: key 'aspect_ratios' expects a list of number lists, got 2 inside it"),
    (["train.py", "--classes", "cat", "dog", "--num_classes", "3"],
     "train.py: error: num_classes is 3 but classes names 2 (cat, dog); leave num_classes at 0 to derive it"),
    (["train.py", "--classes", "cat", "dog", "cat"], "train.py: error: key 'classes' names cat more than once"),
    (["train.py", "--num_classes", "-1"],
     "train.py: error: key 'num_classes' must be 0 (derived from the classes) or positive, got -1"),
    (["eval.py", "--checkpoint_path", "m.ckpt", "--img_shape", "300"],
     "eval.py: error: key 'img_shape' must be [height, width], each at least 32"),
    (["eval.py"], "eval.py: error: --checkpoint_path is required"),
])
def test_bad_command_line(argv, message):
    proc = run(*argv)
    line = one_error_line(proc.returncode, proc.stderr)
    assert line.startswith(message), line


# -- checkpoints, model geometry and data: MindSpore runs, started together ------------------------------------------
def _checkpoints(folder):
    """A tiny SSD-MobileNetV2 (width 0.25, classes cat and dog) and a checkpoint of some other network."""
    import mindspore as ms
    import numpy as np

    from src.config import load_config
    from src.models.detector import build_detector
    from src.training.checkpoint import save_checkpoint

    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = build_detector(load_config(MOBILENET, width_mult=0.25, img_shape=[64, 64], steps=[]), num_classes=2)
    mobilenet = save_checkpoint(str(folder / "mobilenet_x025.ckpt"), net,
                                meta={"model_name": "ssd_mobilenet_v2", "class_names": ["cat", "dog"]})
    foreign = str(folder / "foreign.ckpt")
    ms.save_checkpoint([{"name": "conv1.weight", "data": ms.Tensor(np.zeros((8, 3, 7, 7), np.float32))}], foreign)
    return mobilenet, foreign


@pytest.fixture(scope="module")
def heavy_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_config")
    mobilenet, foreign = _checkpoints(folder)
    export = ["export.py", "--file_format", "MINDIR", "--file_name", str(folder / "exported")]
    demo = ["--dataset", "demo", "--demo_root", str(folder / "demo"), "--demo_num_train", "2", "--demo_num_val", "2",
            "--mindrecord_dir", str(folder / "mindrecord"), "--output_dir", str(folder / "runs"), "--mode", "PYNATIVE"]
    argvs = {
        "other_model": export + ["--config_path", VGG16, "--checkpoint_path", mobilenet],
        "shape_mismatch": export + ["--config_path", MOBILENET, "--checkpoint_path", mobilenet],
        "foreign": export + ["--config_path", MOBILENET, "--checkpoint_path", foreign, "--classes", "cat", "dog"],
        "img_shape": export + ["--config_path", MOBILENET, "--checkpoint_path", mobilenet, "--img_shape", "512", "512"],
        "num_classes_checkpoint": export + ["--config_path", MOBILENET, "--checkpoint_path", mobilenet,
                                            "--num_classes", "3"],
        "num_classes_data": ["train.py", "--config_path", MOBILENET, "--num_classes", "3"] + demo,
    }
    procs = {name: subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for name, argv in argvs.items()}
    results = {}
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=TIMEOUT)
        results[name] = (proc.returncode, stderr)
    return results


@pytest.mark.parametrize("name, pattern", [
    ("other_model", r"error: \S+mobilenet_x025\.ckpt holds a ssd_mobilenet_v2 model but the config builds ssd_vgg16; "
                    r"pass the run's --config_path"),
    ("shape_mismatch", r"error: \S+mobilenet_x025\.ckpt: parameter '\S+' has shape \(8, 3, 3, 3\) in the checkpoint "
                       r"but \(32, 3, 3, 3\) in the model \(a checkpoint of another model or number of classes\?\)"),
    ("foreign", r"error: \S+foreign\.ckpt: no parameter matches the model \(checkpoint names such as 'conv1\.weight'"),
    ("img_shape", r"error: ssd_mobilenet_v2 at img_shape \[512, 512\]: steps\[3\] = 100 does not fit anchor level 4, "
                  r"a 4x4 grid: its anchors would span 400x400 px of the 512x512 input\. Pass --steps '\[\]' to derive "
                  r"each step as img_shape / grid size \(16, 32, 64, 128, 256, 512 here\), or steps that fit \(the "
                  r"backbone's total stride is 32\)$"),
    ("num_classes_checkpoint", r"error: num_classes is 3 but the class list has 2 names$"),
    ("num_classes_data", r"error: num_classes is 3 but the data has 6 classes \(circle, square, triangle, star, ring, "
                         r"\.\.\.\); leave num_classes at 0 to derive it$"),
])
def test_bad_checkpoint_geometry_or_class_count(heavy_runs, name, pattern):
    line = one_error_line(*heavy_runs[name])
    assert re.match(pattern, line), line

"""Every bad input to every entry point is one line on stderr naming the file, key or variable, and exit code 2.

Each case runs the real script in a subprocess; all of them start at once and are collected afterwards. None of
them gets as far as building a network.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300


def _cases(deployed, tmp):
    """{name: (argv, extra environment, text the error line must hold)}."""
    d = deployed["dir"]
    bad_json = tmp / "bad.json"
    bad_json.write_text('{"images": [1, 2,,]}')
    card = json.loads((d / "model.json").read_text())
    incomplete = tmp / "incomplete.json"
    incomplete.write_text(json.dumps({k: v for k, v in card.items() if k != "class_names"}))
    foreign = tmp / "foreign.json"
    foreign.write_text(json.dumps(dict(card, category_ids=[101, 102, 103, 104, 105, 106])))
    corrupt = tmp / "corrupt"
    corrupt.mkdir()
    for ext in (".onnx", ".mindir"):
        (corrupt / ("model" + ext)).write_bytes(b"\x08\x01 not a model at all")
    (corrupt / "model.json").write_text((d / "model.json").read_text())
    lonely = tmp / "badcard"
    lonely.mkdir()
    shutil.copy(d / "model.onnx", lonely / "model.onnx")
    (lonely / "model.json").write_text("{not json")
    a_file = tmp / "a_file"
    a_file.write_text("x")
    not_a_benchmark = tmp / "other.json"
    not_a_benchmark.write_text("{}")
    post = ["postprocess.py", "--result_path", str(tmp), "--img_path", str(deployed["val_dir"])]
    gt = ["--gt_json", str(deployed["gt"])]
    predict = ["predict.py", "--images", str(deployed["val_dir"])]
    device = ["eval.py", "--checkpoint_path", deployed["ckpt"], "--config_path", deployed["config"]]
    return {
        "gt_json malformed": (post + ["--gt_json", str(bad_json)], {}, f"{bad_json}:1:"),
        "gt_json a folder": (post + ["--gt_json", str(tmp)], {}, f"{tmp} is a folder"),
        "gt_json missing": (post + ["--gt_json", str(tmp / "none.json")], {}, str(tmp / "none.json")),
        "card malformed": (post + gt + ["--model_card", str(bad_json)], {}, f"{bad_json}:1:"),
        "card incomplete": (post + gt + ["--model_card", str(incomplete)], {}, "field 'class_names' is missing"),
        "card of other data": (post + gt + ["--model_card", str(foreign)], {}, "category ids [101, 102"),
        "postprocess old key": (post + ["--anno_path", str(deployed["gt"])], {}, "reads --gt_json now"),
        "predict out is a file": (predict + ["--model_file", str(d / "model.onnx"), "--out", str(a_file)], {},
                                  f"--out {a_file} is a file"),
        "corrupt onnx": (predict + ["--model_file", str(corrupt / "model.onnx")], {},
                         f"{corrupt / 'model.onnx'} cannot be loaded as ONNX"),
        "corrupt mindir": (predict + ["--model_file", str(corrupt / "model.mindir")], {},
                           f"{corrupt / 'model.mindir'} cannot be loaded as MINDIR"),
        "card beside model malformed": (predict + ["--model_file", str(lonely / "model.onnx")], {},
                                        f"{lonely / 'model.json'}:1:"),
        "compare alone": (["benchmark.py", "--compare"], {}, "--compare needs one or more JSON files"),
        "compare malformed": (["benchmark.py", "--compare", str(bad_json)], {}, f"{bad_json}:1:"),
        "compare not a benchmark": (["benchmark.py", "--compare", str(not_a_benchmark)], {},
                                    f"{not_a_benchmark}: not a JSON file written by benchmark.py"),
        "benchmark old steps": (["benchmark.py", "--steps", "5"], {}, "--timed_steps 5"),
        "DEVICE_ID not a number": (device + ["--device_target", "GPU"], {"DEVICE_ID": "one"}, "DEVICE_ID"),
        "device_id negative": (device + ["--device_id", "-1"], {}, "'device_id' must be a device index"),
        "no GPU backend": (device + ["--device_target", "GPU"], {}, "no GPU backend"),
        "no Ascend backend": (device + ["--device_target", "Ascend"], {}, "no Ascend backend"),
        "unknown key": (["train.py", "--lrr", "0.1"], {}, "unknown key '--lrr'"),
        "key of another script": (["eval.py", "--lr", "0.1"], {}, "eval.py does not read --lr"),
        "bad value": (["export.py", "--checkpoint_path", "x.ckpt", "--export_batch_size", "two"], {},
                      "'export_batch_size' expects an integer"),
    }


@pytest.fixture(scope="module")
def results(deployed, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_inputs")
    cases = _cases(deployed, tmp)
    procs = {}
    for name, (argv, env, _) in cases.items():
        procs[name] = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=dict(os.environ, **env),
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    for name, proc in procs.items():
        try:
            _, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        out[name] = (proc.returncode, stderr, cases[name][2])
    return out


CASE_NAMES = ["gt_json malformed", "gt_json a folder", "gt_json missing", "card malformed", "card incomplete",
              "card of other data", "postprocess old key", "predict out is a file", "corrupt onnx", "corrupt mindir",
              "card beside model malformed", "compare alone", "compare malformed", "compare not a benchmark",
              "benchmark old steps", "DEVICE_ID not a number", "device_id negative", "no GPU backend",
              "no Ascend backend", "unknown key", "key of another script", "bad value"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_a_bad_input_is_one_line_and_exit_2(results, name):
    code, stderr, expected = results[name]
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert code == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1 and "error:" in lines[0] and expected in lines[0], stderr[-3000:]


def test_postprocess_reports_errors_without_loading_mindspore(tmp_path):
    """postprocess.py needs no MindSpore, also on its error path: without it installed, errors stay one line."""
    stub = tmp_path / "stub"
    (stub / "mindspore").mkdir(parents=True)
    (stub / "mindspore" / "__init__.py").write_text("raise ImportError('mindspore must not be imported here')\n")
    (tmp_path / "bad.json").write_text("[")
    proc = subprocess.run([sys.executable, "postprocess.py", "--result_path", str(tmp_path), "--img_path",
                           str(tmp_path), "--gt_json", str(tmp_path / "bad.json")], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT, env=dict(os.environ, PYTHONPATH=str(stub)))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'bad.json'}:1:2: not a valid COCO annotation file (--gt_json) (Expecting value)"]

"""export.py: MINDIR reloaded with nn.GraphCell and ONNX in onnxruntime against the checkpoint's own outputs.

The smallest model (SSD-MobileNetV2 300) runs here; `-m slow` exports all five models.
"""
import json
import os
import subprocess
import sys

import mindspore as ms
import pytest

import export
from detection_match import relative_difference
from model_checks import sample_inputs, save_test_checkpoint
from src.config import load_config, model_configs
from src.data.demo import CLASS_NAMES, CATEGORY_IDS
from src.deploy.exporter import name_resize_mode
from src.deploy.loading import inference_net, detector_from_config
from src.deploy.model_card import batch_size_of, read_card
from src.deploy.runtimes import MindIRRuntime, OnnxRuntime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def export_and_compare(config_path, tmp, formats=("MINDIR", "ONNX"), batch_size=2):
    """Export a test checkpoint of `config_path`; returns {format: (boxes diff, scores diff)}, each the largest
    difference from the checkpoint's outputs relative to their largest magnitude (tests/detection_match.py)."""
    ckpt = save_test_checkpoint(config_path, tmp / "model.ckpt", CLASS_NAMES, CATEGORY_IDS)
    cfg = load_config(config_path, checkpoint_path=ckpt)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    infer = inference_net(detector_from_config(cfg)[0], cfg.prior_scaling)
    x = sample_inputs(cfg, batch_size, offset=3)
    want = [t.asnumpy() for t in infer(ms.Tensor(x))]
    diffs = {}
    for fmt in formats:
        args = ["--config_path", config_path, "--checkpoint_path", ckpt, "--file_format", fmt,
                "--export_batch_size", str(batch_size)]
        assert export.main(args) == 0
        path = str(tmp / ("model." + fmt.lower()))
        runtime = MindIRRuntime(path, batch_size) if fmt == "MINDIR" else OnnxRuntime(path)
        got = runtime(x)
        diffs[fmt] = tuple(relative_difference(g, w) for g, w in zip(got, want))
    ms.set_context(mode=ms.PYNATIVE_MODE)
    return diffs


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    diffs = export_and_compare(os.path.join(REPO, "configs", "ssd_mobilenet_v2_300.yaml"), tmp)
    return tmp, diffs


# GraphCell and PyNative run the same float32 ops through other kernels and orders of summation: their outputs agree
# to float32's precision through a deep network, which is about 1e-6 of the values' scale, not bit for bit.
FLOAT32_NETWORK_RTOL = 1e-4


def test_mindir_reloaded_with_graphcell_matches_the_checkpoint(exported):
    tmp, diffs = exported
    assert max(diffs["MINDIR"]) < FLOAT32_NETWORK_RTOL, diffs


def test_onnx_in_onnxruntime_matches_within_1e_4(exported):
    tmp, diffs = exported
    assert max(diffs["ONNX"]) < FLOAT32_NETWORK_RTOL, diffs
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores"]
    assert session.get_inputs()[0].shape == [2, 3, 300, 300]
    assert session.get_outputs()[1].shape == [2, 1917, len(CLASS_NAMES)]


def test_the_card_describes_both_exports(exported):
    tmp, _ = exported
    card = read_card(str(tmp / "model.onnx"))
    assert card["model_name"] == "ssd_mobilenet_v2"
    assert card["class_names"] == list(CLASS_NAMES) and card["category_ids"] == list(CATEGORY_IDS)
    assert card["img_shape"] == [300, 300] and card["img_mean"] == [123.675, 116.28, 103.53]
    assert card["outputs"] == {"boxes": ["B", 1917, 4], "scores": ["B", 1917, 6]}
    assert batch_size_of(card, str(tmp / "model.mindir")) == 2 and batch_size_of(card, str(tmp / "model.onnx")) == 2
    assert card["nms"] == {"min_score": 0.02, "nms_threshold": 0.6, "max_boxes": 100, "pre_nms_top_k": 1000}
    assert not [f for f in os.listdir(tmp) if ".tmp" in f]


def test_batch_size_defaults_to_1_not_the_training_batch(exported):
    tmp, _ = exported
    cfg_path = os.path.join(REPO, "configs", "ssd_mobilenet_v2_300.yaml")
    out = tmp / "b1"
    assert export.main(["--config_path", cfg_path, "--checkpoint_path", str(tmp / "model.ckpt"),
                        "--file_format", "ONNX", "--file_name", str(out)]) == 0
    assert load_config(cfg_path).batch_size == 8
    assert OnnxRuntime(str(out) + ".onnx").batch_size == 1
    assert json.loads((tmp / "b1.json").read_text())["exports"]["ONNX"] == {"file": "b1.onnx", "batch_size": 1}


def run_export(args):
    proc = subprocess.run([sys.executable, "export.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_air_off_ascend_and_a_checkpoint_of_another_model_are_one_line_errors(exported):
    tmp, _ = exported
    code, err = run_export(["--config_path", "configs/ssd_mobilenet_v2_300.yaml", "--checkpoint_path",
                            str(tmp / "model.ckpt"), "--file_format", "AIR"])
    assert code == 2 and err[-1].startswith("error: AIR export needs MindSpore with an Ascend backend"), err
    assert not (tmp / "model.air").exists()
    code, err = run_export(["--config_path", "configs/ssd_ghostnet_300.yaml", "--checkpoint_path",
                            str(tmp / "model.ckpt"), "--file_format", "ONNX"])
    assert code == 2 and "holds a ssd_mobilenet_v2 model but the config builds ssd_ghostnet" in err[-1], err


def test_resize_nodes_get_an_explicit_nearest_mode(tmp_path):
    """MindSpore's Resize has no `mode`; MindSpore Lite would read that as bilinear, onnxruntime as nearest."""
    from onnx import TensorProto, helper
    node = helper.make_node("Resize", ["x", "roi", "scales", "sizes"], ["y"],
                            coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])])
    model = helper.make_model(graph)
    assert name_resize_mode(model) == 1 and name_resize_mode(model) == 0
    modes = [a.s for a in model.graph.node[0].attribute if a.name == "mode"]
    assert modes == [b"nearest"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ssd_ghostnet_300", "ssd_mobilenet_v2_300", "ssd_vgg16_300",
                                  "ssd_resnet50_fpn_640", "efficientdet_d0_512"])
def test_every_model_exports_to_mindir_and_onnx(name, tmp_path):
    diffs = export_and_compare(model_configs()[name], tmp_path, batch_size=1)
    assert max(diffs["MINDIR"]) < FLOAT32_NETWORK_RTOL and max(diffs["ONNX"]) < FLOAT32_NETWORK_RTOL, diffs

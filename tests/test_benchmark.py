"""benchmark.py: the measurements run, land in the JSON, and the FLOP counter and synthetic outputs are right."""
import json
import logging
import os

import mindspore.nn as nn
import numpy as np
import pytest

from src.benchmarks.flops import forward_flops
from src.benchmarks.postprocess_bench import benchmark_postprocess
from src.config import load_config
from src.evaluation.postprocess import NMSParams
from src.models.detector import build_detector

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOBILENET_V2 = os.path.join(REPO, "configs", "ssd_mobilenet_v2_300.yaml")


def test_flops_of_known_layers():
    net = nn.SequentialCell([
        nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1),              # 16x16 out: 2 * 8*16*16 * 3*9
        nn.Conv2d(8, 8, 3, stride=2, pad_mode="pad", padding=1, group=8),   # 8x8 out: 2 * 8*8*8 * 1*9
        nn.Conv2d(8, 4, 1),                                          # 2 * 4*8*8 * 8
        nn.Flatten(), nn.Dense(256, 10)])                            # 2 * 10 * 256
    total, by_type = forward_flops(net, (16, 16))
    assert by_type["Conv2d"] == 2 * 8 * 256 * 27 + 2 * 8 * 64 * 9 + 2 * 4 * 64 * 8
    assert by_type["Dense"] == 2 * 10 * 256
    assert total == sum(by_type.values())


def test_flops_of_a_detector_scale_with_the_image_area():
    cfg = load_config(MOBILENET_V2, width_mult=0.25, steps=[])
    net = build_detector(cfg, 6)
    small, _ = forward_flops(net, (160, 160))
    large, _ = forward_flops(net, (320, 320))
    assert 3.5 < large / small < 4.5


def test_synthetic_outputs_decode_to_their_ground_truth():
    cfg = load_config(MOBILENET_V2)
    anchors = build_detector(cfg, 80).spec.anchors
    r = benchmark_postprocess(anchors, 80, False, cfg.prior_scaling, NMSParams.from_config(cfg), num_images=30)
    assert r["images"] == 30 and r["anchors"] == 1917 and r["detections_per_image"] <= 100
    # The matched anchors predict each box within noise: a decode, NMS or id mix-up would sink the mAP.
    assert r["mAP_of_synthetic_outputs"] > 0.5
    assert r["s_per_1000_images"] == pytest.approx(r["total_s"] * 1000 / 30)


@pytest.fixture
def ssd_logger_restored():
    """benchmark.main sets up the "ssd" logger for the console (no propagation, a handler on this test's captured
    stderr); later tests read that logger through caplog, so it is put back as it was."""
    logger = logging.getLogger("ssd")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def test_benchmark_script_writes_every_measurement(tmp_path, capsys, ssd_logger_restored):
    import benchmark
    out = tmp_path / "bench.json"
    data = ["--dataset", "demo", "--demo_root", str(tmp_path / "demo"), "--demo_num_train", "16",
            "--demo_num_val", "4", "--mindrecord_dir", str(tmp_path / "mindrecord")]
    small = ["--width_mult", "0.25", "--img_shape", "96", "96", "--steps", "[]", "--batch_size", "2"]
    argv = ["--config_path", MOBILENET_V2, *data, *small, "--timed_steps", "2", "--warmup_steps", "1",
            "--pipeline_batches", "3", "--eval_images", "20", "--infer_runs", "2", "--json_path", str(out)]
    assert benchmark.main(argv) == 0
    r = json.loads(out.read_text())
    assert r["model_name"] == "ssd_mobilenet_v2" and r["img_shape"] == [96, 96]
    assert r["train"]["steps"] == 2 and len(r["train"]["warmup_s"]) == 1
    assert r["train"]["median_s_per_step"] > 0 and r["train"]["images_per_s"] > 0
    assert r["train"]["fraction_of_gemm_peak"] > 0   # a timing: its size is the benchmark's business, not a test's
    assert r["flops"]["train_gflops_per_image"] == pytest.approx(3 * r["flops"]["forward_gflops_per_image"])
    assert r["gemm_peak_gflops"] > 1
    assert r["pipeline"]["images_per_s"] > 0 and r["inference"]["median_ms"] > 0
    assert {m["anchors"] for m in r["matching"].values()} >= {8732, 51150}
    assert all(m["ms_per_image"] > 0 for m in r["matching"].values())
    assert r["postprocess"]["images"] == 20 and r["peak_rss_mb"] >= r["train"]["peak_rss_mb"] > 0
    printed = capsys.readouterr().out
    assert "s/step median" in printed and f"wrote {out}" in printed


def test_unknown_benchmark_is_one_line(capsys, ssd_logger_restored):
    import benchmark
    from src.cli import run_main
    with pytest.raises(SystemExit) as e:
        run_main(lambda: benchmark.main(["--benchmarks", "trian"]))
    assert e.value.code == 2
    assert "unknown ['trian']" in capsys.readouterr().err


def test_the_old_steps_flag_names_timed_steps(capsys, ssd_logger_restored):
    import benchmark
    from src.cli import run_main
    for argv in (["--steps", "5"], ["--steps=7", "--batch_size", "2"]):
        with pytest.raises(SystemExit) as e:
            run_main(lambda: benchmark.main(argv))
        assert e.value.code == 2
        assert "the number of timed training steps is --timed_steps" in capsys.readouterr().err
    assert np.isfinite(load_config().timed_steps)

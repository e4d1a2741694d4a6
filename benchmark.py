"""Speed and memory of one model on this machine; prints a summary and writes it as JSON.

    python benchmark.py --config_path configs/ssd_mobilenet_v2_300.yaml --batch_size 8 --timed_steps 20
    python benchmark.py --config_path configs/ssd_resnet50_fpn_640.yaml --benchmarks train --timed_steps 5
    python benchmark.py --benchmarks matching postprocess --eval_images 5000
    python benchmark.py --compare runs/benchmarks/a.json runs/benchmarks/b.json   # side by side, with ratios

Measures: steady-state training s/step and img/s (compile steps excluded), the data pipeline's img/s alone,
matching + encoding per image, decode + NMS + COCOeval per 1000 images from stored raw outputs, batch-1 inference
latency, peak RSS, FLOPs per image and the fraction of the measured GEMM peak that training reaches.
"""
import itertools
import sys

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main
from src.config import parse_config


# The config groups benchmark.py reads (default_config.yaml): everything training reads, and its own.
GROUPS = ("model", "anchors", "loss", "data", "augmentation", "train", "eval", "nms", "benchmark", "device")


def _check_steps_flag(argv):
    """`--steps N` once meant the timed step count here; `steps` is the SSD anchor steps, as everywhere."""
    for i, arg in enumerate(argv):
        if arg.startswith("--steps="):
            values = [arg[8:]]
        elif arg == "--steps":
            values = list(itertools.takewhile(lambda a: not a.startswith("--"), argv[i + 1:]))
        else:
            continue
        if len(values) == 1 and values[0].isdigit():
            from src.config import ConfigError
            raise ConfigError(f"--steps {values[0]}: steps is the SSD anchor steps; the number of timed training "
                              f"steps is --timed_steps {values[0]}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--compare"]:
        from src.benchmarks.compare import compare
        if len(argv) < 2:
            from src.config import ConfigError
            raise ConfigError("--compare needs one or more JSON files written by benchmark.py")
        print(compare(argv[1:]))
        return 0
    _check_steps_flag(argv)
    cfg = parse_config(argv, description="Benchmark one model: training, data, matching, post-processing, "
                                         "inference, memory and FLOPs.", groups=GROUPS)
    from src.benchmarks.runner import run_benchmarks_from_config, selected_phases
    from src.device import device_from_config
    from src.training.trainer import setup_logging

    selected_phases(cfg.benchmarks)  # a typo fails before anything is built
    setup_logging()
    run_benchmarks_from_config(cfg, device_from_config(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

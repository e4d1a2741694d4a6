"""Evaluate a checkpoint with COCO mAP: the 12-line table, `mAP: <value>`, per-class AP, and a detections JSON.

    python eval.py --checkpoint_path runs/NAME/best.ckpt [--config_path configs/...yaml] [--dataset coco ...]
"""
import os
import sys

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main
from src.config import parse_config


# The config groups eval.py reads (default_config.yaml), and `loss`, which sets the head's outputs.
GROUPS = ("model", "anchors", "data", "eval", "nms", "checkpoint", "plots", "device")
KEYS = ("loss",)


def main(argv=None):
    cfg = parse_config(argv, description="Evaluate a detector checkpoint with COCO mAP.",
                       required=("checkpoint_path",), run_config_from="checkpoint_path", groups=GROUPS, keys=KEYS)
    from src.data.sources import build_split, resolve_num_classes
    from src.device import device_from_config
    from src.evaluation.runner import DatasetEvaluator
    from src.fileio import write_json_atomic
    from src.models.detector import build_detector
    from src.training.checkpoint import load_weights, read_checkpoint

    params, meta = read_checkpoint(cfg.checkpoint_path)
    device_from_config(cfg)
    # The checkpoint's class list keeps labels aligned with what the model was trained on.
    info = build_split(cfg, "eval", classes=list(cfg.classes) or meta.get("class_names"))
    net = build_detector(cfg, resolve_num_classes(cfg.num_classes, info.class_names))
    weights = load_weights(net, params, cfg.checkpoint_path, cfg.ema_weights)
    evaluator = DatasetEvaluator.from_config(cfg, net, info)
    print(f"evaluating {cfg.checkpoint_path} ({weights} weights) on {info.num_images} images")
    result = evaluator()
    stem = os.path.splitext(os.path.abspath(cfg.checkpoint_path))[0]
    evaluator.coco.save(stem + "_detections.json")
    write_json_atomic(stem + "_eval.json", result, indent=1)
    print(f"detections written to {stem}_detections.json; {result['images_per_second']:.1f} images/s")
    if cfg.plots:
        from src.plots.evaluation import write_eval_plots
        paths = write_eval_plots(evaluator.coco, result, stem, cfg.confusion_score)
        print("pictures: " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

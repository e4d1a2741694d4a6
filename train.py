"""Train a single-shot detector. `python train.py -h` lists every config key.

    python train.py                                   # default_config.yaml on the built-in demo set
    python train.py --config_path configs/ssd_mobilenet_v2_300.yaml --dataset coco --coco_root /data/coco2017
    python train.py --resume runs/NAME/last.ckpt      # continue with the same epoch, lr and optimizer state
"""
import os
import sys
import time

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main
from src.config import parse_config


def make_run_dir(cfg):
    if cfg.resume:
        return os.path.dirname(os.path.abspath(cfg.resume))
    name = cfg.run_name or f"{cfg.model_name}_{time.strftime('%Y%m%d-%H%M%S')}"
    return os.path.abspath(os.path.join(cfg.output_dir, name))


def main(argv=None):
    cfg = parse_config(argv, description="Train a single-shot detector.", run_config_from="resume")
    from src.data.sources import prepare_split, resolve_num_classes
    from src.training.checkpoint import CheckpointError

    # Checked before the (possibly long) dataset conversion.
    for key in ("resume", "pre_trained", "pre_trained_backbone"):
        if cfg[key] and not os.path.isfile(cfg[key]):
            raise CheckpointError(f"--{key}: checkpoint not found: {cfg[key]}")

    if cfg.only_create_dataset:
        info = prepare_split(cfg, "train")
        prepare_split(cfg, "eval", classes=info.class_names)
        return 0

    from src.device import setup_device
    from src.training.builder import build_training
    from src.training.trainer import setup_logging

    device = setup_device(cfg)
    run_dir = make_run_dir(cfg)
    log = setup_logging(run_dir if device.is_main else None, device.rank)
    if device.is_main:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.yaml"), "w", encoding="utf-8") as f:
            f.write(cfg.to_yaml())
    train_info = prepare_split(cfg, "train")
    num_classes = resolve_num_classes(cfg, train_info.class_names)
    eval_info = prepare_split(cfg, "eval", classes=train_info.class_names) if cfg.run_eval else None
    log.info(f"run folder {run_dir}; device {device.device_target}, {device.group_size} device(s); "
             f"{train_info.num_images} training images, {num_classes} classes")
    session = build_training(cfg, train_info, num_classes, device, eval_info)
    trainer = session.trainer(run_dir)
    trainer.fit(session.start_epoch)
    log.info(f"checkpoints in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

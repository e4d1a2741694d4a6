"""Train a single-shot detector. `python train.py -h` lists every config key.

    python train.py                                   # default_config.yaml on the built-in demo set
    python train.py --config_path configs/ssd_mobilenet_v2_300.yaml --dataset coco --coco_root /data/coco2017
    python train.py --resume runs/NAME/last.ckpt      # continue with the same epoch, lr and optimizer state
    bash scripts/run_distribute_train_msrun.sh 2      # data parallel: one train.py per device, --run_distribute True
"""
import os
import sys
import time

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main
from src.config import parse_config
from src.data.records import DatasetError
from src.fileio import atomic_path


# The config groups train.py reads (default_config.yaml); -h lists their keys.
GROUPS = ("model", "anchors", "loss", "data", "augmentation", "train", "eval", "nms", "device")


def make_run_dir(cfg):
    if cfg.resume:
        return os.path.dirname(os.path.abspath(cfg.resume))
    name = cfg.run_name or f"{cfg.model_name}_{time.strftime('%Y%m%d-%H%M%S')}"
    return os.path.abspath(os.path.join(cfg.output_dir, name))


def prepare_data(cfg, device):
    """(train MindRecordInfo, eval MindRecordInfo or None, num_classes).

    Distributed: rank 0 builds the MindRecords (and the demo set) alone while the other ranks wait at a barrier,
    then they reuse its files; one that cannot (no shared storage) fails with a clear message, never rebuilds.
    An exception on rank 0 ends its process, and the launcher then stops the ranks still waiting.
    """
    from src.data.sources import build_split, resolve_num_classes

    def prepare(build=True):
        train_info = build_split(cfg, "train", build=build)
        num_classes = resolve_num_classes(cfg.num_classes, train_info.class_names)
        eval_info = None
        if cfg.run_eval and device.is_main:  # evaluation runs on rank 0 only
            eval_info = build_split(cfg, "eval", classes=train_info.class_names, build=build)
        return train_info, eval_info, num_classes

    if device.is_main:
        result = prepare()
    device.barrier()
    if device.is_main:
        return result
    try:
        return prepare(build=False)
    except DatasetError as e:
        raise DatasetError(f"rank {device.rank}: {e}. Rank 0 built the MindRecord in {cfg.mindrecord_dir}; on "
                           "several machines that folder (and the data) must be on storage that every machine "
                           "sees, or be built on each one first with --only_create_dataset True") from None


def main(argv=None):
    cfg = parse_config(argv, description="Train a single-shot detector.", run_config_from="resume", groups=GROUPS)
    from src.data.sources import build_split
    from src.training.checkpoint import CheckpointError

    # Checked before the (possibly long) dataset conversion.
    for key in ("resume", "pre_trained", "pre_trained_backbone"):
        if cfg[key] and not os.path.isfile(cfg[key]):
            raise CheckpointError(f"--{key}: checkpoint not found: {cfg[key]}")

    if cfg.only_create_dataset:
        info = build_split(cfg, "train")
        build_split(cfg, "eval", classes=info.class_names)
        return 0

    from src.device import device_from_config
    from src.training.builder import build_training
    from src.training.trainer import setup_logging

    device = device_from_config(cfg, training=True)
    run_dir = make_run_dir(cfg)
    log = setup_logging(run_dir if device.is_main else None, device.rank)
    if device.is_main:  # one run folder, config, log and set of checkpoints per job: rank 0's
        os.makedirs(run_dir, exist_ok=True)
        with atomic_path(os.path.join(run_dir, "config.yaml")) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(cfg.to_yaml())
    train_info, eval_info, num_classes = prepare_data(cfg, device)
    log.info(f"run folder {run_dir}; device {device.device_target}, {device.group_size} device(s); "
             f"{train_info.num_images} training images, {num_classes} classes")
    session = build_training(cfg, train_info, num_classes, device, eval_info)
    trainer = session.build_trainer(run_dir)
    trainer.fit(session.start_epoch)
    if device.is_main:
        log.info(f"checkpoints in {run_dir}")
    if device.distributed:
        device.exit_process(0)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Assemble a training session from the config: detector, data, loss, optimizer, step, resume, evaluation."""
import logging
from dataclasses import dataclass
from functools import partial

import mindspore as ms
import numpy as np

from ..data.pipeline import train_dataset_from_config
from ..data.records import DatasetError
from ..evaluation.runner import DatasetEvaluator
from ..losses import DetectionLoss
from ..models.detector import build_detector, count_parameters
from ..kernels.swap import kernel_plan, use_cpu_kernels
from .checkpoint import CheckpointError, load_into, load_train_state, read_checkpoint
from .ema import ModelEMA
from .lr_schedule import linear_scaled_lr, warmup_cosine_lr
from .rank_dump import RankDump
from .train_step import TrainStep, build_loss_scale, build_optimizer
from .trainer import Trainer

log = logging.getLogger("ssd")

# The `amp_level` key's values: MindSpore's auto_mixed_precision levels (O0 is float32 throughout).
AMP_LEVELS = ("O0", "O1", "O2", "O3")


@dataclass
class TrainingSession:
    cfg: object
    net: object
    train_step: object
    dataset: object
    lr: object
    start_epoch: int
    meta: dict
    device: object
    evaluate: object = None
    dump: object = None

    def build_trainer(self, run_dir):
        cfg = self.cfg
        return Trainer(self.net, self.train_step, self.dataset, self.lr, run_dir, self.meta,
                       epochs=cfg.epoch_size, batch_size=cfg.batch_size, log_interval=cfg.log_interval,
                       save_checkpoint_epochs=cfg.save_checkpoint_epochs, keep_checkpoint_max=cfg.keep_checkpoint_max,
                       eval_interval=cfg.eval_interval, dataset_sink_mode=cfg.dataset_sink_mode,
                       is_main=self.device.is_main, evaluate=self.evaluate, max_nan_steps=cfg.max_nan_steps,
                       group_size=self.device.group_size, dump=self.dump)


def _examples(names, count=3):
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")


def load_backbone(net, path):
    """Load a backbone checkpoint into `net.backbone`; returns (loaded, missing, unexpected) names.

    Names may be relative to the backbone (convert_weights.py writes `features.0.conv.weight`) or those of a whole
    detector checkpoint (`backbone.features.0.conv.weight`), whose neck and head are then ignored.
    """
    params, _ = read_checkpoint(path)
    prefix = "backbone." if any(k.startswith("backbone.") for k in params) else ""
    loaded, missing, unexpected = load_into(net.backbone, params, path, prefix=prefix)
    text = f"pre_trained_backbone {path}: loaded {len(loaded)} backbone parameters; {len(missing)} missing"
    if missing:
        text += f" ({_examples(missing)}: left at their initial values)"
    text += f"; {len(unexpected)} unexpected"
    if unexpected and all(n.startswith("classifier.") for n in unexpected):
        text += f" ({_examples(unexpected)}: the ImageNet classifier, which a detector does not use; as expected)"
    elif unexpected:
        text += f" ({_examples(unexpected)}: ignored)"
    (log.warning if missing else log.info)(text)
    return loaded, missing, unexpected


def load_pretrained(net, backbone_path="", path="", filter_prefixes=()):
    """The backbone checkpoint first, then the whole-network one, so that the latter has the last word."""
    if backbone_path:
        load_backbone(net, backbone_path)
    if path:
        params, _ = read_checkpoint(path)
        loaded, missing, unexpected = load_into(net, params, path, filter_prefixes=tuple(filter_prefixes))
        log.info(f"pre_trained {path}: loaded {len(loaded)} parameters, {len(missing)} missing, "
                 f"{len(unexpected)} unexpected")


def peak_lr(lr, batch_size, device, scale_lr=True, base_batch_size=8):
    """`lr`, scaled linearly to the global batch in a distributed run (`scale_lr`); the choice is logged."""
    if not device.distributed:
        return lr
    global_batch = batch_size * device.group_size
    if not scale_lr:
        log.info(f"lr {lr:g} used as given for global batch {global_batch} (scale_lr false)")
        return lr
    scaled = linear_scaled_lr(lr, global_batch, base_batch_size)
    log.info(f"lr {lr:g} scaled to {scaled:g} for global batch {global_batch} (base_batch_size {base_batch_size})")
    return scaled


def _evaluate_averaged(evaluate, ema):
    """Evaluation during training scores the EMA weights, which best.ckpt is chosen by and inference uses."""
    with ema.applied():
        return evaluate()


def build_training(cfg, train_info, num_classes, device, eval_info=None):
    """Everything a Trainer needs. Evaluation (eval_info) runs on the main rank only."""
    net = build_detector(cfg, num_classes)
    log.info(f"{cfg.model_name}: {count_parameters(net):,} parameters, {net.spec.num_anchors} anchors, "
             f"feature maps {net.spec.feature_sizes}")
    load_pretrained(net, cfg.pre_trained_backbone, cfg.pre_trained, cfg.checkpoint_filter_list)
    kernels, no_kernels_reason = kernel_plan(cfg.cpu_kernels, device.device_target, cfg.amp_level, cfg.recompute)
    if cfg.recompute:
        log.info(f"recompute: {net.use_recompute()} blocks recompute their activations in the backward pass")
    if cfg.amp_level != "O0":
        # O2/O3 keep the loss in float32: DetectionLoss casts the predictions back.
        ms.amp.auto_mixed_precision(net, cfg.amp_level)

    dump = RankDump(cfg.rank_dump_dir, device.rank, device.group_size) if cfg.rank_dump_dir else None
    dataset = train_dataset_from_config(cfg, train_info.path, net.spec.anchors, device.rank, device.group_size,
                                        with_ids=dump is not None)
    steps = dataset.get_dataset_size()
    if steps == 0:
        share = "" if device.group_size == 1 else f" ({-(-train_info.num_images // device.group_size)} per device)"
        raise DatasetError(f"{train_info.num_images} training images{share} are fewer than one batch of "
                           f"{cfg.batch_size} per device; lower --batch_size")
    lr = warmup_cosine_lr(peak_lr(cfg.lr, cfg.batch_size, device, cfg.scale_lr, cfg.base_batch_size), steps,
                          cfg.epoch_size, cfg.warmup_epochs, cfg.lr_end_ratio)
    loss = DetectionLoss.from_config(net, cfg)
    if kernels:
        switched = use_cpu_kernels(loss)
        if switched:
            log.info(f"cpu_kernels: {switched} layers (depthwise convs, batch norms, focal loss) run on the C++ "
                     "CPU kernels")
    elif no_kernels_reason:
        log.info(f"cpu_kernels: {no_kernels_reason}")
    optimizer = build_optimizer(net, lr, cfg.momentum, cfg.weight_decay, cfg.optimizer)
    ema = ModelEMA(net, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None
    train_step = TrainStep(loss, optimizer, build_loss_scale(cfg.loss_scale_type, cfg.loss_scale),
                           cfg.grad_clip_norm, ema)
    train_step.set_train(True)

    start_epoch, best_map = 0, -1.0  # -1: no evaluation yet
    if cfg.resume:
        params, saved = read_checkpoint(cfg.resume)
        if saved.get("class_names", train_info.class_names) != list(train_info.class_names):
            raise CheckpointError(f"{cfg.resume} was trained on classes {saved['class_names']}, the data now has "
                                  f"{list(train_info.class_names)}; resume needs the same classes in the same order")
        load_into(net, params, cfg.resume, strict=True)
        load_train_state(train_step, params, cfg.resume)
        if ema is not None and not ema.load(params, cfg.resume):
            log.warning(f"{cfg.resume} holds no EMA weights: the average starts afresh from its weights")
        start_epoch = int(saved.get("epoch", 0))
        best_map = float(saved.get("best_map", -1.0))
        log.info(f"resumed {cfg.resume} at epoch {start_epoch}, step {saved.get('global_step', 0)}")
    elif cfg.pre_trained and cfg.pre_trained_epoch_size > 0:
        # The model zoo's PRE_TRAINED_EPOCH_SIZE: the weights come from an earlier run that ended at that epoch.
        start_epoch = int(cfg.pre_trained_epoch_size)
        step = train_step.optimizer.global_step
        step.set_data(ms.Tensor(np.full(step.shape, start_epoch * steps), step.dtype))
        log.info(f"pre_trained_epoch_size {start_epoch}: training starts at epoch {start_epoch + 1}, on the lr "
                 f"schedule's step {start_epoch * steps}")

    meta = {"model_name": cfg.model_name, "class_names": list(train_info.class_names),
            "category_ids": [int(c) for c in train_info.category_ids], "best_map": best_map}
    evaluate = None
    if eval_info is not None and device.is_main:
        evaluate = partial(DatasetEvaluator.from_config(cfg, net, eval_info), verbose=False)
        if ema is not None:
            evaluate = partial(_evaluate_averaged, evaluate, ema)
    return TrainingSession(cfg, net, train_step, dataset, lr, start_epoch, meta, device, evaluate, dump)

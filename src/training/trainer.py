"""The training loop: steps, progress lines, checkpoints, periodic evaluation and best.ckpt."""
import logging
import math
import os
import time

import numpy as np

from .checkpoint import save_checkpoint
from .results_log import ResultsLog

log = logging.getLogger("ssd")


def setup_logging(run_dir=None, rank=0):
    """Progress to the console (every rank: a launcher keeps one log per rank) and to `run_dir/train.log`.

    Only rank 0 is given a run folder; the other ranks' lines carry a `[rank N]` tag.
    """
    logger = logging.getLogger("ssd")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    logger.propagate = False
    fmt = logging.Formatter(f"%(asctime)s [rank {rank}] %(message)s" if rank else "%(asctime)s %(message)s",
                            "%H:%M:%S")
    console = logging.StreamHandler()
    console.setFormatter(fmt)
    logger.addHandler(console)
    if run_dir:
        os.makedirs(run_dir, exist_ok=True)
        handler = logging.FileHandler(os.path.join(run_dir, "train.log" if rank == 0 else f"train_rank{rank}.log"))
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def _duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Trainer:
    """Runs `train_step` over `dataset` for the remaining epochs of a learning-rate schedule.

    `evaluate()` (optional) returns a result dict with `mAP`, every `eval_interval` epochs and after the last; the
    best finite mAP is kept as best.ckpt. `last.ckpt` is written every epoch and `epoch_N.ckpt` every
    `save_checkpoint_epochs` (the newest `keep_checkpoint_max` kept). In a distributed run only the main rank writes
    checkpoints and evaluates; `group_size` only changes the reported throughput. `dump` (a RankDump, optional)
    records the img_ids of each batch: the dataset then yields them as its last column. The main rank also keeps
    results.csv and results.png (src/training/results_log.py).
    """

    def __init__(self, net, train_step, dataset, lr, run_dir, meta, *, epochs, batch_size, log_interval=10,
                 save_checkpoint_epochs=5, keep_checkpoint_max=3, eval_interval=5, dataset_sink_mode=False,
                 is_main=True, evaluate=None, max_nan_steps=10, group_size=1, dump=None):
        self.net = net
        self.train_step = train_step
        self.dataset = dataset
        self.lr = lr
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.log_interval = int(log_interval)
        self.save_checkpoint_epochs = int(save_checkpoint_epochs)
        self.keep_checkpoint_max = int(keep_checkpoint_max)
        self.eval_interval = int(eval_interval)
        self.dataset_sink_mode = bool(dataset_sink_mode)
        self.run_dir = run_dir
        self.meta = meta
        self.is_main = is_main
        self.evaluate = evaluate
        self.max_nan_steps = max_nan_steps
        self.group_size = group_size
        self.dump = dump
        self.steps_per_epoch = dataset.get_dataset_size()
        self.best_map = meta.get("best_map", -1.0)  # carried over by --resume
        self.history = []

    def _lr_at(self, global_step):
        """The learning rate of the step that ended at `global_step` steps."""
        return float(self.lr[min(global_step - 1, len(self.lr) - 1)])

    def _save(self, name, epoch, global_step):
        if not self.is_main:
            return None
        # Weights that went inf/NaN are never written: the previous file under this name stays the good one.
        for pname, param in self.net.parameters_and_names():
            if not np.isfinite(param.asnumpy()).all():
                raise FloatingPointError(f"parameter '{pname}' is not finite at epoch {epoch}; {name} was not "
                                         f"written, and the previous one in {self.run_dir} is kept")
        meta = dict(self.meta, epoch=epoch, global_step=global_step, best_map=self.best_map)
        return save_checkpoint(os.path.join(self.run_dir, name), self.net, self.train_step, meta)

    def consider_best(self, value, epoch, global_step):
        """best.ckpt moves only to a finite mAP better than every earlier one (a NaN never compares better)."""
        if math.isfinite(value) and value > self.best_map:
            self.best_map = value
            self._save("best.ckpt", epoch, global_step)
            log.info(f"epoch {epoch}: mAP {value:.4f}, the best so far: saved best.ckpt")
            return True
        log.info(f"epoch {epoch}: mAP {value:.4f} (best {self.best_map:.4f})")
        return False

    def _prune(self):
        epochs = sorted((int(f[6:-5]), f) for f in os.listdir(self.run_dir)
                        if f.startswith("epoch_") and f.endswith(".ckpt") and f[6:-5].isdigit())
        for _, f in epochs[:max(len(epochs) - self.keep_checkpoint_max, 0)]:
            os.remove(os.path.join(self.run_dir, f))

    def _use_sink(self):
        """dataset_sink_mode on a GPU or Ascend device; MindSpore has no data sink on the CPU."""
        if not self.dataset_sink_mode:
            return False
        import mindspore as ms
        target = ms.get_context("device_target")
        if target == "CPU":
            log.warning("dataset_sink_mode: MindSpore sinks data on GPU and Ascend only; on the CPU every step is "
                        "fed from the host as without it")
            return False
        if self.dump:
            raise ValueError("rank_dump_dir needs each batch's image ids on the host: run it without "
                             "dataset_sink_mode")
        return True

    def _host_steps(self, epochs):
        """Per epoch: (step index, 1, train_step outputs) for each batch, fed from the host."""
        iterator = self.dataset.create_tuple_iterator(num_epochs=epochs)

        def steps_of(epoch):
            for i, inputs in enumerate(iterator):
                if self.dump:
                    *inputs, img_ids = inputs
                    self.dump.add(epoch + 1, img_ids.asnumpy())
                yield i, 1, self.train_step(*inputs)
        return steps_of

    def _sink_steps(self, epochs):  # noqa: ARG002 (data_sink repeats the dataset itself)
        """Per epoch: (index of the sink's last step, steps in it, outputs of that step) per data-sink call.

        Each call runs `sink` steps inside MindSpore, the largest divisor of the epoch's steps up to log_interval,
        so that an epoch ends on a sink boundary; losses and overflow are seen once per call.
        """
        import mindspore as ms
        sink = max(d for d in range(1, min(self.log_interval, self.steps_per_epoch) + 1)
                   if self.steps_per_epoch % d == 0)
        run = ms.data_sink(self.train_step, self.dataset, sink_size=sink)
        log.info(f"dataset_sink_mode: {sink} steps per sink")

        def steps_of(epoch):
            for call in range(self.steps_per_epoch // sink):
                yield (call + 1) * sink - 1, sink, run()
        return steps_of

    def fit(self, start_epoch=0):
        epochs = self.epochs
        if start_epoch >= epochs:
            log.info(f"nothing to do: the run is already at epoch {start_epoch} of {epochs}")
            return self.history
        remaining_epochs = epochs - start_epoch
        steps_of = self._sink_steps(remaining_epochs) if self._use_sink() else self._host_steps(remaining_epochs)
        global_step = start_epoch * self.steps_per_epoch
        batch = self.batch_size
        step_times = []
        nan_steps = 0
        results = ResultsLog(self.run_dir, start_epoch) if self.is_main and self.run_dir else None
        run_start = time.perf_counter()
        for epoch in range(start_epoch, epochs):
            self.net.set_train(True)
            losses = []
            tick = time.perf_counter()
            if self.dump:
                self.dump.start_epoch(epoch + 1)
            parts = []
            epoch_start = len(step_times)
            for i, count, (loss, overflow, scale, cls_loss, box_loss) in steps_of(epoch):
                loss = float(loss.asnumpy())
                now = time.perf_counter()
                step_times += [(now - tick) / count] * count
                tick = now
                global_step += count
                if not math.isfinite(loss) or bool(overflow.asnumpy()):
                    nan_steps += 1
                    log.warning(f"epoch {epoch + 1} step {i + 1}: loss {loss} is not finite or the gradients "
                                f"overflowed (loss scale {float(scale.asnumpy()):g}); the step was skipped")
                    if nan_steps >= self.max_nan_steps:
                        raise FloatingPointError(
                            f"{nan_steps} consecutive non-finite steps (max_nan_steps); stopping. The last good "
                            f"checkpoint is {os.path.join(self.run_dir, 'last.ckpt')}; resume from it with a lower "
                            "lr, gradient clipping (grad_clip_norm) or a dynamic loss scale")
                    continue
                nan_steps = 0
                losses.append(loss)
                parts.append((float(cls_loss.asnumpy()), float(box_loss.asnumpy())))
                if (i + 1) % self.log_interval < count or i + 1 == self.steps_per_epoch:
                    recent = step_times[-self.log_interval:]
                    sec = float(np.median(recent))
                    remaining = (epochs * self.steps_per_epoch - global_step) * sec
                    log.info(f"epoch {epoch + 1}/{epochs} step {i + 1}/{self.steps_per_epoch} "
                             f"loss {np.mean(losses[-self.log_interval:]):.4f} "
                             f"lr {self._lr_at(global_step):.5f} "
                             f"{batch / sec:.1f} img/s ({sec:.2f} s/step) ETA {_duration(remaining)}")
            if self.dump:
                self.dump.write_samples()
            epoch_loss = float(np.mean(losses)) if losses else float("nan")
            record = {"epoch": epoch + 1, "loss": epoch_loss}
            epoch_sec = float(np.median(step_times[epoch_start:])) if len(step_times) > epoch_start else float("nan")
            self._save("last.ckpt", epoch + 1, global_step)
            if (epoch + 1) % self.save_checkpoint_epochs == 0 or epoch + 1 == epochs:
                if self.is_main:
                    self._save(f"epoch_{epoch + 1}.ckpt", epoch + 1, global_step)
                    self._prune()
            result = None
            if self.evaluate and ((epoch + 1) % self.eval_interval == 0 or epoch + 1 == epochs):
                result = self.evaluate()
                record["mAP"] = result["mAP"]
                self.consider_best(result["mAP"], epoch + 1, global_step)
            if results is not None:
                cls_mean, box_mean = np.mean(parts, axis=0) if parts else (float("nan"), float("nan"))
                results.append(epoch=epoch + 1, global_step=global_step, lr=self._lr_at(global_step),
                               loss=epoch_loss, cls_loss=float(cls_mean), box_loss=float(box_mean),
                               img_per_s=batch * self.group_size / epoch_sec,
                               mAP=result["mAP"] if result else None, AP50=result["AP50"] if result else None,
                               AP75=result["stats"][2] if result else None)
            self.history.append(record)
        total = time.perf_counter() - run_start
        # The first steps include graph compilation; the median of the rest is the steady-state speed.
        steady = step_times[2:] or step_times
        sec = float(np.median(steady))
        speed = f"{batch / sec:.1f} img/s at batch {batch}"
        if self.group_size > 1:
            speed = (f"{batch * self.group_size / sec:.1f} img/s on {self.group_size} devices at batch {batch} "
                     f"per device")
        log.info(f"training done in {_duration(total)}; median {sec:.3f} s/step, {speed}")
        if self.dump:
            log.info(f"rank_dump_dir: wrote {self.dump.save_weights(self.net)}")
        return self.history

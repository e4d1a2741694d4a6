"""Checkpoints: round trip, filters, clear errors, optimizer state for resume, no partial files."""
import os

import mindspore as ms
import numpy as np
import pytest

from src.config import load_config
from src.losses import DetectionLoss
from src.models.detector import build_detector
from src.training.checkpoint import (CheckpointError, load_into, load_train_state, read_checkpoint,
                                     save_checkpoint)
from src.training.train_step import TrainStep, build_loss_scale, build_optimizer


def small_net(num_classes=3, **overrides):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    cfg = load_config(width_mult=0.25, img_shape=[64, 64], steps=[], **overrides)
    return build_detector(cfg, num_classes)


def train_step_for(net):
    loss = DetectionLoss(net, "focal")
    return TrainStep(loss, build_optimizer(net, np.full(10, 0.01, np.float32), 0.9, 0.0),
                     build_loss_scale("dynamic", 1024.0))


def test_round_trip_with_metadata_and_no_temporary_left(tmp_path):
    net = small_net()
    path = save_checkpoint(str(tmp_path / "a.ckpt"), net, meta={"epoch": 3, "global_step": 30,
                                                                "class_names": ["a", "b", "c"]})
    assert os.listdir(tmp_path) == ["a.ckpt"]
    params, meta = read_checkpoint(path)
    assert meta["epoch"] == 3 and meta["global_step"] == 30 and meta["class_names"] == ["a", "b", "c"]
    other = small_net()
    loaded, missing, unexpected = load_into(other, params, path, strict=True)
    assert not missing and not unexpected and len(loaded) == len(list(net.parameters_and_names()))
    for (name, a), (_, b) in zip(net.parameters_and_names(), other.parameters_and_names()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=name)


def test_filter_list_leaves_the_class_head_out(tmp_path):
    path = save_checkpoint(str(tmp_path / "a.ckpt"), small_net(num_classes=3))
    params, _ = read_checkpoint(path)
    target = small_net(num_classes=7)
    loaded, missing, _ = load_into(target, params, path, filter_prefixes=("head.cls_layers",))
    assert loaded and not missing
    assert not any(n.startswith("head.cls_layers") for n in loaded)


def test_shape_mismatch_names_the_parameter(tmp_path):
    path = save_checkpoint(str(tmp_path / "a.ckpt"), small_net(num_classes=3))
    params, _ = read_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"a.ckpt: parameter 'head.cls_layers.0.1.weight' has shape"):
        load_into(small_net(num_classes=7), params, path)


def test_missing_and_corrupt_files_are_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.ckpt"):
        read_checkpoint(str(tmp_path / "nope.ckpt"))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*bad.ckpt"):
        read_checkpoint(str(bad))


def test_train_state_restores_the_optimizer_step_and_moments(tmp_path):
    net = small_net()
    step = train_step_for(net)
    step.optimizer.global_step.set_data(ms.Tensor([17], ms.int32))
    moment = step.optimizer.moments[0]
    moment.set_data(ms.Tensor(np.full(moment.shape, 0.5, np.float32)))
    path = save_checkpoint(str(tmp_path / "last.ckpt"), net, step, {"epoch": 2})
    params, meta = read_checkpoint(path)

    fresh_net = small_net()
    fresh = train_step_for(fresh_net)
    load_into(fresh_net, params, path, strict=True)
    assert load_train_state(fresh, params, path) > 0
    assert int(fresh.optimizer.global_step.asnumpy().reshape(-1)[0]) == 17
    np.testing.assert_array_equal(fresh.optimizer.moments[0].asnumpy(), 0.5)


def test_a_weights_only_checkpoint_cannot_be_resumed(tmp_path):
    net = small_net()
    path = save_checkpoint(str(tmp_path / "w.ckpt"), net)
    params, _ = read_checkpoint(path)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_train_state(train_step_for(small_net()), params, path)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    net = small_net()
    path = save_checkpoint(str(tmp_path / "last.ckpt"), net, meta={"epoch": 1})
    before = (tmp_path / "last.ckpt").read_bytes()

    def disk_full(*args, **kwargs):
        with open(args[1], "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ms, "save_checkpoint", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, net, meta={"epoch": 2})
    assert (tmp_path / "last.ckpt").read_bytes() == before
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from src.cli import run_main
    net = small_net()
    path = save_checkpoint(str(tmp_path / "last.ckpt"), net, meta={"epoch": 1})
    before = (tmp_path / "last.ckpt").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ms, "save_checkpoint", disk_full)
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: save_checkpoint(path, net, meta={"epoch": 2}))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot write {path}: No space left on device; the previous file, if any, is unchanged"]
    assert (tmp_path / "last.ckpt").read_bytes() == before


def test_best_checkpoint_moves_only_to_a_better_finite_map(tmp_path):
    from src.training.trainer import Trainer

    class OneStepDataset:
        def get_dataset_size(self):
            return 1

    net = small_net()
    trainer = Trainer(net, None, OneStepDataset(), None, str(tmp_path), {"model_name": "m"}, epochs=1, batch_size=1)
    decisions = [trainer.consider_best(v, epoch, epoch) for epoch, v in
                 enumerate([0.10, float("nan"), 0.05, float("inf"), 0.20, 0.20], start=1)]
    assert decisions == [True, False, False, False, True, False]
    _, meta = read_checkpoint(str(tmp_path / "best.ckpt"))
    assert meta["epoch"] == 5 and meta["best_map"] == pytest.approx(0.20)

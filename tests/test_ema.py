"""Model EMA: the decay ramp, the average after known updates, checkpoints holding both weights, resume, inference."""
import math

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
import numpy as np
import pytest

from detection_match import relative_difference
from src.config import Config, load_config
from src.deploy.loading import inference_net, detector_from_config
from src.models.detector import build_detector
from src.training.checkpoint import load_weights, read_checkpoint, save_checkpoint
from src.training.ema import EMA_PREFIX, ModelEMA, ema_decay_at
from src.training.train_step import TrainStep


def test_the_decay_ramps_up_to_its_final_value():
    assert ema_decay_at(1, 0.9998, 2000) == pytest.approx(4.9975e-4, rel=1e-4)
    assert ema_decay_at(2000, 0.9998, 2000) == pytest.approx(0.63200, rel=1e-4)   # 0.9998 * (1 - 1/e)
    assert ema_decay_at(100, 0.999, 50) == pytest.approx(0.86380, rel=1e-4)       # 0.999 * (1 - e^-2)
    assert ema_decay_at(10 ** 6, 0.9998, 2000) == pytest.approx(0.9998, rel=1e-9)


class Linear(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = ms.Parameter(ms.Tensor(np.array([1.0, 2.0], np.float32)), name="w")

    def construct(self, x):   # a loss cell's outputs: the loss and its class and box parts
        loss = ops.reduce_sum(self.w * x)
        return loss, loss, ops.zeros_like(loss)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_the_average_after_three_known_updates(mode):
    """loss = w . x with x = (1, -1) and plain SGD at lr 0.1: w moves by (-0.1, +0.1) per step; decay 0.5, tau 1."""
    ms.set_context(mode=mode)
    net = Linear()
    ema = ModelEMA(net, decay=0.5, tau=1.0)
    step = TrainStep(net, nn.SGD(net.trainable_params(), learning_rate=0.1), ms.Tensor(1.0, ms.float32), ema=ema)
    x = ms.Tensor(np.array([1.0, -1.0], np.float32))
    for _ in range(3):
        step(x)
    # d1 = 0.5 (1 - e^-1) = 0.31606, d2 = 0.43233, d3 = 0.47511; w1 = (0.9, 2.1), w2 = (0.8, 2.2), w3 = (0.7, 2.3)
    # ema1 = d1 * (1, 2) + (1 - d1) * w1, ema2 = d2 * ema1 + (1 - d2) * w2, ema3 = d3 * ema2 + (1 - d3) * w3
    np.testing.assert_allclose(net.w.asnumpy(), [0.7, 2.3], atol=1e-6)
    np.testing.assert_allclose(ema.averages[0].asnumpy(), [0.774543, 2.225457], atol=1e-5)
    assert float(ema.updates.asnumpy()) == 3.0
    ms.set_context(mode=ms.PYNATIVE_MODE)


def test_an_overflowing_step_leaves_the_average_alone():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = Linear()
    ema = ModelEMA(net, decay=0.5, tau=1.0)
    step = TrainStep(net, nn.SGD(net.trainable_params(), learning_rate=0.1), ms.Tensor(1.0, ms.float32), ema=ema)
    step(ms.Tensor(np.array([np.inf, 1.0], np.float32)))
    np.testing.assert_array_equal(ema.averages[0].asnumpy(), [1.0, 2.0])
    assert float(ema.updates.asnumpy()) == 0.0


def small_detector(seed):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(seed)
    cfg = load_config(width_mult=0.25, img_shape=[64, 64], steps=[])
    return cfg, build_detector(cfg, 3)


def test_a_checkpoint_holds_both_weights_and_inference_takes_the_average(tmp_path):
    cfg, net = small_detector(0)
    ema = ModelEMA(net, decay=0.9, tau=1.0)
    _, other = small_detector(1)   # different weights, standing in for the average
    for average, (_, p) in zip(ema.averages, other.parameters_and_names()):
        average.set_data(ms.Tensor(p.asnumpy(), average.dtype))
    step = TrainStep(net, nn.SGD(net.trainable_params(), learning_rate=0.1), ms.Tensor(1.0, ms.float32), ema=ema)
    path = save_checkpoint(str(tmp_path / "m.ckpt"), net, step, {"model_name": cfg.model_name,
                                                                "class_names": ["a", "b", "c"]})
    params, _ = read_checkpoint(path)
    names = [n for n, _ in net.parameters_and_names()]
    assert all(n in params and EMA_PREFIX + n in params for n in names)
    assert "train_state.ema_updates" in params
    assert not any(k.startswith("train_state." + EMA_PREFIX) for k in params)

    x = ms.Tensor(np.random.default_rng(0).normal(size=(1, 3, 64, 64)).astype(np.float32))
    other.set_train(False)
    net.set_train(False)
    want_ema, want_raw = other(x)[1].asnumpy(), net(x)[1].asnumpy()
    assert np.abs(want_ema - want_raw).max() > 1e-3
    loaded, _, meta = detector_from_config(Config(cfg, checkpoint_path=path))
    assert meta["weights"] == "EMA"
    np.testing.assert_allclose(loaded(x)[1].asnumpy(), want_ema, atol=1e-5)
    raw, _, meta = detector_from_config(Config(cfg, checkpoint_path=path, ema_weights=False))
    assert meta["weights"] == "raw"
    np.testing.assert_allclose(raw(x)[1].asnumpy(), want_raw, atol=1e-5)

    # The hub entry loads the average too.
    from mindspore_hub_conf import create_network
    hub = create_network("ssd_ghostnet", num_classes=3, is_training=True, checkpoint_path=path, width_mult=0.25,
                         img_shape=[64, 64], steps=[])
    hub.set_train(False)
    np.testing.assert_allclose(hub(x)[1].asnumpy(), want_ema, atol=1e-5)

    # A checkpoint written without an EMA (an older run) loads its raw weights.
    plain = save_checkpoint(str(tmp_path / "plain.ckpt"), net)
    _, fresh = small_detector(2)
    assert load_weights(fresh, read_checkpoint(plain)[0], plain, use_ema=True) == "raw"


def test_export_writes_the_average(tmp_path):
    import export
    from src.deploy.runtimes import OnnxRuntime
    cfg, net = small_detector(0)
    ema = ModelEMA(net)
    _, other = small_detector(1)
    for average, (_, p) in zip(ema.averages, other.parameters_and_names()):
        average.set_data(ms.Tensor(p.asnumpy(), average.dtype))
    step = TrainStep(net, nn.SGD(net.trainable_params(), learning_rate=0.1), ms.Tensor(1.0, ms.float32), ema=ema)
    path = save_checkpoint(str(tmp_path / "m.ckpt"), net, step, {"model_name": cfg.model_name,
                                                                "class_names": ["a", "b", "c"]})
    assert export.main(["--checkpoint_path", path, "--file_format", "ONNX", "--width_mult", "0.25",
                        "--img_shape", "64", "64", "--steps", "[]"]) == 0
    x = np.random.default_rng(1).normal(size=(1, 3, 64, 64)).astype(np.float32)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    other.set_train(False)
    net.set_train(False)
    want = inference_net(other, cfg.prior_scaling)(ms.Tensor(x))[1].asnumpy()
    raw = inference_net(net, cfg.prior_scaling)(ms.Tensor(x))[1].asnumpy()
    got = OnnxRuntime(str(tmp_path / "m.onnx"))(x)[1]
    # onnxruntime against MindSpore: equal to float32's precision through the network, and far from the raw weights
    assert relative_difference(got, want) < 1e-4 and relative_difference(raw, want) > 1e-2


def test_applied_swaps_the_average_in_and_back():
    _, net = small_detector(0)
    ema = ModelEMA(net)
    w = next(iter(ema.weights))
    before = w.asnumpy().copy()
    ema.averages[0].set_data(ms.Tensor(before + 1.0, w.dtype))
    with ema.applied():
        np.testing.assert_array_equal(w.asnumpy(), before + 1.0)
    np.testing.assert_array_equal(w.asnumpy(), before)


def test_bad_settings_are_refused():
    _, net = small_detector(0)
    with pytest.raises(ValueError, match="ema_decay"):
        ModelEMA(net, decay=1.0)
    with pytest.raises(ValueError, match="ema_tau"):
        ModelEMA(net, tau=0.0)
    assert math.isclose(ModelEMA(net, 0.99, 10).decay, 0.99)

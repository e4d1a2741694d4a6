"""Model EMA: an exponential moving average of the detector's weights, updated after every optimizer step.

As in mindyolo, Ultralytics and timm, every float parameter of the detector is averaged, batch-norm statistics
included, and the decay ramps up over the first updates so that the average does not remember the random
initialisation: ``d(t) = decay * (1 - exp(-t / tau))`` after ``t`` updates. The averaged weights are usually better
than the raw ones at any point of a run, and most of all in short runs and at high learning rates.

The averaged parameters are named ``ema.<detector parameter name>``: a checkpoint holds them beside the raw
weights (src/training/checkpoint.py), and inference loads them by default.
"""
import contextlib
import math

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

EMA_PREFIX = "ema."

_ema_update = ops.MultitypeFuncGraph("ema_update")


@_ema_update.register("Tensor", "Tensor", "Tensor")
def _update(decay, average, value):
    return ops.assign(average, average * decay + ops.cast(value, average.dtype) * (1.0 - decay))


def ema_decay_at(updates, decay, tau):
    """The decay used by the update number `updates` (1 for the first): numpy/host form of the graph's ramp."""
    return decay * (1.0 - math.exp(-updates / tau))


class ModelEMA(nn.Cell):
    """Holds the averages of `net`'s parameters; calling it (inside the train step's graph) does one update.

    `decay` is the final decay, `tau` the number of updates over which the ramp reaches 63% of it.
    """

    def __init__(self, net, decay=0.9998, tau=2000.0):
        super().__init__(auto_prefix=False)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be between 0 and 1, got {decay}")
        if tau <= 0:
            raise ValueError(f"ema_tau must be positive, got {tau}")
        self.decay = float(decay)
        self.tau = float(tau)
        named = [(n, p) for n, p in net.parameters_and_names()]
        self.names = [n for n, _ in named]
        self.weights = ms.ParameterTuple([p for _, p in named])
        self.averages = ms.ParameterTuple([
            ms.Parameter(ms.Tensor(p.asnumpy(), p.dtype), name=EMA_PREFIX + n, requires_grad=False)
            for n, p in named])
        self.updates = ms.Parameter(ms.Tensor(0.0, ms.float32), name="ema_updates", requires_grad=False)
        self.hyper_map = ops.HyperMap()

    def construct(self):
        updates = self.updates + 1.0
        ops.assign(self.updates, updates)
        decay = self.decay * (1.0 - ops.exp(-updates / self.tau))
        return self.hyper_map(ops.partial(_update, decay), self.averages, self.weights)

    # ---- host side: checkpoints and evaluation
    def named_averages(self):
        """(ema.<name>, Parameter) pairs, as a checkpoint stores them."""
        return list(zip((EMA_PREFIX + n for n in self.names), self.averages))

    def load(self, params, path):
        """Restore the averages from checkpoint `params`; False when the checkpoint holds none (raw weights are
        copied in, and the ramp starts afresh)."""
        from .checkpoint import CheckpointError
        if not any(k.startswith(EMA_PREFIX) for k in params):
            for average, weight in zip(self.averages, self.weights):
                average.set_data(ms.Tensor(weight.asnumpy(), average.dtype))
            self.updates.set_data(ms.Tensor(0.0, ms.float32))
            return False
        for key, average in self.named_averages():
            if key not in params:
                raise CheckpointError(f"{path}: EMA parameter '{key}' is missing")
            value = params[key].asnumpy()
            if value.shape != tuple(average.shape):
                raise CheckpointError(f"{path}: EMA parameter '{key}' has shape {value.shape}, expected "
                                      f"{tuple(average.shape)}")
            average.set_data(ms.Tensor(value, average.dtype))
        return True

    @contextlib.contextmanager
    def applied(self):
        """Inside the block the detector holds the averaged weights; its raw weights come back afterwards."""
        raw = [w.asnumpy().copy() for w in self.weights]
        for weight, average in zip(self.weights, self.averages):
            weight.set_data(ms.Tensor(average.asnumpy(), weight.dtype))
        try:
            yield
        finally:
            for weight, value in zip(self.weights, raw):
                weight.set_data(ms.Tensor(value, weight.dtype))

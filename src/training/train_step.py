"""One training step: loss scaling (fixed or dynamic), gradient all-reduce, overflow skip, global-norm clipping, and
the model EMA's update."""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.amp import all_finite

_grad_scale = ops.MultitypeFuncGraph("grad_scale")


@_grad_scale.register("Tensor", "Tensor")
def _unscale(scale, grad):
    return grad * ops.cast(ops.Reciprocal()(scale), ops.dtype(grad))


class TrainStep(nn.TrainOneStepWithLossScaleCell):
    """MindSpore's loss-scale step plus gradient clipping. Returns (loss, overflow, loss scale, class loss, box loss).

    The network (a DetectionLoss) returns the loss and its two parts; only the loss is differentiated (the parts get
    a zero sensitivity), so the parts cost nothing beyond the forward pass that computes them.

    When the gradients overflow (inf/NaN) the optimizer step is skipped; a dynamic scale then shrinks. `ema` (a
    ModelEMA, optional) is updated after every optimizer step that was taken.
    """

    def __init__(self, network_with_loss, optimizer, scale_sense, clip_norm=0.0, ema=None):
        super().__init__(network_with_loss, optimizer, scale_sense)
        self.clip_norm = float(clip_norm)
        self.ema = ema
        self.use_ema = ema is not None
        # The base class reads the Ascend float-status registers on every non-GPU target, which the CPU lacks;
        # the inf/NaN check over the gradients works everywhere but on Ascend 910A.
        self.check_by_value = ms.get_context("device_target") != "Ascend"

    def construct(self, *inputs):
        loss, cls_loss, box_loss = self.network(*inputs)
        scaling_sens = self.scale_sense
        status = ms.Tensor([0] * 8, ms.int32)
        sens = (ops.ones_like(loss) * ops.cast(scaling_sens, ops.dtype(loss)), ops.zeros_like(cls_loss),
                ops.zeros_like(box_loss))
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        grads = self.hyper_map(ops.partial(_grad_scale, scaling_sens), grads)
        grads = self.grad_reducer(grads)
        if self.check_by_value:
            cond = ops.logical_not(all_finite(grads))
            if self.is_distributed:
                cond = self.allreduce(ops.cast(cond, ms.float32)) > 0
        else:
            cond = self.get_overflow_status(status, grads)
        overflow = self.process_loss_scale(cond)
        if self.clip_norm > 0:
            grads = ops.clip_by_global_norm(grads, self.clip_norm)
        if not overflow:
            loss = ops.depend(loss, self.optimizer(grads))
            if self.use_ema:  # MindSpore orders side effects as written: the average sees the updated weights
                loss = ops.depend(loss, self.ema())
        return loss, cond, scaling_sens, cls_loss, box_loss


# The `loss_scale_type` key's values: dynamic (shrinks on overflow, grows after 1000 clean steps) or fixed.
LOSS_SCALES = {
    "dynamic": lambda value: nn.DynamicLossScaleUpdateCell(loss_scale_value=value, scale_factor=2, scale_window=1000),
    "fixed": lambda value: ms.Tensor(value, ms.float32),
}


def build_loss_scale(loss_scale_type, loss_scale):
    if loss_scale_type not in LOSS_SCALES:
        raise ValueError(f"loss_scale_type must be one of {', '.join(LOSS_SCALES)}, got {loss_scale_type!r}")
    return LOSS_SCALES[loss_scale_type](loss_scale)


# The `optimizer` key's values. AdamW takes `momentum` as beta1.
OPTIMIZERS = {
    "momentum": lambda groups, lr, momentum: nn.Momentum(groups, learning_rate=lr, momentum=momentum),
    "adamw": lambda groups, lr, momentum: nn.AdamWeightDecay(groups, learning_rate=lr, beta1=momentum, beta2=0.999,
                                                             eps=1e-8),
}


def build_optimizer(network, lr, momentum, weight_decay, kind="momentum"):
    """An OPTIMIZERS entry over `network`'s parameters; weight decay on conv and dense weights only, not on BN
    parameters or biases. `lr` is the per-step schedule."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    decay, no_decay = [], []
    for p in network.trainable_params():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return OPTIMIZERS[kind](groups, ms.Tensor(lr), momentum)

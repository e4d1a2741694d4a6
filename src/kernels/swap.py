"""The C++ CPU kernels, swapped into a built detector and its loss: the one place that knows about them.

Models and losses are written with MindSpore's own cells (nn.Conv2d, nn.BatchNorm2d, nn.ReLU / nn.ReLU6, and
src/losses.py's SigmoidFocalLoss). `use_cpu_kernels(cell)` turns each cell that has a kernel into the subclass of
its class defined here, whose construct calls the kernel: the cell keeps its parameters, their names and its place
in the tree, so checkpoints and exported files do not change, and `use_cpu_kernels(cell, False)` turns it back.
Export builds its own network from a checkpoint and never swaps, so an exported graph holds standard ops only.

What is swapped:
- a depthwise conv (group == in == out channels, no dilation) runs on depthwise_conv.cc;
- a batch norm runs on batch_norm.cc while training (evaluation keeps MindSpore's op); inside a ConvBNAct whose
  activation is a ReLU or ReLU6, the kernel applies that activation too, and the activation cell then passes its
  input through while training;
- a SigmoidFocalLoss runs on focal_loss.cc (same value and gradient, without the full-size temporaries).

`kernel_plan` holds the rules that combine the kernels with mixed precision and recompute.
"""
import logging

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import dtype as mstype

from ..losses import SigmoidFocalLoss
from ..models.layers import ConvBNAct
from . import build

log = logging.getLogger("ssd")


class KernelDepthwiseConv2d(nn.Conv2d):
    """nn.Conv2d (depthwise) on the C++ kernel."""

    def _use_kernel(self):
        from .depthwise import depthwise_ops
        padding = self.padding if isinstance(self.padding, int) else self.padding[0]
        self._dw_forward, self._dw_geometry = depthwise_ops(self.stride[0], padding)

    def construct(self, x):
        # The kernel is float32 only; the casts bring float16 tensors to it and back.
        y = self._dw_forward(ops.cast(x, mstype.float32), ops.cast(self.weight, mstype.float32), self._dw_geometry)
        if self.has_bias:
            y = self.bias_add(y, ops.cast(self.bias, mstype.float32))
        return ops.cast(y, x.dtype)


class KernelBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d on the C++ kernel while training, with the same moving-statistics update.

    MindSpore's rule, checked in tests/test_cpu_kernels.py: moving = (1 - m) * moving + m * batch statistic, where
    m is `self.momentum` (1 - the constructor's momentum) and the variance is the unbiased one. `fused_activation`
    ("relu", "relu6" or None) is applied by the kernel.
    """

    fused_activation = None

    def _use_kernel(self):
        from .batch_norm import batch_norm_ops
        self._bn_forward, self._bn_params = batch_norm_ops(float(self.eps), self.fused_activation)

    def construct(self, x):
        if not self.training:
            return super().construct(x)
        y, mean, var = self._bn_forward(ops.cast(x, mstype.float32), ops.cast(self.gamma, mstype.float32),
                                        ops.cast(self.beta, mstype.float32), self._bn_params)
        count = x.shape[0] * x.shape[2] * x.shape[3]
        unbiased = var * (count / max(count - 1, 1))
        m = self.momentum
        ops.assign(self.moving_mean, self.moving_mean * (1.0 - m) + ops.stop_gradient(mean) * m)
        ops.assign(self.moving_variance, self.moving_variance * (1.0 - m) + ops.stop_gradient(unbiased) * m)
        return ops.cast(y, x.dtype)


class FusedReLU(nn.ReLU):
    """A ReLU that the batch-norm kernel before it applies while training."""

    def construct(self, x):
        return x if self.training else super().construct(x)


class FusedReLU6(nn.ReLU6):
    """A ReLU6 that the batch-norm kernel before it applies while training."""

    def construct(self, x):
        return x if self.training else super().construct(x)


class KernelSigmoidFocalLoss(SigmoidFocalLoss):
    """The summed sigmoid focal loss on the C++ kernel."""

    def _use_kernel(self):
        from .focal_loss import focal_loss_op
        self._focal_sum, self._focal_params = focal_loss_op(float(self.alpha), float(self.gamma))

    def construct(self, logits, labels):
        return self._focal_sum(logits, ops.cast(labels, mstype.int32), self._focal_params)[0]


# original class -> (kernel class, kernel source; None where the swap needs no kernel of its own)
KERNEL_CLASSES = {nn.Conv2d: (KernelDepthwiseConv2d, "depthwise_conv.cc"),
                  nn.BatchNorm2d: (KernelBatchNorm2d, "batch_norm.cc"),
                  SigmoidFocalLoss: (KernelSigmoidFocalLoss, "focal_loss.cc")}
FUSED_ACTIVATIONS = {nn.ReLU: (FusedReLU, "relu"), nn.ReLU6: (FusedReLU6, "relu6")}
ORIGINAL_CLASSES = {kernel: original for original, (kernel, _) in KERNEL_CLASSES.items()}
ORIGINAL_CLASSES.update({fused: original for original, (fused, _) in FUSED_ACTIVATIONS.items()})


def _is_depthwise(conv):
    return (conv.group > 1 and conv.group == conv.in_channels == conv.out_channels
            and tuple(conv.dilation[-2:]) == (1, 1) and conv.stride[0] == conv.stride[1])


def _swappable(cell):
    """The kernel class and source for `cell`, or None."""
    entry = KERNEL_CLASSES.get(type(cell))
    if entry is None or (type(cell) is nn.Conv2d and not _is_depthwise(cell)):
        return None
    return entry


def _swap_in(cell, kernel_class, **attributes):
    cell.__class__ = kernel_class
    for name, value in attributes.items():
        setattr(cell, name, value)
    if hasattr(cell, "_use_kernel"):
        cell._use_kernel()


def use_cpu_kernels(net, enabled=True):
    """Swap every cell of `net` that has a C++ CPU kernel to it (or, with `enabled=False`, back); returns how many
    cells changed class. A kernel that cannot be built here (no compiler) leaves its cells on MindSpore's ops."""
    cells = [cell for _, cell in net.cells_and_names()]
    if not enabled:
        restored = 0
        for cell in cells:
            if type(cell) in ORIGINAL_CLASSES:
                cell.__class__ = ORIGINAL_CLASSES[type(cell)]
                restored += 1
        return restored
    switched = 0
    fusions = {}  # id of a batch norm -> (its ConvBNAct's activation cell, the fused kernel class, name)
    for cell in cells:
        if isinstance(cell, ConvBNAct) and type(cell.act) in FUSED_ACTIVATIONS:
            fusions[id(cell.bn)] = (cell.act,) + FUSED_ACTIVATIONS[type(cell.act)]
    for cell in cells:
        entry = _swappable(cell)
        if entry is None or build.library(entry[1]) is None:
            continue
        fused = fusions.get(id(cell))
        if fused is not None:
            act, fused_class, name = fused
            _swap_in(cell, entry[0], fused_activation=name)
            _swap_in(act, fused_class)
            switched += 1
        else:
            _swap_in(cell, entry[0])
        switched += 1
    return switched


def kernel_plan(requested, device_target, amp_level, recompute):
    """Whether the kernels run, and why not: (bool, reason or None); logs the recompute caveat.

    They run on the CPU in float32 only (amp_level O0): mixed precision wraps the cells they would replace.
    """
    if not requested or device_target != "CPU":
        uses = False
        reason = None
    elif amp_level != "O0":
        uses, reason = False, f"not used with amp_level {amp_level}; MindSpore's own float16 ops run"
    else:
        uses, reason = True, None
    if recompute and not uses:
        # Measured on MindSpore 2.10 (tests/test_recompute.py): its BatchNorm op updates the moving statistics
        # again when recomputed; the CPU kernel's batch norm updates them once.
        log.warning("recompute with MindSpore's own batch norm: the recomputation repeats the moving-average "
                    "update, so the moving statistics move twice per step (as with momentum m^2)")
    return uses, reason

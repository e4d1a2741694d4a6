"""FLOPs per image of a detector's forward pass, counted from the shapes its convolutions and dense layers see.

One forward pass at batch 1 in PyNative mode with forward hooks records each conv's and dense layer's output shape;
a multiply-add counts as 2 FLOPs. Batch norm, activations and the loss are left out (a few percent of the total).
Training is counted as 3x the forward pass (the backward pass computes two products per layer: the gradients of
the input and of the weights), the usual convention.
"""
import mindspore as ms
import mindspore.nn as nn
import numpy as np


def _layer_flops(cell, output_shape):
    out_elements = float(np.prod(output_shape[1:]))  # per image
    if isinstance(cell, nn.Conv2d):
        kh, kw = cell.kernel_size
        return 2.0 * out_elements * (cell.in_channels // cell.group) * kh * kw
    if isinstance(cell, nn.Dense):
        return 2.0 * out_elements * cell.in_channels
    return 0.0


def forward_flops(net, img_shape):
    """(total forward FLOPs per image, {layer type: FLOPs}) of `net` on one image of `img_shape` [H, W]."""
    counts = {}
    handles = []

    def hook(cell, inputs, output):
        kind = type(cell).__name__
        counts[kind] = counts.get(kind, 0.0) + _layer_flops(cell, output.shape)

    for _, cell in net.cells_and_names():
        if isinstance(cell, (nn.Conv2d, nn.Dense)):
            handles.append(cell.register_forward_hook(hook))
    mode = ms.get_context("mode")
    was_training = net.training
    ms.set_context(mode=ms.PYNATIVE_MODE)  # hooks run in PyNative only
    try:
        net.set_train(False)
        net(ms.Tensor(np.zeros((1, 3) + tuple(img_shape), np.float32)))
    finally:
        ms.set_context(mode=mode)
        net.set_train(was_training)
        for handle in handles:
            handle.remove()
    return sum(counts.values()), counts

"""Run the inference outputs (boxes, scores) from a checkpoint, a MINDIR or an ONNX file, behind one interface.

Each runtime takes a float32 batch [n, 3, H, W] of any n and returns numpy (boxes [n, A, 4], scores [n, A, C]).
Exported files have a static batch: inputs are cut into chunks of that size and a short chunk is zero-padded.
`ModelInfo` carries what the consumer needs beside the graph: input size, normalisation, classes, NMS settings.
"""
import os
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from ..evaluation.postprocess import NMSParams
from . import ExportError
from .model_card import batch_size_of, read_card

NMS_KEYS = ("min_score", "nms_threshold", "max_boxes", "pre_nms_top_k")


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    img_shape: Tuple[int, int]
    img_mean: Tuple[float, float, float]
    img_std: Tuple[float, float, float]
    class_names: List[str]
    nms: NMSParams


class _StaticBatchRuntime:
    """Feeds fixed-size batches to `self._run`."""
    batch_size = 1

    def __call__(self, images):
        images = np.ascontiguousarray(images, dtype=np.float32)
        n, b = images.shape[0], self.batch_size
        boxes, scores = [], []
        for start in range(0, n, b):
            chunk = images[start:start + b]
            k = chunk.shape[0]
            if k < b:
                chunk = np.concatenate([chunk, np.zeros((b - k,) + chunk.shape[1:], np.float32)])
            out_boxes, out_scores = self._run(chunk)
            boxes.append(out_boxes[:k])
            scores.append(out_scores[:k])
        return np.concatenate(boxes), np.concatenate(scores)


class CheckpointRuntime(_StaticBatchRuntime):
    """A MindSpore cell: the inference network of a checkpoint, or (subclass) a reloaded MINDIR."""

    def __init__(self, cell, batch_size=1):
        self.cell = cell
        self.batch_size = batch_size

    def _run(self, images):
        import mindspore as ms
        boxes, scores = self.cell(ms.Tensor(images))
        return boxes.asnumpy(), scores.asnumpy()


class MindIRRuntime(CheckpointRuntime):
    def __init__(self, path, batch_size):
        import mindspore as ms
        import mindspore.nn as nn

        from ..device import native_stderr_silenced
        with native_stderr_silenced():  # a corrupt file: MindSpore logs it before raising, and we report it
            graph = ms.load(path)
        super().__init__(nn.GraphCell(graph), batch_size)


class OnnxRuntime(_StaticBatchRuntime):
    def __init__(self, path, threads=0):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.batch_size = inp.shape[0] if isinstance(inp.shape[0], int) else 1
        names = [o.name for o in self.session.get_outputs()]
        self.order = [names.index("boxes"), names.index("scores")] if {"boxes", "scores"} <= set(names) else [0, 1]

    def _run(self, images):
        outputs = self.session.run(None, {self.input_name: images})
        return outputs[self.order[0]], outputs[self.order[1]]


def nms_params(defaults, overrides=None):
    """NMS settings: `defaults` (a card's, or a config's), with `overrides` (the keys the user gave) on top."""
    values = {k: (overrides or {}).get(k, defaults[k]) for k in NMS_KEYS}
    return NMSParams.from_config(values)


def nms_overrides_from_config(cfg):
    """The NMS keys that were given on the command line: they override an exported model's card."""
    return {k: cfg[k] for k in NMS_KEYS if k in cfg.command_line}


def open_model_file(path, nms_overrides=None):
    """(runtime, ModelInfo) for an exported .mindir or .onnx with its card; `nms_overrides` replace the card's."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--model_file: {path} not found")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mindir", ".onnx"):
        raise ExportError(f"--model_file: {path}: expected a .mindir or .onnx file (AIR and OM run on Ascend only)")
    card = read_card(path)
    try:
        runtime = OnnxRuntime(path) if ext == ".onnx" else MindIRRuntime(path, batch_size_of(card, path))
    except ExportError:
        raise
    except Exception as e:  # onnxruntime and MindSpore raise their own types for a corrupt or truncated file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"--model_file: {path} cannot be loaded as {ext[1:].upper()} ({first[:200]}); export "
                          "it again") from None
    info = ModelInfo(card["model_name"], tuple(card["img_shape"]), tuple(card["img_mean"]), tuple(card["img_std"]),
                     list(card["class_names"]), nms_params(card["nms"], nms_overrides))
    return runtime, info


def checkpoint_runtime_from_config(cfg):
    """(runtime, ModelInfo) for `cfg.checkpoint_path`, built with `cfg`."""
    from .loading import inference_net, detector_from_config
    net, names, _ = detector_from_config(cfg)
    info = ModelInfo(cfg.model_name, tuple(cfg.img_shape), tuple(cfg.img_mean), tuple(cfg.img_std), names,
                     NMSParams.from_config(cfg))
    return CheckpointRuntime(inference_net(net, cfg.prior_scaling)), info

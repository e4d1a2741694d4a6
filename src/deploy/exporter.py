"""Export the inference wrapper (detector + box decoding) to MINDIR, AIR or ONNX, atomically, with its card.

The exported graph takes one NCHW float32 batch named `image` and returns `boxes` [B, A, 4] (normalised
x1, y1, x2, y2) and `scores` [B, A, C]. NMS is left to the consumer, which shares `image_detections` with eval.
"""
import os

import mindspore as ms
import numpy as np

from ..fileio import atomic_path
from . import ExportError
from .model_card import INPUT_NAME, OUTPUT_NAMES, write_card

EXTENSIONS = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}


def output_path(file_name, file_format):
    """`file_name` with the format's extension (kept if already there)."""
    ext = EXTENSIONS[file_format]
    return file_name if file_name.lower().endswith(ext) else file_name + ext


def check_format(file_format):
    fmt = str(file_format).upper()
    if fmt not in EXTENSIONS:
        raise ExportError(f"--file_format must be one of {', '.join(EXTENSIONS)}, got {file_format!r}")
    if fmt == "AIR" and ms.get_context("device_target") != "Ascend":
        raise ExportError(f"AIR export needs MindSpore with an Ascend backend (this one runs on "
                          f"{ms.get_context('device_target')}); export MINDIR here, or run export.py on an Ascend "
                          "machine")
    return fmt


def name_resize_mode(model):
    """Give every ONNX Resize node an explicit `mode="nearest"`.

    MindSpore exports ResizeNearestNeighbor without `mode`. ONNX defaults it to nearest, and onnxruntime does so,
    but MindSpore Lite's converter reads a missing mode as bilinear and gives wrong FPN outputs.
    """
    from onnx import helper
    patched = 0
    for node in model.graph.node:
        if node.op_type == "Resize" and not any(a.name == "mode" for a in node.attribute):
            node.attribute.append(helper.make_attribute("mode", "nearest"))
            patched += 1
    return patched


def _export_onnx(infer_net, x, tmp):
    import onnx
    ms.onnx.export(infer_net, x, file_name=tmp, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES))
    model = onnx.load(tmp)
    if name_resize_mode(model):
        onnx.save(model, tmp)
    onnx.checker.check_model(tmp)


def export_inference_net(infer_net, file_format, path, batch_size, img_hw):
    """Write the graph to `path` (via a temporary file); returns `path`."""
    x = ms.Tensor(np.zeros((int(batch_size), 3, int(img_hw[0]), int(img_hw[1])), np.float32))
    with atomic_path(path) as tmp:
        if file_format == "ONNX":
            _export_onnx(infer_net, x, tmp)
        else:
            ms.export(infer_net, x, file_name=tmp, file_format=file_format)
    return path


def export_model(infer_net, card, file_format, file_name, batch_size):
    """Export `infer_net` and write its `card` (model_card.make_card) beside it; returns (model path, card path)."""
    fmt = check_format(file_format)
    if int(batch_size) < 1:
        raise ExportError(f"--export_batch_size must be at least 1, got {batch_size}")
    path = os.path.abspath(output_path(file_name, fmt))
    export_inference_net(infer_net, fmt, path, batch_size, card["img_shape"])
    return path, write_card(path, card, fmt, batch_size)

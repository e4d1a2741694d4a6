"""Prepare an exported ONNX for MindSpore Lite 2.0's converter (the CPU route of the C++ inference).

Two Lite faults, both measured here against onnxruntime:
- a Resize without `mode` is converted as bilinear (FPN outputs off by 0.7): the mode is set to nearest;
- Conv nodes that share one weight initializer (the weight-shared heads of SSD-ResNet50-FPN and EfficientDet)
  are converted wrongly for all but one use (boxes off by 17): each further use gets its own copy.
The result computes the same function; it is only larger (the FPN model's ONNX grows from 130 to 207 MB).

Its command line is ascend310_infer/tools/lite_onnx.py IN.onnx OUT.onnx (scripts/run_infer_cpp.sh runs it).
"""
from ..fileio import atomic_path
from .exporter import name_resize_mode


def unshare_initializers(model):
    """Give every use of an initializer after the first its own copy; returns the number of copies made."""
    initializers = {t.name: t for t in model.graph.initializer}
    uses = {}
    copies = []
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name not in initializers:
                continue
            count = uses.get(name, 0)
            uses[name] = count + 1
            if count == 0:
                continue
            copy = type(initializers[name])()
            copy.CopyFrom(initializers[name])
            copy.name = f"{name}__copy{count}"
            copies.append(copy)
            node.input[i] = copy.name
    model.graph.initializer.extend(copies)
    return len(copies)


def prepare_for_lite(src_path, dst_path):
    """(Resize nodes given a mode, initializer copies made); `dst_path` is written atomically."""
    import onnx
    model = onnx.load(src_path)
    resized = name_resize_mode(model)
    copied = unshare_initializers(model)
    with atomic_path(dst_path) as tmp:
        onnx.save(model, tmp)
    return resized, copied

"""The JSON file written beside every exported model: what a consumer needs besides the graph.

`<name>.mindir|.onnx|.air` comes with `<name>.json`: the input size and normalisation (and the interpolation
used to resize), the output layout, the class names and the NMS settings that eval used. predict.py,
scripts/run_infer_cpp.sh and postprocess.py read it, so no consumer needs the training config or anchor code.
"""
import json
import os

from ..fileio import read_json, write_json_atomic
from . import ExportError

CARD_VERSION = 1
INPUT_NAME = "image"
OUTPUT_NAMES = ("boxes", "scores")


def card_path(model_path):
    return os.path.splitext(model_path)[0] + ".json"


def make_card(model_name, img_shape, img_mean, img_std, nms, class_names, category_ids, num_anchors, source):
    """The card's content; `nms` is the NMSParams that eval used."""
    h, w = (int(v) for v in img_shape)
    c = len(class_names)
    return {
        "card_version": CARD_VERSION,
        "model_name": model_name,
        "source_checkpoint": os.path.abspath(source),
        "exports": {},
        "input": {"name": INPUT_NAME, "shape": ["B", 3, h, w], "dtype": "float32", "layout": "NCHW"},
        "outputs": {"boxes": ["B", num_anchors, 4], "scores": ["B", num_anchors, c]},
        "boxes": "x1, y1, x2, y2 divided by the input width and height (map to pixels with the original image size)",
        "img_shape": [h, w],
        "img_mean": [float(v) for v in img_mean],
        "img_std": [float(v) for v in img_std],
        "preprocess": "decode to RGB, resize to img_shape with bilinear interpolation (cv2.INTER_LINEAR, a plain "
                      "stretch), (pixel - img_mean) / img_std per channel, HWC to CHW",
        "class_names": list(class_names),
        "category_ids": [int(i) for i in category_ids],
        "nms": {"min_score": float(nms.min_score), "nms_threshold": float(nms.nms_threshold),
                "max_boxes": int(nms.max_boxes), "pre_nms_top_k": int(nms.pre_nms_top_k)},
    }


def write_card(model_path, card, file_format, batch_size):
    """Write the card, recording this file's format and batch size; the other exports of the same checkpoint
    (`best.mindir` beside `best.onnx`) keep their entries."""
    path = card_path(model_path)
    exports = {}
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
            if {k: v for k, v in old.items() if k != "exports"} == {k: v for k, v in card.items() if k != "exports"}:
                exports = dict(old.get("exports", {}))
        except (OSError, ValueError):
            pass  # an unreadable old card is simply replaced
    exports[file_format] = {"file": os.path.basename(model_path), "batch_size": int(batch_size)}
    return write_json_atomic(path, dict(card, exports=exports), indent=1)


def batch_size_of(card, model_path):
    """The static batch size that `model_path` was exported with."""
    for entry in card.get("exports", {}).values():
        if entry.get("file") == os.path.basename(model_path):
            return int(entry["batch_size"])
    raise ExportError(f"{card_path(model_path)} does not describe {os.path.basename(model_path)}; export it again")


# What a consumer reads from a card, and the type each holds.
REQUIRED = {"model_name": str, "img_shape": list, "img_mean": list, "img_std": list, "class_names": list,
            "category_ids": list, "nms": dict}
NMS_FIELDS = ("min_score", "nms_threshold", "max_boxes", "pre_nms_top_k")


def load_card(path):
    """A model card file, checked: one ExportError line naming the file and the field for anything malformed."""
    card = read_json(path, "model card (.json from export.py)", ExportError)
    if not isinstance(card, dict):
        raise ExportError(f"{path}: a model card is a JSON object, not {type(card).__name__}")
    if card.get("card_version") != CARD_VERSION:
        raise ExportError(f"{path}: card_version {card.get('card_version')!r}, expected {CARD_VERSION}")
    for key, kind in REQUIRED.items():
        if not isinstance(card.get(key), kind):
            raise ExportError(f"{path}: field '{key}' is missing or not a {kind.__name__}; export the model again")
    missing = [k for k in NMS_FIELDS if not isinstance(card["nms"].get(k), (int, float))]
    if missing:
        raise ExportError(f"{path}: field 'nms' lacks {', '.join(missing)}; export the model again")
    if len(card["class_names"]) != len(card["category_ids"]):
        raise ExportError(f"{path}: {len(card['class_names'])} class names but {len(card['category_ids'])} "
                          "category ids")
    return card


def read_card(model_path):
    """The card beside `model_path`; a FileNotFoundError naming it when absent."""
    path = card_path(model_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: export.py writes it beside {os.path.basename(model_path)}, and "
                                "it holds the input size, normalisation and class names")
    return load_card(path)

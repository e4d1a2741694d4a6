"""Detect objects in image files; write per-image JSON and a PNG with the boxes drawn.

    python predict.py --checkpoint_path runs/NAME/best.ckpt --images photos/ --out out/predict
    python predict.py --model_file runs/NAME/best.onnx --images dog.jpg            # or a .mindir

Preprocessing (resize with cv2.INTER_LINEAR, normalise) and NMS are eval's own code, so the detections equal
eval.py's on the same image. A model file needs the `.json` card that export.py writes beside it. JSON boxes are
x1, y1, x2, y2 in pixels of the original image; the PNG draws those scoring at least `--draw_score`.
"""
import os
import sys

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main
from src.config import ConfigError, parse_config


# The config groups predict.py reads (default_config.yaml), and `loss`, which sets the head's outputs.
GROUPS = ("model", "anchors", "nms", "checkpoint", "predict", "output", "device")
KEYS = ("loss",)


def main(argv=None):
    cfg = parse_config(argv, description="Detect objects in images with a checkpoint or an exported model.",
                       required=("images",), run_config_from="checkpoint_path", groups=GROUPS, keys=KEYS)
    if bool(cfg.checkpoint_path) == bool(cfg.model_file):
        raise ConfigError("give exactly one of --checkpoint_path (a .ckpt) and --model_file (a .mindir or .onnx)")
    from src.data.image_io import read_rgb
    from src.deploy.predictor import Predictor, detections_doc, list_images, output_stems, write_prediction
    from src.deploy.runtimes import nms_overrides_from_config, checkpoint_runtime_from_config, open_model_file
    from src.device import device_from_config

    out = cfg.out or os.path.join("out", "predict")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file; give a folder for the JSON and PNG files")
    paths = list_images(cfg.images)
    device_from_config(cfg)
    if cfg.model_file:
        runtime, info = open_model_file(cfg.model_file, nms_overrides_from_config(cfg))
    else:
        runtime, info = checkpoint_runtime_from_config(cfg)
    predictor = Predictor(runtime, info)
    os.makedirs(out, exist_ok=True)
    skipped = 0
    for path, stem in zip(paths, output_stems(paths)):
        image, reason = read_rgb(path)
        if image is None:
            print(f"skipped {path}: {reason}", file=sys.stderr)
            skipped += 1
            continue
        boxes, scores, labels = predictor(image)
        doc = detections_doc(path, image, boxes, scores, labels, info.class_names)
        write_prediction(out, stem, doc, image, boxes, scores, labels, info.class_names, cfg.draw_score)
        shown = sum(float(s) >= cfg.draw_score for s in scores)
        print(f"{os.path.basename(path)}: {len(scores)} detections, {shown} at score >= {cfg.draw_score}")
    print(f"{len(paths) - skipped} images -> {os.path.abspath(out)} (JSON and PNG per image)"
          + (f"; {skipped} skipped" if skipped else ""))
    return 1 if skipped == len(paths) else 0


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Export a checkpoint's inference network (detector + box decoding) to MINDIR, AIR or ONNX.

    python export.py --checkpoint_path runs/NAME/best.ckpt --file_format ONNX [--file_name N] [--export_batch_size B]

The graph takes `image` [B, 3, H, W] float32 (normalised as in eval) and returns `boxes` [B, A, 4] (normalised
x1, y1, x2, y2) and `scores` [B, A, C]; NMS stays outside and is shared with eval (`predict.py`,
`postprocess.py`). Beside the model, `<name>.json` records the input size, normalisation, class names and NMS
settings. The batch is static: `--export_batch_size`, 1 by default.
"""
import os
import sys

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main
from src.config import parse_config

# The config groups export.py reads (default_config.yaml), and `loss`, which sets the head's outputs.
GROUPS = ("model", "anchors", "nms", "checkpoint", "export", "device")
KEYS = ("loss",)


def main(argv=None):
    cfg = parse_config(argv, description="Export a detector checkpoint to MINDIR, AIR or ONNX.",
                       required=("checkpoint_path",), run_config_from="checkpoint_path", groups=GROUPS,
                       keys=KEYS, renamed={"batch_size": "export_batch_size"})
    from src.deploy.exporter import check_format, export_model
    from src.deploy.loading import card_from_config, category_ids, inference_net, detector_from_config
    from src.device import device_from_config

    device_from_config(cfg)
    file_format = check_format(cfg.file_format)   # before the model is built: AIR fails fast off Ascend
    batch_size = int(cfg.export_batch_size)
    net, names, meta = detector_from_config(cfg)
    file_name = cfg.file_name or os.path.splitext(cfg.checkpoint_path)[0]
    card = card_from_config(cfg, names, category_ids(meta, names), net.spec.num_anchors)
    path, card = export_model(inference_net(net, cfg.prior_scaling), card, file_format, file_name, batch_size)
    print(f"exported {cfg.model_name} ({len(names)} classes, input {batch_size}x3x{cfg.img_shape[0]}x"
          f"{cfg.img_shape[1]}) to {path}; card {card}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

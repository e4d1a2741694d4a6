"""COCO mAP of the C++ program's outputs (`<stem>_0.bin` boxes, `<stem>_1.bin` scores per image).

    python postprocess.py --result_path ascend310_infer/result_Files --img_path val2017 \
        --gt_json annotations/instances_val2017.json [--model_card runs/NAME/best.json]

NMS and rescaling are eval's own code. Labels map to the annotation's categories sorted by id, or to the class
names and ids of `--model_card` (the .json export.py writes), whose NMS settings are then used as well.
Every image of the annotation file is scored; an image without output files counts as having no detections.
"""
import os
import sys

import src  # noqa: F401  (package set-up; no MindSpore is needed here)
from src.cli import run_main
from src.config import ConfigError, parse_config
from src.deploy.model_card import load_card
from src.fileio import read_json


# The config groups postprocess.py reads (default_config.yaml).
GROUPS = ("postprocess", "nms", "plots")


def label_mapping(cfg, gt):
    """(class names, category ids, NMS settings source) from the model card or the annotation file."""
    categories = sorted(gt.get("categories") or [], key=lambda c: c["id"])
    if not categories:
        raise ConfigError(f"{cfg.gt_json}: no categories")
    if not cfg.model_card:
        return [c["name"] for c in categories], [c["id"] for c in categories], cfg
    card = load_card(cfg.model_card)
    unknown = sorted(set(card["category_ids"]) - {c["id"] for c in categories})
    if unknown:
        raise ConfigError(f"{cfg.model_card}: category ids {unknown} are not among the categories of {cfg.gt_json} "
                          f"({', '.join(str(c['id']) for c in categories[:10])}): a card of a model trained on "
                          "other data?")
    return card["class_names"], card["category_ids"], card["nms"]


def main(argv=None):
    cfg = parse_config(argv, description="COCO mAP of the C++ inference outputs.",
                       required=("result_path", "img_path", "gt_json"), groups=GROUPS,
                       renamed={"anno_path": "gt_json"})
    from src.deploy.bin_results import image_size, read_result_bins
    from src.deploy.runtimes import nms_overrides_from_config, nms_params
    from src.evaluation.coco_evaluator import COCOEvaluator
    from src.evaluation.postprocess import image_detections

    for key in ("result_path", "img_path"):
        if not os.path.isdir(cfg[key]):
            raise FileNotFoundError(f"--{key}: {cfg[key]} is not a folder")
    gt = read_json(cfg.gt_json, "COCO annotation file (--gt_json)")
    if not isinstance(gt, dict) or not isinstance(gt.get("images"), list):
        raise ConfigError(f"{cfg.gt_json}: not a COCO annotation file (no 'images' list)")
    names, ids, nms_source = label_mapping(cfg, gt)
    params = nms_params(nms_source, nms_overrides_from_config(cfg))
    evaluator = COCOEvaluator(cfg.gt_json, names, ids)
    missing = 0
    for entry in gt["images"]:
        stem = os.path.splitext(os.path.basename(entry["file_name"]))[0]
        outputs = read_result_bins(cfg.result_path, stem, len(names))
        if outputs is None:
            missing += 1
            continue
        evaluator.add(entry["id"], *image_detections(*outputs, image_size(entry, cfg.img_path), params))
    if missing == len(gt["images"]):
        raise FileNotFoundError(f"--result_path: no <stem>_0.bin/_1.bin files in {cfg.result_path} for the "
                                f"{missing} images of {cfg.gt_json}")
    if missing:
        print(f"warning: {missing} of {len(gt['images'])} images have no output files; scored as no detections",
              file=sys.stderr)
    print(f"scoring {len(gt['images']) - missing} images from {cfg.result_path}")
    result = evaluator.evaluate(verbose=True)
    if cfg.plots:
        from src.plots.evaluation import write_eval_plots
        paths = write_eval_plots(evaluator, result, os.path.abspath(cfg.result_path).rstrip(os.sep),
                                 cfg.confusion_score)
        print("pictures: " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

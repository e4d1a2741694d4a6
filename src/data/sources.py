"""From `--dataset coco|voc|other|demo` and its paths to a MindRecord built once and reused while fresh."""
import hashlib
import os

from .demo import ensure_demo_dataset
from .formats import collect_voc_classes, parse_coco, parse_txt, parse_voc
from .mindrecord import ensure_mindrecord, source_fingerprint
from .records import DatasetError

DATASETS = ("coco", "voc", "other", "demo")


def _require(path, what, key):
    if not path:
        raise DatasetError(f"--{key} is required for this dataset ({what})")
    if not os.path.exists(path):
        raise DatasetError(f"{what} not found: {path} (set --{key})")
    return os.path.abspath(path)


def _coco_split(root, data_type, key):
    root = _require(root, "COCO root", key)
    json_path = _require(os.path.join(root, "annotations", f"instances_{data_type}.json"),
                         f"COCO annotation file of {data_type}", key)
    image_dir = _require(os.path.join(root, data_type), f"COCO image folder {data_type}", key)
    return json_path, image_dir


def _source_from_config(cfg, split, classes):
    """(name stem, parser factory, paths whose change means a rebuild) for one split."""
    train = split == "train"
    if cfg.dataset in ("coco", "demo"):
        if cfg.dataset == "demo":
            root = ensure_demo_dataset(cfg.demo_root, num_train=cfg.demo_num_train, num_val=cfg.demo_num_val)
            key = "demo_root"
        else:
            root, key = cfg.coco_root, "coco_root"
        json_path, image_dir = _coco_split(root, cfg.train_data_type if train else cfg.val_data_type, key)
        return json_path, (lambda: parse_coco(json_path, image_dir, classes)), [json_path, image_dir]
    if cfg.dataset == "voc":
        voc_root = _require(cfg.voc_root, "VOC root", "voc_root")
        split_dir = _require(os.path.join(voc_root, "train" if train else "eval"), f"VOC {split} folder",
                             "voc_root")
        if not classes:
            # Both splits take the training split's names, so that labels agree.
            classes = collect_voc_classes(os.path.join(voc_root, "train"))
        return split_dir, (lambda: parse_voc(split_dir, classes)), [split_dir]
    if cfg.dataset == "other":
        anno_key = "anno_path" if train else "eval_anno_path"
        anno_path = _require(cfg[anno_key], "TXT annotation file", anno_key)
        image_key = "image_dir" if train or not cfg.eval_image_dir else "eval_image_dir"
        image_dir = _require(cfg[image_key], "TXT image folder", image_key)
        return anno_path, (lambda: parse_txt(anno_path, image_dir, classes)), [anno_path, image_dir]
    raise DatasetError(f"--dataset must be one of {', '.join(DATASETS)}, got {cfg.dataset!r}")


def build_split(cfg, split, classes=None, force=False, build=True):
    """MindRecordInfo for `split` ('train' or 'eval'), built from the configured source when stale.

    `build=False` only reuses a fresh build (DatasetError otherwise): for ranks that wait while rank 0 builds.
    """
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    classes = [str(c) for c in (classes or cfg.classes)] or None
    anchor_path, factory, paths = _source_from_config(cfg, split, classes)
    digest = hashlib.sha1(os.path.abspath(anchor_path).encode()).hexdigest()[:8]
    fingerprint = {"dataset": cfg.dataset, "split": split, "classes": classes, "source": source_fingerprint(paths)}
    return ensure_mindrecord(factory, cfg.mindrecord_dir, f"{cfg.dataset}_{split}_{digest}", fingerprint,
                             force=force, build=build)


def resolve_num_classes(num_classes, class_names):
    """The class count follows the class list; a `num_classes` set in the config (not 0) must agree with it."""
    if num_classes and num_classes != len(class_names):
        raise DatasetError(f"num_classes is {num_classes} but the data has {len(class_names)} classes "
                           f"({', '.join(class_names[:5])}{', ...' if len(class_names) > 5 else ''}); "
                           "leave num_classes at 0 to derive it")
    return len(class_names)

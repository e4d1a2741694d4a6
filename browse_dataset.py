"""Look at a training set as the loss sees it, and at how well the anchors fit it, before training.

    python browse_dataset.py --config_path configs/ssd_mobilenet_v2_300.yaml --dataset coco --coco_root DIR \
        --out out/browse --num 8

Reads the same MindRecord and pipeline as train.py (built from the data keys, reused while fresh). For the first
`--num` training images it writes `sample_<image id>.png`: the image and its boxes as validated, and the same image
after the training augmentation (the draw that epoch 1 of a training run with this seed makes) with its positive
anchors and the boxes their encoded targets decode to. `dataset_summary.png` and the printed tables give images
and boxes per class, box sizes, and the anchor fit: each ground-truth box's best IoU with any anchor, and the share
of boxes below `match_threshold` (matched only to their single best anchor) per box size and per feature level.
"""
import os
import sys

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main
from src.config import parse_config

# The config groups browse_dataset.py reads (default_config.yaml), and `loss` (the head's outputs, for the model's
# anchors) and `seed` (the augmentation's draws).
GROUPS = ("model", "anchors", "data", "augmentation", "browse", "output", "device")


def validated_boxes(gt_json, category_ids):
    """Per non-crowd box of the validated set: normalised xyxy, the label, and (image width, image height)."""
    import numpy as np

    from src.fileio import read_json
    gt = read_json(gt_json, "ground truth")
    label_of = {c: k for k, c in enumerate(category_ids)}
    size = {i["id"]: (i["width"], i["height"]) for i in gt["images"]}
    boxes, labels, image_ids = [], [], []
    for a in gt["annotations"]:
        if a.get("iscrowd", 0) or a["category_id"] not in label_of:
            continue
        w, h = size[a["image_id"]]
        x, y, bw, bh = a["bbox"]
        boxes.append([x / w, y / h, (x + bw) / w, (y + bh) / h])
        labels.append(label_of[a["category_id"]])
        image_ids.append(a["image_id"])
    return (np.array(boxes, np.float64).reshape(-1, 4), np.array(labels, np.int64), np.array(image_ids),
            len(gt["images"]))


def print_summary(names, images_per_class, boxes_per_class, num_images, fit, num_levels):
    print(f"{num_images} images, {int(sum(boxes_per_class))} boxes")
    print(f"{'class':<16}{'images':>8}{'boxes':>8}")
    for name, n_img, n_box in zip(names, images_per_class, boxes_per_class):
        print(f"{name:<16}{int(n_img):>8}{int(n_box):>8}")
    boxes, share = fit.share_below()
    print(f"anchor fit: {100 * share:.1f}% of {boxes} boxes have no anchor with IoU >= {fit.threshold:g} "
          "(they are matched only to their single best anchor)")
    print(f"{'':<16}{'boxes':>8}{'below':>8}")
    for name, count, part in fit.by_band() + fit.by_level(num_levels):
        print(f"{name:<16}{count:>8}{'-' if count == 0 else f'{100 * part:.1f}%':>8}")


def main(argv=None):
    cfg = parse_config(argv, description="Draw training samples as the loss sees them, and the dataset summary.",
                       groups=GROUPS, keys=("loss", "seed"))
    import mindspore.dataset as ds
    import numpy as np

    from src.config import ConfigError
    from src.data.browse import anchor_fit, decoded_targets
    from src.data.pipeline import decode_record_bgr, train_sample_from_config
    from src.data.sources import build_split, resolve_num_classes
    from src.device import device_from_config
    from src.models.detector import build_detector
    from src.plots.dataset import plot_sample, plot_summary

    out = cfg.out or os.path.join("out", "browse")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file; give a folder for the pictures")
    device_from_config(cfg)
    info = build_split(cfg, "train")
    names = list(info.class_names)
    net = build_detector(cfg, resolve_num_classes(cfg.num_classes, names))
    anchors = net.spec.anchors
    per_level = [h * w * k for (h, w), k in zip(net.spec.feature_sizes, net.spec.anchors_per_location)]
    sample = train_sample_from_config(cfg, anchors)
    mean, std = np.asarray(cfg.img_mean, np.float32), np.asarray(cfg.img_std, np.float32)
    os.makedirs(out, exist_ok=True)

    columns = ["image", "boxes", "labels", "num_boxes", "img_id"]
    rows = ds.MindDataset(info.path, columns_list=columns, shuffle=False).create_tuple_iterator(output_numpy=True)
    for index, (image, boxes, labels, num_boxes, img_id) in enumerate(rows):
        if index >= cfg.num:
            break
        original = decode_record_bgr(image)[:, :, ::-1]
        h, w = original.shape[:2]
        n = int(np.asarray(num_boxes).reshape(-1)[0])
        gt = np.asarray(boxes, np.float32).reshape(-1, 4)[:n] / np.array([w, h, w, h], np.float32)
        chw, aug_boxes, aug_labels = sample.augment(image, boxes, labels, num_boxes, img_id)
        loc, target_labels, _ = sample.encoder(aug_boxes, aug_labels)
        positives, positive_labels, decoded = decoded_targets(sample.encoder, loc, target_labels, anchors)
        augmented = np.clip(chw.transpose(1, 2, 0) * std + mean, 0, 255).astype(np.uint8)
        path = plot_sample(original, gt, np.asarray(labels).reshape(-1)[:n], augmented, positives, positive_labels,
                           decoded, positive_labels, names, f"image {int(img_id)}",
                           os.path.join(out, f"sample_{int(img_id)}.png"))
        print(f"{path}: {n} boxes; after augmentation {len(aug_labels)}, matched by {len(positive_labels)} anchors")

    boxes, labels, image_ids, num_images = validated_boxes(info.gt_json, info.category_ids)
    boxes_per_class = np.bincount(labels, minlength=len(names))
    images_per_class = np.array([len(set(image_ids[labels == k].tolist())) for k in range(len(names))])
    fit = anchor_fit(boxes, labels, anchors, per_level, net.spec.img_shape, cfg.match_threshold)
    print_summary(names, images_per_class, boxes_per_class, num_images, fit, len(per_level))
    summary = plot_summary(names, images_per_class, boxes_per_class, boxes[:, 2] - boxes[:, 0],
                           boxes[:, 3] - boxes[:, 1], labels, fit, len(per_level),
                           os.path.join(out, "dataset_summary.png"))
    print(f"summary: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

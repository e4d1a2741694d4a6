"""browse_dataset.py's pictures: a training sample as validated and as the loss sees it, and the dataset summary."""
import numpy as np

from ..data.browse import SIZE_BANDS
from .figure import class_rgb, pyplot, save_figure


def _draw_boxes(ax, boxes, labels, class_names, width, height, style="-", linewidth=1.6, tags=True):
    from matplotlib.patches import Rectangle
    for (x1, y1, x2, y2), k in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(labels).reshape(-1)):
        x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=class_rgb(k), linestyle=style,
                               linewidth=linewidth))
        if tags:
            ax.text(x1, y1, class_names[int(k)], fontsize=7, color="black", va="bottom",
                    bbox={"facecolor": class_rgb(k), "edgecolor": "none", "pad": 1})


def plot_sample(original_rgb, gt_boxes, gt_labels, augmented_rgb, anchors, anchor_labels, decoded, decoded_labels,
                class_names, title, path):
    """Left: the image and its boxes as validated. Right: the same image after the training augmentation, with its
    positive anchors (thin, in their class's colour) and the boxes their targets decode to (thick): the loss sees
    exactly these. Boxes are normalised xyxy."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2))
    h, w = original_rgb.shape[:2]
    left.imshow(original_rgb)
    _draw_boxes(left, gt_boxes, gt_labels, class_names, w, h)
    left.set_title(f"as validated: {len(gt_labels)} boxes", fontsize=9)
    ah, aw = augmented_rgb.shape[:2]
    right.imshow(augmented_rgb)
    _draw_boxes(right, anchors, anchor_labels, class_names, aw, ah, style=":", linewidth=0.8, tags=False)
    _draw_boxes(right, decoded, decoded_labels, class_names, aw, ah, linewidth=1.8)
    right.set_title(f"as the loss sees it: {len(anchor_labels)} positive anchors (dotted), their decoded targets",
                    fontsize=9)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_summary(class_names, images_per_class, boxes_per_class, rel_w, rel_h, labels, fit, num_levels, path):
    """Images and boxes per class; box width and height relative to the image; each box's best IoU with an anchor;
    the share of boxes below the matching threshold per size band and per feature level."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0, 0]
    x = np.arange(len(class_names))
    colours = [class_rgb(k) for k in range(len(class_names))]
    ax.bar(x - 0.2, images_per_class, 0.4, color=colours, alpha=0.45, label="images")
    ax.bar(x + 0.2, boxes_per_class, 0.4, color=colours, label="boxes")
    ax.set_xticks(x, class_names, rotation=45, ha="right", fontsize=8)
    ax.set_title("images (light) and boxes (dark) per class")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.scatter(rel_w, rel_h, s=4, c=[colours[k] for k in labels], alpha=0.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("box width / image width")
    ax.set_ylabel("box height / image height")
    ax.set_title("box sizes relative to the image")
    ax = axes[1, 0]
    ax.hist(fit.best_iou, bins=np.linspace(0, 1, 41), color="tab:blue")
    ax.axvline(fit.threshold, color="tab:red", linestyle="--",
               label=f"match_threshold {fit.threshold:g}: {100 * fit.share_below()[1]:.0f}% of boxes below")
    ax.set_xlabel("best IoU of a ground-truth box with any anchor")
    ax.set_ylabel("boxes")
    ax.set_title("anchor fit: each box's best IoU with an anchor")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    rows = fit.by_band() + fit.by_level(num_levels)
    names = [r[0] for r in rows]
    shares = [0.0 if np.isnan(r[2]) else 100 * r[2] for r in rows]
    bar_colours = ["tab:orange"] * len(SIZE_BANDS) + ["tab:purple"] * num_levels
    ax.barh(np.arange(len(rows)), shares, color=bar_colours)
    for i, (_, count, share) in enumerate(rows):
        ax.text(min(shares[i] + 1, 95), i, f"{count} boxes", va="center", fontsize=7)
    ax.set_yticks(np.arange(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of boxes whose best anchor IoU is below match_threshold")
    ax.set_title("boxes below match_threshold, by size at the input and by level")
    for a in axes.flat:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)

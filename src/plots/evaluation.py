"""Evaluation pictures: PR curves, the confusion matrix (PNG and CSV) and per-class AP, beside eval's JSON."""
import csv
import io

import numpy as np

from ..evaluation.confusion import row_normalised
from ..fileio import atomic_path
from .figure import class_rgb, pyplot, save_figure


def pr_curves(curves, class_names):
    """The curves to draw, from COCOeval's precision (coco_evaluator.precision_curves):
    ({class name: (recall, precision, AP50)} at IoU 0.5 for the classes with ground truth,
     (recall, mean precision over classes and IoUs 0.5:0.95, mAP)). The mean of a curve over the recall points is
    its AP, as COCOeval computes it (so the area under each drawn curve is the AP in eval's table)."""
    precision, recall, ious = curves
    t50 = int(np.flatnonzero(np.isclose(ious, 0.5))[0])
    per_class = {}
    for k, name in enumerate(class_names):
        p = precision[t50, :, k]
        if (p > -1).all():
            per_class[name] = (recall, p, float(p.mean()))
    valid = [k for k in range(precision.shape[2]) if (precision[:, :, k] > -1).all()]
    mean = precision[:, :, valid].mean(axis=(0, 2)) if valid else np.zeros_like(recall)
    return per_class, (recall, mean, float(mean.mean()))


def plot_pr_curves(curves, class_names, path):
    per_class, (recall, mean, mean_ap) = pr_curves(curves, class_names)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for k, name in enumerate(class_names):
        if name in per_class:
            r, p, ap = per_class[name]
            ax.plot(r, p, color=class_rgb(k), linewidth=1.2, label=f"{name} AP50 {ap:.3f}")
    ax.plot(recall, mean, color="black", linewidth=2.5, label=f"all classes, IoU 0.5:0.95: mAP {mean_ap:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall per class at IoU 0.5, and the mean over classes and IoUs 0.5:0.95")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save_figure(fig, path)


def write_confusion_csv(matrix, class_names, path):
    """The counts and the row-normalised shares, as two labelled tables in one CSV."""
    labels = list(class_names) + ["background"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for title, table, fmt in (("counts", matrix, "{:d}"), ("row-normalised", row_normalised(matrix), "{:.4f}")):
        writer.writerow([f"{title}: true \\ predicted"] + labels)
        for name, row in zip(labels, table):
            writer.writerow([name] + [fmt.format(int(v) if fmt == "{:d}" else float(v)) for v in row])
        writer.writerow([])
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text.getvalue())
    return path


def plot_confusion(matrix, class_names, path, iou_threshold, score_threshold):
    labels = list(class_names) + ["background"]
    n = len(labels)
    plt = pyplot()
    size = max(5.0, 0.45 * n + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for ax, table, title, fmt in ((axes[0], matrix, "counts", "{:.0f}"),
                                  (axes[1], row_normalised(matrix), "share of each true class", "{:.2f}")):
        image = ax.imshow(table, cmap="Blues", vmin=0)
        ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        if n <= 25:
            high = table.max() * 0.6 if table.size and table.max() > 0 else 1
            for i in range(n):
                for j in range(n):
                    if table[i, j]:
                        ax.text(j, i, fmt.format(table[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if table[i, j] > high else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"confusion matrix: detections scoring >= {score_threshold:g} matched at IoU >= {iou_threshold:g}; "
                 "last row: false positives on background, last column: missed boxes")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_per_class_ap(result, class_names, path):
    names = [n for n in class_names if result["per_class"].get(n) is not None]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(names) + 2), 4.5))
    x = np.arange(len(names))
    colours = [class_rgb(class_names.index(n)) for n in names]
    ax.bar(x - 0.2, [result["per_class_ap50"][n] for n in names], 0.4, color=colours, alpha=0.45, label="AP50")
    ax.bar(x + 0.2, [result["per_class"][n] for n in names], 0.4, color=colours, label="AP 0.5:0.95")
    ax.axhline(result["mAP"], color="black", linewidth=1, linestyle="--", label=f"mAP {result['mAP']:.3f}")
    ax.set_xticks(x, [f"{n}\n({result['num_gt'][n]} boxes)" for n in names], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AP")
    ax.set_title("AP per class (light: AP50, dark: AP at IoU 0.5:0.95)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def write_eval_plots(evaluator, result, stem, score_threshold=0.25, iou_threshold=0.5):
    """PR curves, per-class AP and the confusion matrix (PNG and CSV) of the last `evaluator.evaluate()`, as
    `<stem>_pr_curves.png`, `<stem>_per_class_ap.png`, `<stem>_confusion_matrix.png|.csv`. Returns the paths."""
    names = list(evaluator.class_names)
    matrix = evaluator.confusion_matrix(iou_threshold=iou_threshold, score_threshold=score_threshold)
    return [plot_pr_curves(evaluator.curves, names, f"{stem}_pr_curves.png"),
            plot_per_class_ap(result, names, f"{stem}_per_class_ap.png"),
            plot_confusion(matrix, names, f"{stem}_confusion_matrix.png", iou_threshold, score_threshold),
            write_confusion_csv(matrix, names, f"{stem}_confusion_matrix.csv")]

"""results.csv and results.png in the run folder: one row per epoch, and the curves redrawn from it.

Columns: epoch, global_step, lr (at the epoch's last step), loss and its parts (class, box) averaged over the
epoch's finite steps, img_per_s (the epoch's median step), and on evaluated epochs mAP, AP50 and AP75. Both files
are written atomically after every epoch. A resumed run keeps the rows up to the epoch it resumes from and appends.
"""
import csv
import io
import math
import os

from ..fileio import atomic_path

COLUMNS = ("epoch", "global_step", "lr", "loss", "cls_loss", "box_loss", "img_per_s", "mAP", "AP50", "AP75")


def _cell(key, value):
    if value is None or not math.isfinite(value):
        return ""
    return str(int(value)) if key in ("epoch", "global_step") else f"{float(value):.6g}"


def read_results(path):
    """The rows of a results.csv as dicts of floats (None for an empty cell); [] when there is none."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items() if k in COLUMNS}
                for row in csv.DictReader(f)]


class ResultsLog:
    """Appends a row per epoch to `run_dir/results.csv` and redraws `run_dir/results.png`."""

    def __init__(self, run_dir, start_epoch=0):
        self.csv_path = os.path.join(run_dir, "results.csv")
        self.png_path = os.path.join(run_dir, "results.png")
        # A resumed run goes on from its checkpoint's epoch: rows after it (an epoch that died) are dropped.
        self.rows = [r for r in read_results(self.csv_path) if r["epoch"] is not None and r["epoch"] <= start_epoch]

    def append(self, **row):
        self.rows.append({k: row.get(k) for k in COLUMNS})
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.rows:
            writer.writerow([_cell(k, r[k]) for k in COLUMNS])
        with atomic_path(self.csv_path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text.getvalue())
        from ..plots.training import plot_results
        plot_results(self.rows, self.png_path)

"""Side by side: the headline figures of several benchmark.py JSON files, and each one's ratio to the first."""
from ..errors import ConfigError
from ..fileio import read_json

# (label, path in the report); each ratio is the value over the first file's
FIGURES = [
    ("train s/step (median)", ("train", "median_s_per_step")),
    ("train img/s", ("train", "images_per_s")),
    ("train fraction of GEMM peak", ("train", "fraction_of_gemm_peak")),
    ("peak RSS MB (training)", ("train", "peak_rss_mb")),
    ("pipeline img/s", ("pipeline", "images_per_s")),
    ("post-process s / 1000 images", ("postprocess", "s_per_1000_images")),
    ("inference ms (batch 1)", ("inference", "median_ms")),
]


def _get(report, path):
    for key in path:
        if not isinstance(report, dict) or key not in report:
            return None
        report = report[key]
    return report


def compare(paths):
    reports = []
    for path in paths:
        report = read_json(path, "benchmark.py JSON file", ConfigError)
        missing = [k for k in ("model_name", "batch_size", "amp_level")
                   if not isinstance(report, dict) or k not in report]
        if missing:
            raise ConfigError(f"{path}: not a JSON file written by benchmark.py (no {', '.join(missing)})")
        reports.append(report)
    names = [f"{r['model_name']} b{r['batch_size']} {r['amp_level']} k={int(bool(r.get('cpu_kernels')))}"
             for r in reports]
    width = max(len(n) for n in names + ["figure"]) + 2
    lines = ["".ljust(30) + "".join(n.rjust(width) for n in names)]
    for label, path in FIGURES:
        values = [_get(r, path) for r in reports]
        if all(v is None for v in values):
            continue
        cells = []
        for i, v in enumerate(values):
            if v is None:
                cells.append("-".rjust(width))
                continue
            text = f"{v:.4g}"
            if i and values[0]:
                text += f" ({v / values[0]:.2f}x)"
            cells.append(text.rjust(width))
        lines.append(label.ljust(30) + "".join(cells))
    return "\n".join(lines)

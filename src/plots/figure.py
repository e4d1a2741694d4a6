"""What every picture shares: the Agg backend, atomic writes, the class colours."""
import os

from ..deploy.draw import class_colour
from ..fileio import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported when a picture is drawn (nothing else pays for it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def class_rgb(label):
    """predict.py's colour of class `label`, as matplotlib's RGB floats."""
    b, g, r = class_colour(int(label))
    return r / 255.0, g / 255.0, b / 255.0


def save_figure(fig, path, dpi=110):
    """Write `fig` as a PNG at `path` (via a temporary file) and close it; returns `path`."""
    plt = pyplot()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return path

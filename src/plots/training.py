"""results.png: the training curves of one run, from its results.csv rows."""
from .figure import pyplot, save_figure


def _series(rows, key):
    points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_results(rows, path):
    """Loss and its parts, the learning rate, and mAP / AP50 / AP75 on evaluated epochs, over epochs."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    loss_ax, lr_ax, map_ax = axes
    for key, label in (("loss", "loss"), ("cls_loss", "class part"), ("box_loss", "box part")):
        x, y = _series(rows, key)
        loss_ax.plot(x, y, marker="o", markersize=3, label=label)
    loss_ax.set_title("training loss (epoch mean)")
    loss_ax.set_xlabel("epoch")
    loss_ax.legend()
    x, y = _series(rows, "lr")
    lr_ax.plot(x, y, marker="o", markersize=3, color="tab:gray")
    lr_ax.set_title("learning rate (end of epoch)")
    lr_ax.set_xlabel("epoch")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    evaluated = False
    for key in ("mAP", "AP50", "AP75"):
        x, y = _series(rows, key)
        if x:
            evaluated = True
            map_ax.plot(x, y, marker="o", markersize=4, label=key)
    map_ax.set_title("validation AP" if evaluated else "validation AP (run with --run_eval True)")
    map_ax.set_xlabel("epoch")
    if evaluated:
        map_ax.legend()
        map_ax.set_ylim(bottom=0)
    from matplotlib.ticker import MaxNLocator
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return save_figure(fig, path)

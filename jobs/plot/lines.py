"""Figures of a line or curve: loss and accuracy along it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .data import Landscape
from .labels import axis_labels, metric_values, wrap
from .style import DIVERGED, diverged_label, plain_log, title


def curve(ls: Landscape):
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.plot(ls.x, ls.loss, "-", color="C0", lw=1.5, label="loss")
    if float(ls.loss.min()) > 0:
        ax.set_yscale("log")
        plain_log(ax.yaxis)
    ax.set_xlabel(axis_labels(ls.meta)[0])
    ax.set_ylabel("loss", color="C0")
    handles = ax.get_lines()
    if ls.accuracy.count():
        ax2 = ax.twinx()
        handles += ax2.plot(ls.x, 100 * ls.accuracy, "--", color="C1", lw=1.3, label="accuracy (%)")
        ax2.set_ylabel("accuracy (%)", color="C1")
    cps = [cp for cp in ls.meta.get("checkpoints", []) or [] if cp.get("x") is not None]
    for cp in cps:
        ax.axvline(cp["x"], color="0.3", ls=":", lw=1)
    if cps:  # labels on a top axis: inside the plot they collide with the curves
        ax.secondary_xaxis("top").set_xticks([cp["x"] for cp in cps],
                                             labels=[str(cp.get("label", "")) for cp in cps])
    if ls.unfinished.any():  # not evaluated yet: a grey band on the floor, told apart from diverged
        ax.plot(ls.x[ls.unfinished], np.zeros(np.count_nonzero(ls.unfinished)), "|", color="0.6",
                transform=ax.get_xaxis_transform(), clip_on=False, label="not evaluated yet")
        handles = handles + ax.get_lines()[-1:]
    if ls.diverged.any():  # diverged points have no y value; mark them on the floor
        ax.plot(ls.x[ls.diverged], np.zeros(np.count_nonzero(ls.diverged)), "x", color=DIVERGED,
                transform=ax.get_xaxis_transform(), clip_on=False, label=diverged_label(ls))
        handles = handles + ax.get_lines()[-1:]
    # Outside the axes: inside, it always covers one of the two curves.
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    ax.set_title(wrap(title(ls), fig.get_figwidth() * 0.85, 10), fontsize=10)
    return fig


def metric_line(ls: Landscape, name: str, z: np.ma.MaskedArray):
    """Another metric along the line (e.g. an ensemble's accuracy), on its own axes."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    z, label = metric_values({name: z}, name)  # fractions in %
    ax.plot(ls.x, z, "-", color="C2", lw=1.5)
    ax.set(xlabel=axis_labels(ls.meta)[0], ylabel=label)
    for cp in [cp for cp in ls.meta.get("checkpoints", []) or [] if cp.get("x") is not None]:
        ax.axvline(cp["x"], color="0.3", ls=":", lw=1)
    ax.set_title(wrap(title(ls), fig.get_figwidth() * 0.85, 10), fontsize=10)
    return fig

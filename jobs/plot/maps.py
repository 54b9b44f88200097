"""Figures of a plane: contour, heatmap and 3D surface of the loss, a heatmap per other metric."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker
from matplotlib.colors import LogNorm, Normalize

from .data import Landscape
from .style import CMAP, OUTLINE, levels, norm_for, plain_log, shade_missing, title, value_range

# slice kind -> draw(ax, ls): what a geometry adds to every map of its planes (a curve, a path)
OVERLAYS: dict = {}


def _map_figure(ls: Landscape):
    # Size the figure to the axes' shape so equal-aspect plots of elongated
    # grids don't float in whitespace next to a full-height colorbar.
    x0, x1, y0, y1 = ls.extent
    ratio = (y1 - y0) / (x1 - x0) if x1 > x0 and y1 > y0 else 0.75
    equal = 1 / 3 <= ratio <= 3
    fig, ax = plt.subplots(figsize=(7.5, float(np.clip(5.2 * ratio + 1.6, 3.4, 7)) if equal else 5),
                           layout="constrained")
    if equal:  # equal aspect keeps distances honest unless it squashes the plot
        ax.set_aspect("equal")
    return fig, ax


def _decorate_2d(ax, ls: Landscape) -> None:
    ax.set(xlabel=ls.meta.get("x_label", "x"), ylabel=ls.meta.get("y_label", "y"))
    ax.set_title(title(ls), fontsize=10)
    overlay = OVERLAYS.get(ls.meta.get("slice_kind"))
    if overlay is not None:
        overlay(ax, ls)
    for cp in ls.meta.get("checkpoints", []) or []:
        cx, cy = cp.get("x"), cp.get("y")
        if cx is None or cy is None:
            continue
        ax.plot(cx, cy, "o", ms=7, mfc="white", mec="black", mew=1.2, zorder=5)
        ax.annotate(str(cp.get("label", "")), (cx, cy), xytext=(6, 6), textcoords="offset points",
                    fontsize=9, color="black", path_effects=OUTLINE, zorder=6)


def message_figure(ls: Landscape, text: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(title(ls), fontsize=10)
    return fig


def heatmap(ls: Landscape, z: np.ma.MaskedArray, label: str, norm: Normalize, ax=None):
    fig, ax = _map_figure(ls) if ax is None else (ax.figure, ax)  # ax: a panel of a larger figure
    # pcolormesh with the coordinate arrays: cells centred on (x[j], y[i]),
    # y grows upward, and non-uniform grids stay correct.
    mesh = ax.pcolormesh(ls.x, ls.y, z, shading="nearest", cmap=CMAP, norm=norm)
    cb = fig.colorbar(mesh, ax=ax, label=label)
    if isinstance(norm, LogNorm):
        plain_log(cb.ax.yaxis)
    shade_missing(ax, ls)
    _decorate_2d(ax, ls)
    return fig


def contour(ls: Landscape, ax=None):
    fig, ax = _map_figure(ls) if ax is None else (ax.figure, ax)
    shade_missing(ax, ls)
    z, lv = ls.loss, levels(ls.loss)
    if lv is None or min(z.shape) < 2:
        ax.text(0.5, 0.5, "loss is flat: no contours", ha="center", transform=ax.transAxes)
    else:
        cs = ax.contour(ls.x, ls.y, z, levels=lv, cmap=CMAP, norm=norm_for(z), linewidths=1.0)
        # Label every other line so labels don't pile up in the basin.
        ax.clabel(cs, levels=cs.levels[::2], inline=True, fontsize=7, fmt="%.3g")
        fig.colorbar(cs, ax=ax, label="loss", format="%.3g")
    x0, x1, y0, y1 = ls.extent
    if x1 > x0 and y1 > y0:  # contours stop at the outermost grid points
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    _decorate_2d(ax, ls)
    return fig


def surface(ls: Landscape):
    lo, hi, log = value_range(ls.loss)
    zz = np.ma.log10(np.ma.maximum(ls.loss, lo)) if log else ls.loss
    fig = plt.figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    X, Y = np.meshgrid(ls.x, ls.y)
    lo, hi = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    surf = ax.plot_surface(X, Y, zz, cmap=CMAP, vmin=lo, vmax=hi, linewidth=0, antialiased=False)
    for axis in (ax.xaxis, ax.yaxis):  # default 3D ticks overlap on the short axes
        axis.set_major_locator(ticker.MaxNLocator(5))
    label = "log10(loss)" if log else "loss"
    ax.set(xlabel=ls.meta.get("x_label", "x"), ylabel=ls.meta.get("y_label", "y"), zlabel=label)
    fig.colorbar(surf, ax=ax, label=label, shrink=0.6, pad=0.08)
    ax.set_title(title(ls), fontsize=10)
    return fig

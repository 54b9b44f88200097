"""Figures of a plane: contour, heatmap and 3D surface of a metric (the loss by default), a heatmap per other metric.

Every map takes PlotOptions (jobs/plot/options.py); its colour bar is as tall as the axes with round ticks,
its axes are named by what they measure and its title says model, data and slice (jobs/plot/labels.py).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker
from matplotlib.colors import LogNorm, Normalize

from .data import Landscape
from .labels import axis_labels, log_by_default, metric_values, wrap
from .options import PlotOptions, resolved
from .scales import colorbar, contour_levels, make_norm, round_ticks, scale_for, tick_text
from .style import CMAP, OUTLINE, shade_missing, title

# slice kind -> draw(ax, ls): what a geometry adds to every map of its planes (a curve, a path)
OVERLAYS: dict = {}
TITLE_SIZE = 10


def _map_figure(ls: Landscape, opts: PlotOptions | None = None):
    # Size the figure to the axes' shape so equal-aspect plots of elongated
    # grids don't float in whitespace next to the colour bar.
    x0, x1, y0, y1 = ls.extent
    ratio = (y1 - y0) / (x1 - x0) if x1 > x0 and y1 > y0 else 0.75
    equal = 1 / 3 <= ratio <= 3
    size = opts.figsize if opts and opts.figsize else (7.5, float(np.clip(5.2 * ratio + 1.9, 3.6, 7.5)) if equal else 5)
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    if equal:  # equal aspect keeps distances honest unless it squashes the plot
        ax.set_aspect("equal")
    return fig, ax


def _decorate_2d(ax, ls: Landscape, opts: PlotOptions | None = None) -> None:
    opts = opts or PlotOptions()
    xl, yl = axis_labels(ls.meta)
    ax.set(xlabel=opts.xlabel or xl, ylabel=opts.ylabel or yl)
    overlay = OVERLAYS.get(ls.meta.get("slice_kind"))
    if overlay is not None:
        overlay(ax, ls)
        if opts.xlabel or opts.ylabel:  # an overlay may name the axes; the user's names win
            ax.set(xlabel=opts.xlabel or ax.get_xlabel(), ylabel=opts.ylabel or ax.get_ylabel())
    ax.set_title(wrap(opts.title or title(ls), ax.figure.get_figwidth() * 0.8, TITLE_SIZE), fontsize=TITLE_SIZE)
    for cp in ls.meta.get("checkpoints", []) or []:
        cx, cy = cp.get("x"), cp.get("y")
        if cx is None or cy is None:
            continue
        ax.plot(cx, cy, "o", ms=7, mfc="white", mec="black", mew=1.2, zorder=5)
        ax.annotate(str(cp.get("label", "")), (cx, cy), xytext=(6, 6), textcoords="offset points",
                    fontsize=9, color="black", path_effects=OUTLINE, zorder=6, annotation_clip=True)


def message_figure(ls: Landscape, text: str):
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(wrap(title(ls), 5, TITLE_SIZE), fontsize=TITLE_SIZE)
    return fig


def _values(ls: Landscape, opts: PlotOptions):
    """(values, colour-bar label, lo, hi, log) of the options' metric; SpecError when the result lacks it."""
    z, label = metric_values(ls.metrics, opts.metric)
    if z is None:
        from landscape.errors import SpecError

        raise SpecError(f"metric {opts.metric!r} is not in this result; it has {', '.join(ls.metrics)}")
    log = opts.level_scale == "log" if opts.level_scale else log_by_default(opts.metric)
    lo, hi, log = scale_for(z, log, opts.vmin, opts.vmax)
    return z, label, lo, hi, log


def _limits(ax, ls: Landscape) -> None:
    x0, x1, y0, y1 = ls.extent
    if x1 > x0 and y1 > y0:  # contours stop at the outermost grid points
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)


def heatmap(ls: Landscape, z: np.ma.MaskedArray, label: str, norm: Normalize | None = None, ax=None,
            opts: PlotOptions | None = None):
    """Heatmap of `z` (cells centred on the grid points); `norm` None: from the options' vmin/vmax."""
    opts = resolved(opts)
    fig, ax = _map_figure(ls, opts) if ax is None else (ax.figure, ax)  # ax: a panel of a larger figure
    if norm is None:
        lo, hi, log = scale_for(z, log_by_default(label.split(" ")[0]), opts.vmin, opts.vmax)
    else:
        lo, hi, log = float(norm.vmin), float(norm.vmax), isinstance(norm, LogNorm)
    # pcolormesh with the coordinate arrays: cells centred on (x[j], y[i]), y grows upward, non-uniform grids stay correct.
    mesh = ax.pcolormesh(ls.x, ls.y, z, shading="nearest", cmap=opts.cmap or CMAP, norm=make_norm(lo, hi, log))
    colorbar(fig, ax, mesh, label, lo, hi, log, clip_top=opts.clip_top)
    shade_missing(ax, ls)
    _decorate_2d(ax, ls, opts)
    return fig


def metric_heatmap(ls: Landscape, opts: PlotOptions | None = None, ax=None):
    """Heatmap of the options' metric by name (accuracies in %), its colour scale from the options."""
    opts = resolved(opts)
    z, label, lo, hi, log = _values(ls, opts)
    return heatmap(ls, z, label, make_norm(lo, hi, log), ax=ax, opts=opts)


def contour(ls: Landscape, ax=None, opts: PlotOptions | None = None):
    opts = resolved(opts)
    fig, ax = _map_figure(ls, opts) if ax is None else (ax.figure, ax)
    shade_missing(ax, ls)
    z, label, lo, hi, log = _values(ls, opts)
    flat = not float(z.max()) > float(z.min()) if z.count() else True
    if flat or min(z.shape) < 2:
        ax.text(0.5, 0.5, f"{label} is flat: no contours", ha="center", transform=ax.transAxes)
    else:
        lv = contour_levels(lo, hi, log, opts.levels)
        norm, cmap = make_norm(lo, hi, log), opts.cmap or CMAP
        zc = np.ma.clip(z, lo, hi) if opts.filled else z  # filled: values past vmax take the top colour
        if opts.filled:
            ax.contourf(ls.x, ls.y, zc, levels=lv, cmap=cmap, norm=norm, extend="neither")
            cs = ax.contour(ls.x, ls.y, zc, levels=lv, colors="k", linewidths=0.5)
        else:
            cs = ax.contour(ls.x, ls.y, z, levels=lv, cmap=cmap, norm=norm, linewidths=1.0)
            ax.clabel(cs, inline=True, fontsize=7, fmt=tick_text)
        from matplotlib.cm import ScalarMappable

        colorbar(fig, ax, ScalarMappable(norm=norm, cmap=cmap), label, lo, hi, log, clip_top=opts.clip_top)
    _limits(ax, ls)
    _decorate_2d(ax, ls, opts)
    return fig


def surface(ls: Landscape, opts: PlotOptions | None = None):
    opts = resolved(opts)
    z, label, lo, hi, log = _values(ls, opts)
    zz = np.ma.log10(np.ma.clip(z, lo, hi)) if log else np.ma.clip(z, lo, hi)
    fig = plt.figure(figsize=opts.figsize or (7.5, 6))
    # The 3D box shrunk inside its axes and the axes placed by hand: constrained layout
    # does not see a 3D axes' tick labels and would cut them off.
    ax = fig.add_axes([0.0, 0.02, 0.8, 0.88], projection="3d")
    ax.set_box_aspect(None, zoom=0.85)
    X, Y = np.meshgrid(ls.x, ls.y)
    zlo, zhi = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    surf = ax.plot_surface(X, Y, zz, cmap=opts.cmap or CMAP, vmin=zlo, vmax=zhi, linewidth=0, antialiased=False)
    ax.set_zlim(zlo, zhi)
    for axis in (ax.xaxis, ax.yaxis):  # default 3D ticks overlap on the short axes
        axis.set_major_locator(ticker.MaxNLocator(4, steps=[1, 2, 2.5, 5, 10]))
    if log:  # z in log10 units, labelled with the values themselves
        ticks = round_ticks(lo, hi, True, most=6)
        ax.set_zticks(np.log10(ticks), labels=[tick_text(t) for t in ticks])
    xl, yl = axis_labels(ls.meta)
    ax.set(xlabel=opts.xlabel or xl, ylabel=opts.ylabel or yl, zlabel=label)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):  # clear of the tick labels
        axis.labelpad = 12
    cax = fig.add_axes([0.85, 0.22, 0.03, 0.55])
    cb = fig.colorbar(surf, cax=cax, label=label)
    ticks = round_ticks(lo, hi, log)
    cb.set_ticks(np.log10(ticks) if log else ticks, labels=[tick_text(t) for t in ticks])
    cb.ax.yaxis.set_minor_locator(ticker.NullLocator())
    fig.suptitle(wrap(opts.title or title(ls), fig.get_figwidth() * 0.9, TITLE_SIZE), fontsize=TITLE_SIZE)
    return fig

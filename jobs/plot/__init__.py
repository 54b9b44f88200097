"""Figures for a landscape result (Zarr v3 group), finished or still running.

A scan's plane: contour, heatmap and 3D surface of the loss and a heatmap per
other metric; a line or curve: loss and accuracy along it. Points not evaluated
yet and points that diverged (NaN or inf, told apart by `tile_done`) are masked
out of every colour scale and drawn as what they are.

Extension points (each new geometry or job adds to them, nothing else changes):
- maps.OVERLAYS[slice_kind] = draw(ax, ls): drawn on every map of such planes.
- FIGURES: functions (ls) -> {name: builder}, extra figures for some scans.
- JOBS[job] = figures(group) -> {name: builder}, for results of other jobs.
"""

from __future__ import annotations

import os
from dataclasses import replace
import pathlib
from typing import Callable

import matplotlib.pyplot as plt
import zarr


from .data import Landscape, load
from .lines import curve
from .maps import OVERLAYS, contour, message_figure, metric_heatmap, surface
from .options import PlotOptions, resolved
from .style import levels as _levels  # noqa: F401 (tests reach these through jobs.plot)
from .style import title as _title  # noqa: F401
from .style import value_range as _range  # noqa: F401

FORMATS = ("png", "pdf", "svg")

FIGURES: list[Callable[[Landscape], dict]] = []
JOBS: dict[str, Callable[[zarr.Group], dict]] = {}

from . import trajectory as _trajectory  # noqa: E402

OVERLAYS["trajectory_pca"] = _trajectory.draw_path
FIGURES.append(_trajectory.figures)


from . import hessian as _hessian  # noqa: E402 (registers its figures)

JOBS["hessian"] = _hessian.spectrum_figures
FIGURES.append(_hessian.ratio_beside_loss)

from . import lm as _lm  # noqa: E402

FIGURES.append(_lm.perplexity_figures)

from . import errorbars as _errorbars  # noqa: E402
from .errorbars import is_se_of_a_metric  # noqa: E402

FIGURES.append(_errorbars.figures)  # <metric>_relative_se: where a value is less sure than it looks


def grid_image(result):
    """The 2D loss image exactly as drawn: (masked (ny, nx) array with row i at
    y[i] and column j at x[j], extent (xmin, xmax, ymin, ymax))."""
    ls = result if isinstance(result, Landscape) else load(result)
    if ls.loss.ndim != 2:
        raise ValueError(f"grid_image needs a 2D result, got shape {ls.loss.shape}")
    return ls.loss, ls.extent


def _scan_builders(ls: Landscape, opts: PlotOptions | None = None) -> dict:
    """name -> callable building that figure; lazy so plot_result holds one at a time."""
    opts = resolved(opts)
    names = ["contour", "heatmap", "surface"] if ls.loss.ndim == 2 else ["curve"]
    empty = ("no finished points yet" if ls.finished == 0 else
             "no finite loss values (all finished points diverged)" if ls.loss.count() == 0 else None)
    if empty is not None:  # keep the usual file names so viewers find something
        return {n: (lambda: message_figure(ls, empty)) for n in names}
    if ls.loss.ndim == 1:
        b = {"curve": lambda: curve(ls)}
    else:  # the options' metric (loss by default) as contour, heatmap and surface
        b = {"contour": lambda: contour(ls, opts=opts), "heatmap": lambda: metric_heatmap(ls, opts),
             "surface": lambda: surface(ls, opts)}
    for name, z in ls.metrics.items():
        if name == opts.metric or not z.count() or (ls.loss.ndim == 1 and name == "accuracy") or is_se_of_a_metric(name, ls):
            continue
        if ls.loss.ndim == 2:  # the colour bar says the name; the result's attributes hold the description
            b[name] = lambda name=name: _hessian.mark_unconverged(
                metric_heatmap(ls, replace(opts, metric=name, levels=None, level_scale=None, vmin=None, vmax=None)), ls, name)
        else:
            from .lines import metric_line

            b[name] = lambda z=z, name=name: _hessian.mark_unconverged(metric_line(ls, name, z), ls, name)
    for extra in FIGURES:
        b.update(extra(ls))
    return {name: build for name, build in b.items() if build is not None}  # an extra may drop a figure (None)


def _builders(result, opts: PlotOptions | None = None) -> dict:
    g = result if isinstance(result, zarr.Group) else zarr.open_group(str(result), mode="r")
    job = dict(g.attrs.get("landscape", {})).get("job", "scan")
    if job in JOBS:
        return JOBS[job](g)
    return _scan_builders(load(g), opts)


def figures(result, opts: PlotOptions | None = None) -> dict:
    """Build all figures (name -> matplotlib Figure) without saving them.
    The caller owns them and must plt.close() each."""
    b = _scan_builders(result, opts) if isinstance(result, Landscape) else _builders(result, opts)
    return {name: build() for name, build in b.items()}


def plot_result(result: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "png",
                opts: PlotOptions | None = None) -> list[pathlib.Path]:
    """Write the figures for `result` into `out_dir` as `<name>.<fmt>`; return their paths."""
    if fmt not in FORMATS:
        raise ValueError(f"unsupported figure format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b = _scan_builders(result, opts) if isinstance(result, Landscape) else _builders(result, opts)
    dpi = resolved(opts).dpi
    paths = []
    for name, build in b.items():
        path = out / f"{name}.{fmt}"
        fig = build()
        try:
            fig.savefig(path, dpi=dpi)
        finally:
            plt.close(fig)  # long-running services would otherwise leak figures
        paths.append(path)
    return paths


from . import curves as _curves  # noqa: E402  (registers the curve overlay, figures and the animation's plots)
from . import video as _video  # noqa: E402

OVERLAYS["curve_plane"] = _curves.draw_curve
FIGURES.append(_curves.curve_figures)
JOBS["animation"] = _video.animation_figures

__all__ = ["FIGURES", "FORMATS", "JOBS", "OVERLAYS", "Landscape", "PlotOptions", "figures", "grid_image", "load", "plot_result"]

# Results of other job kinds (each module registers its figures in JOBS).
from . import gradients as _gradients  # noqa: E402
from . import lr_scan as _lr_scan  # noqa: E402

JOBS["gradients"] = _gradients.figures
JOBS["lr_scan"] = _lr_scan.figures

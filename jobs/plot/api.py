"""The figures as functions for a notebook: an opened result (xarray.Dataset, Zarr path or group) and an
optional matplotlib Axes in, the Figure out.

    import xarray as xr
    from jobs.plot.api import plot
    ds = xr.open_zarr("results/digits-random-plane.zarr")
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    plot(ds, "contour", ax=a, style="li")
    plot(ds, "heatmap", ax=b, metric="accuracy", vmin=80)
"""

from __future__ import annotations

import numpy as np

from landscape.errors import SpecError

from .data import Landscape, expand_done, load
from .options import PlotOptions, resolved

KINDS = ("contour", "heatmap", "surface")


def from_dataset(ds) -> Landscape:
    """A Landscape from an xarray.Dataset opened from a result (xr.open_zarr)."""
    meta = dict(ds.attrs.get("landscape", {}))
    if "loss" not in ds:
        raise SpecError("this Dataset has no 'loss' variable: open a landscape result with xarray.open_zarr(path)")
    raw = np.asarray(ds["loss"].values, dtype=np.float64)
    names = [n for n in meta.get("metrics", ["loss", "accuracy"]) if n in ds]
    metrics = {n: np.ma.masked_invalid(np.asarray(ds[n].values, dtype=np.float64)) for n in names}
    metrics.setdefault("loss", np.ma.masked_invalid(raw))
    if "tile_done" in ds and meta.get("tile_shape"):
        evaluated = expand_done(np.asarray(ds["tile_done"].values, dtype=bool), tuple(meta["tile_shape"]), raw.shape)
    else:
        evaluated = np.isfinite(raw) if meta.get("status") != "complete" else np.ones(raw.shape, bool)
    return Landscape(
        loss=metrics["loss"], accuracy=metrics.get("accuracy", np.ma.masked_all(raw.shape)),
        x=np.asarray(ds["x"].values, dtype=np.float64), y=np.asarray(ds["y"].values, dtype=np.float64) if raw.ndim == 2 else None,
        meta=meta, unfinished=~evaluated, diverged=evaluated & ~np.isfinite(raw), metrics=metrics,
    )


def as_landscape(result) -> Landscape:
    if isinstance(result, Landscape):
        return result
    if type(result).__name__ == "Dataset" and hasattr(result, "data_vars"):  # xarray, without importing it
        return from_dataset(result)
    return load(result)


def plot(result, kind: str = "contour", ax=None, options: PlotOptions | None = None, **fields):
    """Draw `kind` (contour | heatmap | surface) of a 2D result; on `ax` when given (not for surface).
    Options as a PlotOptions or as its fields by keyword (metric=, levels=, vmin=, style=, ...)."""
    from . import maps

    if kind not in KINDS:
        raise SpecError(f"kind {kind!r} must be one of {', '.join(KINDS)}")
    if options is not None and fields:
        raise SpecError("give options= or option keywords, not both")
    opts = resolved(options or PlotOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}))
    ls = as_landscape(result)
    if ls.loss.ndim != 2:
        raise SpecError(f"plot() draws planes; this result has {ls.loss.ndim} dimension(s)")
    if kind == "surface":
        if ax is not None:
            raise SpecError("surface draws its own 3D figure: call it without ax")
        return maps.surface(ls, opts)
    if kind == "contour":
        return maps.contour(ls, ax=ax, opts=opts)
    return maps.metric_heatmap(ls, opts, ax=ax)

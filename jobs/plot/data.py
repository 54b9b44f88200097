"""A result read for plotting: every metric as a masked array, and which points are not evaluated yet."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import zarr


@dataclass
class Landscape:
    loss: np.ma.MaskedArray  # (ny, nx) or (nx,), row 0 <-> y[0]
    accuracy: np.ma.MaskedArray
    x: np.ndarray
    y: np.ndarray | None
    meta: dict
    unfinished: np.ndarray  # not evaluated yet (its tile is not marked done)
    diverged: np.ndarray  # evaluated, but the loss is NaN or inf
    metrics: dict[str, np.ma.MaskedArray] = field(default_factory=dict)  # every metric array, loss included

    @property
    def finished(self) -> int:  # a diverged point is finished too
        return int(self.loss.size - np.count_nonzero(self.unfinished))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        y = self.y if self.y is not None else np.zeros(1)
        return float(self.x.min()), float(self.x.max()), float(y.min()), float(y.max())

    @property
    def has_batchnorm(self) -> bool:
        return any(str(row[0]).endswith("running_var") for row in self.meta.get("layout", []) or [])


def _evaluated(g: zarr.Group, raw: np.ndarray, meta: dict) -> np.ndarray:
    """Per point: was it evaluated? From tile_done (a NaN in a done tile diverged), or per preview pass;
    older results: finite = done."""
    if meta.get("preview") and "preview_done" in g:
        from cluster.preview import evaluated_points

        done = np.asarray(g["preview_done"][...])
        return evaluated_points(done, raw.shape, tuple(meta["tile_shape"]), list(meta["preview"]))
    if "tile_done" not in g or not meta.get("tile_shape"):
        return np.isfinite(raw) | np.isinf(raw) if meta.get("status") != "complete" else np.ones(raw.shape, bool)
    return expand_done(np.asarray(g["tile_done"][...], dtype=bool), tuple(meta["tile_shape"]), raw.shape)


def expand_done(done: np.ndarray, tile: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Per grid point of an array of `shape`: is its tile marked done (done has one entry per tile)."""
    for axis, t in enumerate(tile):
        done = np.repeat(done, t, axis=axis)
    return done[tuple(slice(0, n) for n in shape)]


def load(result) -> Landscape:
    """Read a result group (path or open zarr.Group) into masked arrays."""
    g = result if isinstance(result, zarr.Group) else zarr.open_group(str(result), mode="r")
    meta = dict(g.attrs.get("landscape", {}))
    raw = np.asarray(g["loss"][...], dtype=np.float64)
    names = [n for n in meta.get("metrics", ["loss", "accuracy"]) if n in g]
    metrics = {n: np.ma.masked_invalid(np.asarray(g[n][...], dtype=np.float64)) for n in names}
    metrics.setdefault("loss", np.ma.masked_invalid(raw))
    acc = metrics.get("accuracy", np.ma.masked_invalid(np.full_like(raw, np.nan)))
    evaluated = _evaluated(g, raw, meta)
    y = np.asarray(g["y"][...], dtype=np.float64) if raw.ndim == 2 else None
    ls = Landscape(
        loss=metrics["loss"], accuracy=acc,
        x=np.asarray(g["x"][...], dtype=np.float64), y=y, meta=meta,
        unfinished=~evaluated, diverged=evaluated & ~np.isfinite(raw), metrics=metrics,
    )
    return _preview_view(ls, evaluated)


def _preview_view(ls: Landscape, evaluated: np.ndarray) -> Landscape:
    """While a preview scan runs, the whole plane on the finest sub-grid that is complete (every s-th point)."""
    strides = ls.meta.get("preview") or []
    if evaluated.all() or not strides:
        return ls
    complete = [s for s in strides if evaluated[tuple(slice(None, None, s) for _ in range(evaluated.ndim))].all()]
    if not complete or complete[-1] == 1:
        return ls
    s = complete[-1]
    sub = tuple(slice(None, None, s) for _ in range(evaluated.ndim))
    return Landscape(
        loss=ls.loss[sub], accuracy=ls.accuracy[sub], x=ls.x[::s], y=None if ls.y is None else ls.y[::s],
        meta={**ls.meta, "preview_view": s, "points_evaluated": int(evaluated.sum())},
        unfinished=ls.unfinished[sub], diverged=ls.diverged[sub], metrics={k: v[sub] for k, v in ls.metrics.items()},
    )

"""Refinement order: after a preview scan's coarse pass, the tiles where the surface changes most go first.

The coarse pass (every p-th row and column) runs first, as in any preview scan.
Once all of it is stored, each tile is scored by the largest change of a metric
between neighbouring coarse points in and around it (edges of basins, saddles,
cliffs; a non-finite neighbour counts as the largest change); the `fraction` of
tiles with the highest scores get all their finer points first, the rest follow
in preview order. Only the order changes: every point is evaluated once, by the
same evaluator, so the values are those of a plain scan.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .preview import PreviewItem, preview_items
from .tiling import tile_at, tile_grid_shape


def change_map(coarse: np.ndarray, log: bool) -> np.ndarray:
    """Per coarse point: the largest |difference| to a neighbour along any axis (inf where one is not finite)."""
    v = np.asarray(coarse, dtype=np.float64)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(v > 0, np.log10(v), np.nan)
    out = np.zeros(v.shape)
    for axis in range(v.ndim):
        d = np.abs(np.diff(v, axis=axis))
        d[~np.isfinite(d)] = np.inf
        lo = [slice(None)] * v.ndim
        hi = [slice(None)] * v.ndim
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        out[tuple(lo)] = np.maximum(out[tuple(lo)], d)
        out[tuple(hi)] = np.maximum(out[tuple(hi)], d)
    return out


def tile_scores(change: np.ndarray, grid_shape, tile_shape, stride: int) -> np.ndarray:
    """(tile grid) the largest change among the coarse points within one coarse stride of each tile."""
    counts = tile_grid_shape(grid_shape, tile_shape)
    scores = np.zeros(counts)
    for index in np.ndindex(*counts):
        bounds = tile_at(index, grid_shape, tile_shape).bounds
        window = tuple(slice(max(0, (a - stride) // stride), (b - 1 + stride) // stride + 1) for a, b in bounds)
        part = change[window]
        scores[index] = part.max() if part.size else 0.0
    return scores


class RefinedItems:
    """The (level, tile) items of a preview scan: the coarse level, then the sharpest tiles' finer levels, then the rest.

    A live producer for the scheduler: while the coarse level is still running it has nothing more
    (StopIteration) and is asked again later; `stored(item)` is told of every stored item.
    """

    def __init__(self, grid_shape, tile_shape, strides: list[int], done: np.ndarray, coarse_values: Callable[[], np.ndarray],
                 fraction: float, log: bool):
        self.grid_shape, self.tile_shape, self.strides, self.done = tuple(grid_shape), tuple(tile_shape), strides, done
        self.coarse_values, self.fraction, self.log = coarse_values, fraction, log
        self._coarse = (it for it in preview_items(grid_shape, tile_shape, strides, done) if it.level == 0)
        self._coarse_left = int((~done[0]).sum())
        self._rest = None
        self.first_tiles: list[tuple[int, ...]] = []  # the tiles refined first, sharpest first (for tests and logs)

    def __iter__(self):
        return self

    def stored(self, item: PreviewItem) -> None:
        if item.level == 0:
            self._coarse_left -= 1

    def __next__(self) -> PreviewItem:
        item = next(self._coarse, None)
        if item is not None:
            return item
        if self._coarse_left > 0:
            raise StopIteration  # the coarse pass is still running: nothing to order by yet
        if self._rest is None:
            self._rest = self._ordered()
        return next(self._rest)

    def _ordered(self):
        s = self.strides[0]
        change = change_map(self.coarse_values()[tuple(slice(None, None, s) for _ in self.grid_shape)], self.log)
        scores = tile_scores(change, self.grid_shape, self.tile_shape, s)
        ranked = sorted(np.ndindex(*scores.shape), key=lambda i: -scores[i])  # stable: ties keep row-major order
        self.first_tiles = ranked[: math.ceil(self.fraction * len(ranked))]
        first = set(self.first_tiles)
        finer = [it for it in preview_items(self.grid_shape, self.tile_shape, self.strides, self.done) if it.level > 0]
        by_tile: dict[tuple[int, ...], list[PreviewItem]] = {}
        for it in finer:
            by_tile.setdefault(it.tile.index, []).append(it)
        for index in self.first_tiles:
            yield from by_tile.get(index, [])
        yield from (it for it in finer if it.tile.index not in first)

"""Progressive preview: every p-th row and column first, then every p/2-th, ..., then the rest.

A grid point (i, j) belongs to the coarsest level whose stride divides both i
and j (i alone on a line), so the levels partition the grid: no point is
evaluated twice, and after level k every point on the stride-s_k sub-grid is
known. Work items are (level, tile) pairs, queued level by level; each writes
its points into the tile's chunk (the driver is the only writer) and marks
`preview_done[level, tile]`; a tile's `tile_done` is set when its last level is
stored. Values do not depend on the order: a preview scan ends bit-identical to
a plain one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import numpy as np

from .progress import every_nth
from .tiling import Tile, tile_at, tile_grid_shape


def strides_of(preview: int) -> list[int]:
    """[p, p/2, ..., 1] for a power of two p >= 2."""
    out = [preview]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return out


def level_of(indices: tuple[np.ndarray, ...], strides: list[int]) -> np.ndarray:
    """The level of each grid point, for index arrays that broadcast against each other."""
    level = np.full(np.broadcast_shapes(*(i.shape for i in indices)), len(strides) - 1, dtype=np.int8)  # <= 9 levels (preview <= 256)
    for k in reversed(range(len(strides) - 1)):  # coarsest last, so it wins
        on = np.ones(level.shape, bool)
        for i in indices:
            on = on & (i % strides[k] == 0)
        level[on] = k
    return level


def tile_levels(tile: Tile, strides: list[int]) -> np.ndarray:
    """(tile shape) level of each of the tile's points (read-only: shared by tiles alike)."""
    coarsest = strides[0]  # every stride divides it, so a point's level depends on its index modulo it only
    return _levels(tuple((a % coarsest, b - a) for a, b in tile.bounds), tuple(strides))


@lru_cache(maxsize=256)
def _levels(starts_and_lengths: tuple[tuple[int, int], ...], strides: tuple[int, ...]) -> np.ndarray:
    # Interior tiles share one entry: a scan's tiles are computed once each per shape and offset, not per item.
    axes = [np.arange(a, a + n) for a, n in starts_and_lengths]
    levels = level_of(tuple(np.meshgrid(*axes, indexing="ij", sparse=True)), list(strides))
    levels.flags.writeable = False
    return levels


@dataclass(frozen=True)
class PreviewItem:
    """One tile's points of one level: a work item of the scan's queue."""

    level: int
    stride: int
    tile: Tile

    @property
    def index(self) -> tuple[int, ...]:
        return (self.level, *self.tile.index)

    @property
    def name(self) -> str:
        return f"{self.tile.name}-every{self.stride}"

    @property
    def extent(self) -> str:
        return f"{self.tile.extent}, points of the {every_nth(self.stride)} pass"

    def mask(self, strides: list[int]) -> np.ndarray:
        return tile_levels(self.tile, strides) == self.level


def preview_items(grid_shape, tile_shape, strides: list[int], done: np.ndarray | None):
    """The pending (level, tile) items in level order, skipping pairs with no points; made one at a time."""
    counts = tile_grid_shape(grid_shape, tile_shape)
    for level, stride in enumerate(strides):
        for index in product(*(range(c) for c in counts)):
            if done is not None and done[(level, *index)]:
                continue
            item = PreviewItem(level, stride, tile_at(index, grid_shape, tile_shape))
            if item.mask(strides).any():
                yield item


def empty_pairs(grid_shape, tile_shape, strides: list[int]) -> np.ndarray:
    """(levels, *tile grid) True where a tile has no point of that level (done from the start)."""
    counts = tile_grid_shape(grid_shape, tile_shape)
    out = np.zeros((len(strides), *counts), bool)
    for index in product(*(range(c) for c in counts)):
        present = np.unique(tile_levels(tile_at(index, grid_shape, tile_shape), strides))
        out[(slice(None), *index)] = True
        out[(present, *index)] = False
    return out


def item_coords(item: PreviewItem, strides: list[int], x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """(M, D) coordinates of the item's points, row-major within the tile (x first, then y)."""
    mask = item.mask(strides)
    if y is None:
        (xs,) = item.tile.slices
        return x[xs][mask][:, None]
    ys, xs = item.tile.slices
    yy, xx = np.meshgrid(y[ys], x[xs], indexing="ij")
    return np.stack([xx[mask], yy[mask]], axis=1)


def evaluated_points(preview_done: np.ndarray, grid_shape, tile_shape, strides: list[int]) -> np.ndarray:
    """(grid shape) bool: points whose (level, tile) pair is stored."""
    indices = tuple(np.arange(n) for n in grid_shape)
    grids = np.meshgrid(*indices, indexing="ij", sparse=True)  # broadcast below: no dense index arrays
    level = level_of(tuple(grids), strides)
    tiles = tuple(g // t for g, t in zip(grids, tile_shape))
    return preview_done.astype(bool)[(level, *tiles)]

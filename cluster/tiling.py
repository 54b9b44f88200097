"""Split a grid into tiles that are whole Zarr chunks, and give their coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One chunk of the result: index in the tile grid and its slices of the arrays."""

    index: tuple[int, ...]  # (row, col) for planes, (col,) for lines
    bounds: tuple[tuple[int, int], ...]  # per axis (start, stop), array order (y, x) / (x,)

    @property
    def name(self) -> str:
        return "tile-" + "-".join(str(i) for i in self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in self.bounds)

    @property
    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in self.bounds)

    @property
    def extent(self) -> str:
        """Which grid indices it covers, e.g. "y 0:3, x 8:12" (error messages name it)."""
        axes = ("y", "x") if len(self.bounds) == 2 else ("x",) if len(self.bounds) == 1 else tuple(f"axis{i}" for i in range(len(self.bounds)))
        return ", ".join(f"{ax} {a}:{b}" for ax, (a, b) in zip(axes, self.bounds))


def tile_grid_shape(grid_shape: tuple[int, ...], tile_shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-n // t) for n, t in zip(grid_shape, tile_shape))


def tile_at(index: tuple[int, ...], grid_shape: tuple[int, ...], tile_shape: tuple[int, ...]) -> Tile:
    bounds = tuple((i * t, min((i + 1) * t, n)) for i, t, n in zip(index, tile_shape, grid_shape))
    return Tile(tuple(int(i) for i in index), bounds)


def iter_tiles(grid_shape: tuple[int, ...], tile_shape: tuple[int, ...], done: np.ndarray | None = None):
    """The tiles not marked in `done` (all without it), row-major, made one at a time."""
    if done is None:
        counts = tile_grid_shape(grid_shape, tile_shape)
        indices = product(*(range(c) for c in counts))
    else:
        indices = zip(*np.nonzero(~done))
    for index in indices:
        yield tile_at(index, grid_shape, tile_shape)


def make_tiles(grid_shape: tuple[int, ...], tile_shape: tuple[int, ...]) -> list[Tile]:
    """All tiles in row-major order; edge tiles are smaller."""
    return list(iter_tiles(grid_shape, tile_shape))


def tile_coords(tile: Tile, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """(K, D) coordinates of the tile's points, row-major: y outer, x inner.

    Column 0 is x (first direction), column 1 is y (second direction).
    """
    if y is None:
        (xs,) = tile.slices
        return x[xs][:, None]
    ys, xs = tile.slices
    yy, xx = np.meshgrid(y[ys], x[xs], indexing="ij")  # (h, w) each
    return np.stack([xx.ravel(), yy.ravel()], axis=1)

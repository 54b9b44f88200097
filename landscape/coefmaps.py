"""Maps from grid coordinates to slice coefficients.

A slice is an origin and directions d_1..d_D; a grid point with coordinates
(x[, y]) is origin + sum_i c_i d_i. For planes and lines the coefficients are
the coordinates (Identity). A curve over the same basis has coefficients that
are functions of its parameter t (a quadratic Bezier curve w1, theta, w2 is
w1 + 2t(1-t)(theta - w1) + t^2 (w2 - w1)), so every geometry shares the one
evaluator, which only ever sees coefficients. Maps run on the host in float64
and are named in the result (to_json), so `landscape point` rebuilds any point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class CoefMap:
    kind: ClassVar[str] = ""
    grid_dims: ClassVar[int] = 0  # coordinates per grid point

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        """coords (M, grid_dims) -> coefficients (M, D), float64."""
        raise NotImplementedError

    def to_json(self) -> dict:
        return {"kind": self.kind, **self.__dict__}


@dataclass(frozen=True)
class Identity(CoefMap):
    """Coefficients are the coordinates: lines (D = 1) and planes (D = 2)."""

    kind: ClassVar[str] = "identity"
    dims: int = 2

    @property
    def grid_dims(self) -> int:  # type: ignore[override]
        return self.dims

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        return np.asarray(coords, dtype=np.float64).reshape(-1, self.dims)


@dataclass(frozen=True)
class Polyline(CoefMap):
    """The piecewise-linear path through the basis points in order (origin 0, directions = the points).

    Point k sits at t = k; between k and k+1 the coefficients are 1 - s on point k and
    s on point k+1 (s = t - k); beyond the ends the first and last segments extend.
    At t = k the coefficients are one 1 and zeros, so the point is point k bit for bit.
    """

    kind: ClassVar[str] = "polyline"
    grid_dims: ClassVar[int] = 1
    points: int = 2

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        t = np.asarray(coords, dtype=np.float64).reshape(-1)  # (M,)
        k = np.clip(np.floor(t), 0, self.points - 2).astype(np.int64)  # segment of each t
        s = t - k
        out = np.zeros((len(t), self.points))  # (M, D)
        rows = np.arange(len(t))
        out[rows, k] = 1.0 - s
        out[rows, k + 1] = s
        return out


@dataclass(frozen=True)
class BezierMap(CoefMap):
    """Quadratic Bezier curve over the basis (w1, theta, w2), origin 0: the Bernstein coefficients.

    phi(t) = (1-t)^2 w1 + 2t(1-t) theta + t^2 w2. The basis is the three points
    themselves (not w1 plus differences), so t = 0 and t = 1 reproduce w1 and w2
    bit for bit: their coefficients are (1, 0, 0) and (0, 0, 1).
    """

    kind: ClassVar[str] = "bezier"
    grid_dims: ClassVar[int] = 1

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        t = np.asarray(coords, dtype=np.float64).reshape(-1)
        return np.stack([(1 - t) ** 2, 2 * t * (1 - t), t**2], axis=1)  # (M, 3)


@dataclass(frozen=True)
class PolychainMap(CoefMap):
    """Polygonal chain w1 -> theta -> w2 over the basis (w1, theta, w2), origin 0, t in [0, 1]:
    the polyline through its three points with theta at t = 0.5, i.e. (1-2t, 2t, 0) then (0, 2-2t, 2t-1)."""

    kind: ClassVar[str] = "polychain"
    grid_dims: ClassVar[int] = 1

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        return Polyline(points=3)(2 * np.asarray(coords, dtype=np.float64).reshape(-1))  # (M, 3)


@dataclass(frozen=True)
class ChordMap(CoefMap):
    """The straight line between a curve's endpoints over the same basis: (1-t, 0, t)."""

    kind: ClassVar[str] = "chord"
    grid_dims: ClassVar[int] = 1

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        t = np.asarray(coords, dtype=np.float64).reshape(-1)
        return np.stack([1 - t, np.zeros_like(t), t], axis=1)  # (M, 3)


# Every map a result may name; a new geometry's map is defined in this module and listed here.
MAPS: dict[str, type[CoefMap]] = {
    "identity": Identity, "polyline": Polyline, "bezier": BezierMap, "polychain": PolychainMap, "chord": ChordMap,
}


def from_json(d: dict | None, directions: int) -> CoefMap:
    """The map a result recorded; results without one are lines or planes."""
    if not d:
        return Identity(directions)
    d = dict(d)
    kind = d.pop("kind")
    if kind not in MAPS:
        raise ValueError(f"unknown coefficient map {kind!r}")
    return MAPS[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

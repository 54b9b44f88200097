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

import math
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


MAX_BENDS = 64  # far beyond any curve of the paper (one to three bends); each bend is a whole model in memory


@dataclass(frozen=True)
class CurveMap(CoefMap):
    """A curve over the basis (w1, theta_1 .. theta_bends, w2), origin 0: `bends` + 2 coefficients per t.

    The basis is the points themselves (not w1 plus differences), so t = 0 and t = 1 reproduce w1 and w2 bit
    for bit: their coefficients are (1, 0, .., 0) and (0, .., 0, 1). One bend is recorded as before (no field)."""

    grid_dims: ClassVar[int] = 1
    bends: int = 1

    def to_json(self) -> dict:
        return {"kind": self.kind} if self.bends == 1 else {"kind": self.kind, "bends": self.bends}


@dataclass(frozen=True)
class BezierMap(CurveMap):
    """Bezier curve of degree n = bends + 1: the Bernstein coefficients C(n, i) t^i (1-t)^(n-i), i = 0..n.

    One bend: phi(t) = (1-t)^2 w1 + 2t(1-t) theta + t^2 w2 (the same floats as the product written out)."""

    kind: ClassVar[str] = "bezier"

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        t = np.asarray(coords, dtype=np.float64).reshape(-1)
        n = self.bends + 1
        return np.stack([math.comb(n, i) * t**i * (1 - t) ** (n - i) for i in range(n + 1)], axis=1)  # (M, n + 1)


@dataclass(frozen=True)
class PolychainMap(CurveMap):
    """Polygonal chain w1 -> theta_1 -> .. -> theta_bends -> w2, t in [0, 1]: the polyline through its points with
    theta_i at t = i / (bends + 1) (one bend: at 0.5, i.e. (1-2t, 2t, 0) then (0, 2-2t, 2t-1))."""

    kind: ClassVar[str] = "polychain"

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        n = self.bends + 1
        return Polyline(points=n + 1)(n * np.asarray(coords, dtype=np.float64).reshape(-1))  # (M, n + 1)


@dataclass(frozen=True)
class ChordMap(CurveMap):
    """The straight line between a curve's endpoints over the same basis: (1-t, 0, .., 0, t)."""

    kind: ClassVar[str] = "chord"

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        t = np.asarray(coords, dtype=np.float64).reshape(-1)
        out = np.zeros((len(t), self.bends + 2))
        out[:, 0], out[:, -1] = 1 - t, t
        return out  # (M, bends + 2)


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

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
    """Polygonal chain w1 -> theta -> w2 over the basis (w1, theta, w2), origin 0.

    Linear on each half: (1-2t, 2t, 0) for t < 0.5, (0, 2-2t, 2t-1) after; the
    vertex theta sits at t = 0.5 and every vertex is reproduced exactly.
    """

    kind: ClassVar[str] = "polychain"
    grid_dims: ClassVar[int] = 1

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        t = np.asarray(coords, dtype=np.float64).reshape(-1)
        first = t < 0.5
        return np.stack(
            [np.where(first, 1 - 2 * t, 0.0), np.where(first, 2 * t, 2 - 2 * t), np.where(first, 0.0, 2 * t - 1)], axis=1
        )  # (M, 3)


@dataclass(frozen=True)
class ChordMap(CoefMap):
    """The straight line between a curve's endpoints over the same basis: (1-t, 0, t)."""

    kind: ClassVar[str] = "chord"
    grid_dims: ClassVar[int] = 1

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        t = np.asarray(coords, dtype=np.float64).reshape(-1)
        return np.stack([1 - t, np.zeros_like(t), t], axis=1)  # (M, 3)


# Every map a result may name; a new geometry's map is defined in this module and listed here.
MAPS: dict[str, type[CoefMap]] = {"identity": Identity}
MAPS.update({"bezier": BezierMap, "polychain": PolychainMap, "chord": ChordMap})


def from_json(d: dict | None, directions: int) -> CoefMap:
    """The map a result recorded; results without one are lines or planes."""
    if not d:
        return Identity(directions)
    d = dict(d)
    kind = d.pop("kind")
    if kind not in MAPS:
        raise ValueError(f"unknown coefficient map {kind!r}")
    return MAPS[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

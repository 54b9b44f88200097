"""Low-dimensional slices of weight space: origin + sum_i c_i * direction_i.

All vectors use the flat layout of `params.StateLayout`. The coefficients c of a
grid point come from its coordinates through the slice's `coef_map` (the
identity for lines and planes; see `coefmaps.py`). A slice also records where
named checkpoints sit in its own coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .coefmaps import CoefMap, Identity
from .directions import Ignore, Normalization, random_directions
from .errors import SpecError
from .params import StateLayout


@dataclass
class Slice:
    kind: str
    layout: StateLayout
    origin: torch.Tensor  # (P,) float32
    directions: torch.Tensor  # (D, P) float32
    checkpoints: list[dict] = field(default_factory=list)  # {"label", "x", "y"}
    coef_map: CoefMap | None = None  # grid coordinates -> coefficients; None: the identity
    info: dict = field(default_factory=dict)  # what the geometry wants recorded in the result
    # Other paths over the same basis, evaluated at the same grid coordinates (arrays
    # "<name>_<metric>"): e.g. a curve's straight line between its endpoints.
    companions: dict[str, CoefMap] = field(default_factory=dict)

    def __post_init__(self):
        if self.coef_map is None:
            self.coef_map = Identity(self.directions.shape[0])

    @property
    def dims(self) -> int:
        """Coordinates per grid point: 1 for lines and curves, 2 for planes."""
        return self.coef_map.grid_dims

    def coefficients(self, coords) -> np.ndarray:
        """(M, D) float64 coefficients of the grid points `coords` (M, dims)."""
        return self.coef_map(np.asarray(coords, dtype=np.float64).reshape(-1, self.dims))

    def point(self, coords) -> torch.Tensor:
        """(P,) flat state at grid coordinates `coords` (length dims)."""
        coords = [float(c) for c in coords]
        if len(coords) != self.dims:
            raise ValueError(f"this slice has {self.dims} coordinate(s), got {len(coords)}")
        return combine(self.origin, self.directions, self.coefficients([coords])[0])


def points_on_slice(
    origin: torch.Tensor, directions: torch.Tensor, coefs: torch.Tensor, out: torch.Tensor | None = None,
    support: list[int] | None = None,
) -> torch.Tensor:
    """(K, P) = origin + sum_i coefs[:, i] * directions[i], for coordinates coefs (K, D).

    The one formula used everywhere (evaluator, `landscape point`, tests), so a
    grid point's weights are bit-identical wherever they are rebuilt; pure
    tensor ops, so it runs inside a CUDA graph with the coordinates on the device.
    `out` (K, P), if given, receives the result in place (same kernels, same bits).
    `support`: the directions whose coefficient is not zero for every point (`support_of`), the only ones
    added: a path through n checkpoints costs two axpys per point, not n.
    """
    terms = range(directions.shape[0]) if support is None else support
    acc = origin.expand(len(coefs), -1)
    if out is not None and len(terms) == 0:
        return out.copy_(acc)
    for i in terms:
        acc = torch.addcmul(acc, coefs[:, i : i + 1], directions[i], out=out)
    return acc


def support_of(coefs: np.ndarray) -> list[int]:
    """The directions with a nonzero coefficient at any of the points `coefs` (K, D) (host values)."""
    return np.flatnonzero((np.asarray(coefs) != 0).any(axis=0)).tolist()


def combine(origin: torch.Tensor, directions: torch.Tensor, coefs) -> torch.Tensor:
    """(P,) the point with coefficients `coefs` (length D), in float32 as the evaluator forms it."""
    coefs = torch.tensor([[float(c) for c in coefs]], dtype=torch.float32, device=origin.device)
    return points_on_slice(origin, directions, coefs, support=support_of(coefs.cpu().numpy()))[0]


def _mark(label: str, x: float, y: float | None = None) -> dict:
    return {"label": label, "x": float(x), "y": None if y is None else float(y)}


def random_slice(
    layout: StateLayout,
    center: torch.Tensor,
    dims: int,
    seed: int,
    normalization: Normalization = "filter",
    ignore: Ignore = "biasbn",
) -> Slice:
    """Li et al.'s random line (dims=1) or plane (dims=2) around `center`."""
    dirs = random_directions(layout, center, dims, seed, normalization, ignore)
    if not torch.any(dirs != 0):
        raise SpecError(
            "the random direction is all zeros: the model has only 1-D parameters; "
            "set slice.ignore: none"
        )
    kind = "random_line" if dims == 1 else "random_plane"
    mark = _mark("center", 0.0, None if dims == 1 else 0.0)
    return Slice(kind, layout, center.clone(), dirs, [mark])


def line_between(layout: StateLayout, a: torch.Tensor, b: torch.Tensor, labels=("a", "b")) -> Slice:
    """The straight line a + alpha * (b - a); a at alpha=0, b at alpha=1.

    Buffers are interpolated with the same alpha, so both ends are exact.
    """
    direction = (b.double() - a.double()).float()
    if not torch.any(direction[layout.param_mask()] != 0):
        raise SpecError("the two checkpoints of slice.checkpoints are identical; pick two different models")
    return Slice("line_between", layout, a.clone(), direction[None], [_mark(labels[0], 0), _mark(labels[1], 1)])


def plane_through(
    layout: StateLayout, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor, labels=("w1", "w2", "w3")
) -> Slice:
    """Garipov et al.'s plane through three models, Gram-Schmidt basis.

    Origin w1; e1 = (w2 - w1)/|w2 - w1|; e2 = (w3 - w1) minus its e1 part,
    normalized. Coordinates are Euclidean distances over the parameters, so w2
    sits at (|w2 - w1|, 0). Buffers ride on the same linear coefficients, so all
    three checkpoints are reproduced exactly at their coordinates.
    """
    mask = layout.param_mask()
    p1, p2, p3 = (w.double() for w in (w1, w2, w3))
    u, v = p2 - p1, p3 - p1
    n1 = u[mask].norm()
    if n1 == 0:
        raise SpecError("slice.checkpoints: the first two checkpoints are identical; pick different models")
    e1 = u / n1  # parameter part has unit norm; buffer part follows the same coefficient
    c = torch.dot(v[mask], e1[mask])
    r = v - c * e1
    n2 = r[mask].norm()
    if n2 <= 1e-6 * max(n1.item(), v[mask].norm().item()):  # fp32 checkpoints: relative round-off
        raise SpecError("slice.checkpoints: the three checkpoints lie on one line; they span no plane")
    e2 = r / n2
    marks = [_mark(labels[0], 0, 0), _mark(labels[1], n1, 0), _mark(labels[2], c, n2)]
    return Slice("plane_through", layout, w1.clone(), torch.stack([e1, e2]).float(), marks)

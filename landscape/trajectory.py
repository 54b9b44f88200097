"""Training trajectories: the PCA plane of an optimizer's path (Li et al. 2018, section 7), and the path itself.

The plane. Rows d_i = w_i - w_origin, one per checkpoint, over the entries the
plane may move (parameters; under ignore="biasbn" not the 1-D ones, as in Li et
al.; never buffers). The rows are centered before the components are taken (as
sklearn's PCA in Li et al.'s code does), so the components describe how the path
varies and do not depend on the origin; the plane then passes through the
origin, which sits at (0, 0), and checkpoint i sits at (d_i . e1, d_i . e2).

Scale: the n checkpoints are read one at a time into ONE preallocated (n, P)
float32 matrix; the components come from the n x n Gram matrix (float64,
accumulated over column blocks), never from a P x P matrix. The eigenvectors
of the centered Gram matrix give the coordinates and distances exactly (float64
algebra on the Gram matrix) and the components in one float32 pass over the
matrix (they are stored in float32).

How far the picture lies: each checkpoint's distance off the plane (over all
parameters, ignored ones included, so a checkpoint whose biases moved is off the
plane by that much), absolute and relative to its distance from the origin.

The path: the piecewise-linear path through the checkpoints in order, checkpoint
k at t = k (`path_slice`, coefficient map `coefmaps.Polyline`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch

from .coefmaps import Polyline
from .errors import CheckpointError, SpecError
from .params import StateLayout
from .slices import Slice

Ignore = Literal["biasbn", "none"]

SIGN_RULE = (
    "each component points along the path: the last checkpoint's coordinate is larger than the first's "
    "(the path runs left to right and upward); where they differ by less than 1e-3 of the path's spread along "
    "the component (a path that comes back), the component's largest-magnitude entry is positive"
)
CENTERING = "rows w_i - w_origin centered before the PCA (as sklearn's PCA in Li et al.'s code); the plane passes through the origin"
_TIE = 1e-3  # the sign rule's threshold (fraction of the spread)
_BLOCK_BYTES = 32 << 20  # float64 column block of the Gram pass


def plane_entries(layout: StateLayout, ignore: Ignore = "biasbn") -> torch.Tensor:
    """(P,) bool: the entries the plane may move: parameters, minus 1-D ones under biasbn; never buffers."""
    if ignore not in ("biasbn", "none"):
        raise ValueError(f"ignore must be 'biasbn' or 'none', got {ignore!r}")
    return torch.cat([
        torch.full((e.numel,), e.is_param and not (ignore == "biasbn" and len(e.shape) <= 1)) for e in layout.entries
    ])


@dataclass
class TrajectoryPlane:
    components: torch.Tensor  # (2, P) float64, orthonormal to float32 round-off, zero outside the plane's entries
    coords: np.ndarray  # (n, 2) float64: checkpoint i at (x_i, y_i)
    explained_variance_ratio: np.ndarray  # (2,) of the centered rows' total variance
    distance: np.ndarray  # (n,) |w_i - w_origin| over all parameters
    off_plane: np.ndarray  # (n,) distance of w_i from the plane, over all parameters
    ignored: np.ndarray  # (n,) the part of `distance` in parameters the plane ignores (biasbn)
    sign_by: list[str]  # per component: "path" or "largest entry" (which part of SIGN_RULE decided)

    @property
    def off_plane_relative(self) -> np.ndarray:
        """(n,) off_plane / distance; NaN for a checkpoint at the origin (0/0)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.distance > 0, self.off_plane / self.distance, np.nan)

    def axis_labels(self) -> tuple[str, str]:
        return tuple(f"PC{k + 1}: {100 * r:.1f}%" for k, r in enumerate(self.explained_variance_ratio))


def _blocks(p: int, n: int):
    step = max(1024, _BLOCK_BYTES // (8 * max(n, 1)))
    return [(s, min(s + step, p)) for s in range(0, p, step)]


Reader = Callable[[int, torch.Tensor], object]  # read(i, out): write checkpoint i's flat float32 state into out (P,)


def read_rows(read: Reader, n: int, origin: torch.Tensor, moves: torch.Tensor,
              params: torch.Tensor, labels: list[str]) -> tuple[torch.Tensor, np.ndarray]:
    """(A (n, P) float32 rows w_i - w_origin zeroed outside `moves`, (n,) squared norms of the ignored parameter part).

    Checkpoints are read one at a time straight into their row of one preallocated matrix.
    """
    p = origin.numel()
    rows = torch.empty(n, p, dtype=torch.float32)  # (n, P): the only copy of the trajectory
    ignored_idx = torch.nonzero(params & ~moves).flatten()  # biases, BatchNorm affine (biasbn): small
    still_idx = torch.nonzero(~moves).flatten()  # ignored parameters and buffers
    ignored_sq = np.zeros(n)
    for i in range(n):
        read(i, rows[i])  # (P,) float32, in place
        rows[i].sub_(origin)
        ignored_sq[i] = float(rows[i, ignored_idx].double().square().sum())
        rows[i].index_fill_(0, still_idx, 0.0)
    return rows, ignored_sq


def gram(rows: torch.Tensor) -> np.ndarray:
    """(n, n) float64 A A^T, accumulated over column blocks (never A in float64 at once)."""
    n, p = rows.shape
    g = torch.zeros(n, n, dtype=torch.float64)
    for s, e in _blocks(p, n):
        b = rows[:, s:e].double()  # (n, b)
        g.addmm_(b, b.T)
    return g.numpy()


def orient(components: torch.Tensor, coords: np.ndarray, tie: float = _TIE) -> tuple[np.ndarray, list[str]]:
    """Signs (2,) that apply SIGN_RULE to `components` (2, P) with checkpoint coordinates `coords` (n, 2); and which part decided."""
    signs, by = np.ones(2), []
    for k in range(2):
        delta = coords[-1, k] - coords[0, k]
        if abs(delta) > tie * float(np.ptp(coords[:, k])):
            signs[k] = 1.0 if delta > 0 else -1.0
            by.append("path")
        else:
            j = int(torch.argmax(components[k].abs()))
            signs[k] = 1.0 if float(components[k, j]) > 0 else -1.0
            by.append("largest entry")
    return signs, by


def pca_plane(rows: torch.Tensor, ignored_sq: np.ndarray | None = None, labels: list[str] | None = None) -> TrajectoryPlane:
    """The top two principal components of the centered rows (n, P), checkpoint coordinates and off-plane distances."""
    n, p = rows.shape
    if n < 3:
        raise SpecError(f"slice.checkpoints: a plane needs at least 3 checkpoints, got {n}")
    ignored_sq = np.zeros(n) if ignored_sq is None else np.asarray(ignored_sq, dtype=np.float64)
    g = gram(rows)  # (n, n)
    bad = [i for i in range(n) if not (math.isfinite(g[i, i]) and math.isfinite(ignored_sq[i]))]  # |row_i|^2: NaN/inf in row i
    if bad:
        name = labels[bad[0]] if labels else f"#{bad[0]}"
        raise CheckpointError(f"checkpoint {name!r} (or the origin) holds NaN or inf; a trajectory's PCA needs finite weights")
    gc = g - g.mean(0, keepdims=True) - g.mean(1, keepdims=True) + g.mean()  # H G H: the centered rows' Gram
    total = float(np.trace(gc))
    if total <= 1e-12 * max(float(np.trace(g)), 0.0) or total <= 0:
        raise SpecError(
            f"slice.checkpoints: all {n} checkpoints are equal over the parameters the plane moves: no variance, "
            "so no principal components; give checkpoints of a training run that moved"
        )
    lam, vec = np.linalg.eigh(gc)  # ascending
    lam, vec = lam[::-1][:2].copy(), vec[:, ::-1][:, :2].copy()  # (2,), (n, 2)
    if lam[1] <= 1e-10 * lam[0]:
        raise SpecError(
            f"slice.checkpoints: the {n} checkpoints lie on one line (PC2 explains {max(lam[1], 0) / total:.1e} of the "
            "variance): no plane to show; scan the path itself with kind: trajectory (or line_between)"
        )
    vec -= vec.mean(0, keepdims=True)  # exactly orthogonal to the ones vector: A^T u = A_centered^T u
    w = vec / np.sqrt(lam)  # (n, 2): e_k = A^T u_k / s_k
    # The components in one float32 pass over A (they are stored in float32; no float64 copy of A);
    # the coordinates exactly in float64 from the Gram matrix: A e_k = A A^T u_k / s_k = G u_k / s_k.
    comps = (torch.from_numpy(np.ascontiguousarray(w.T)).float() @ rows).double()  # (2, P)
    comps /= comps.norm(dim=1, keepdim=True)  # unit length to float32 round-off (it is 1 in exact arithmetic)
    coords = g @ w  # (n, 2)
    signs, by = orient(comps, coords)
    comps *= torch.from_numpy(signs)[:, None]
    coords = coords * signs + 0.0  # + 0.0: no -0.0 in the record
    sq = np.diag(g)  # |d_i|^2 over the plane's entries
    in_plane_off = np.sqrt(np.maximum(sq - (coords**2).sum(1), 0.0))
    return TrajectoryPlane(
        components=comps,
        coords=coords,
        explained_variance_ratio=lam / total,
        distance=np.sqrt(sq + ignored_sq),
        off_plane=np.sqrt(in_plane_off**2 + ignored_sq),
        ignored=np.sqrt(ignored_sq),
        sign_by=by,
    )


def trajectory_plane(read: Reader, n: int, origin: torch.Tensor, layout: StateLayout,
                     ignore: Ignore = "biasbn", labels: list[str] | None = None,
                     restrict: torch.Tensor | None = None) -> TrajectoryPlane:
    """PCA plane of n checkpoints, `read(i, out)` writing checkpoint i's flat state into out, one at a time
    (`restrict` (P,) bool: the PCA of those entries only, e.g. `params:`; the rest counts as ignored)."""
    labels = labels or [str(i) for i in range(n)]
    if n < 3:
        raise SpecError(f"slice.checkpoints: a plane needs at least 3 checkpoints, got {n}")
    moves = plane_entries(layout, ignore) if restrict is None else plane_entries(layout, ignore) & restrict
    rows, ignored_sq = read_rows(read, n, origin, moves, layout.param_mask(), labels)
    return pca_plane(rows, ignored_sq, labels)


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None  # JSON has no NaN


def pca_slice(layout: StateLayout, origin: torch.Tensor, plane: TrajectoryPlane, labels: list[str],
              origin_label: str, origin_index: int | None, ignore: Ignore) -> Slice:
    """The plane as a Slice: origin + x e1 + y e2; marks: the first and last checkpoint, and the origin
    (at (0, 0)) unless it is one of them."""
    xy = plane.coords
    rel = plane.off_plane_relative
    path = [
        {"label": labels[i], "x": float(xy[i, 0]), "y": float(xy[i, 1]), "distance": float(plane.distance[i]),
         "off_plane": float(plane.off_plane[i]), "off_plane_relative": _num(rel[i]), "ignored": float(plane.ignored[i])}
        for i in range(len(labels))
    ]
    marks = [{"label": labels[i], "x": float(xy[i, 0]), "y": float(xy[i, 1])} for i in (0, len(labels) - 1)]
    if origin_index not in (0, len(labels) - 1):  # an origin apart from the path, or in its middle
        marks.append({"label": origin_label, "x": 0.0, "y": 0.0})
    x_label, y_label = plane.axis_labels()
    info = {
        "explained_variance_ratio": [float(r) for r in plane.explained_variance_ratio],
        "x_label": x_label,
        "y_label": y_label,
        "centering": CENTERING,
        "ignore": ignore,
        "sign_rule": SIGN_RULE,
        "sign_by": plane.sign_by,
        "origin": {"label": origin_label, "index": origin_index},
        "distances": "Euclidean over all parameters (never buffers); off_plane_relative = off_plane / distance from the origin",
        "trajectory": path,
    }
    return Slice("trajectory_pca", layout, origin.clone(), plane.components.float(), marks, info=info)


def path_slice(layout: StateLayout, read: Reader, n: int, labels: list[str]) -> Slice:
    """The piecewise-linear path through n checkpoints in order, checkpoint k at t = k.

    The basis is the checkpoints themselves (origin 0): at t = k the coefficients
    are one 1 and zeros, so each checkpoint is reproduced bit for bit; buffers
    ride along. Holds all n checkpoints (n x P floats): thin long runs first.
    """
    if n < 2:
        raise SpecError(f"slice.checkpoints: a path needs at least 2 checkpoints, got {n}")
    p = layout.size
    points = torch.empty(n, p, dtype=torch.float32)  # (n, P) the basis, filled one checkpoint at a time
    for i in range(n):
        read(i, points[i])
        if not bool(torch.isfinite(points[i]).all()):
            raise CheckpointError(f"checkpoint {labels[i]!r} holds NaN or inf; every point of a path through it would be NaN")
    mask = layout.param_mask()
    seg = [float((points[i + 1, mask].double() - points[i, mask].double()).norm()) for i in range(n - 1)]
    marks = [{"label": labels[i] if i in (0, n - 1) else "", "x": float(i), "y": None} for i in range(n)]
    info = {
        "x_label": "position along the path (checkpoint k at k; piecewise linear between them)",
        "trajectory": [{"label": labels[i], "t": float(i)} for i in range(n)],
        "segment_lengths": seg,
        "distances": "Euclidean over all parameters (never buffers)",
    }
    return Slice("trajectory", layout, torch.zeros(p), points, marks, Polyline(n), info)

"""Garipov et al.'s plane file (dnn-mode-connectivity's `plane.npz`): what their plane_plot.py reads.

Keys: grid (nx, ny, 2) with grid[i, j] = (x[i], y[j]); alphas = x, betas = y (already distances in the
plane, so their dx, dy are 1); per split `tr_` (the scan's own data) or `te_` (a `test_` split):
_loss and _nll (the mean loss; no weight decay term), _acc and _err in %. Values are indexed [i, j]
= (x[i], y[j]), the transpose of the result's (y, x) arrays. A curve_plane result adds
bend_coordinates (w1, theta, w2) and curve_coordinates (the curve sampled, as their plane.py does).
"""

from __future__ import annotations

import numpy as np

from landscape.errors import ResultError

from .source import Plane

PREFIX = {"": "tr", "train_": "tr", "test_": "te"}


def garipov_arrays(plane: Plane) -> dict[str, np.ndarray]:
    if plane.y is None:
        raise ResultError("--format npz writes a plane (Garipov et al.'s layout); this result is a line: use --format ll-h5")
    X, Y = np.meshgrid(plane.x, plane.y, indexing="ij")
    out = {"grid": np.stack([X, Y], axis=-1), "alphas": plane.x, "betas": plane.y}
    for split, p in PREFIX.items():
        loss, acc = plane.metrics.get(f"{split}loss"), plane.metrics.get(f"{split}accuracy")
        if loss is not None and f"{p}_loss" not in out:
            out[f"{p}_loss"] = out[f"{p}_nll"] = loss.T
        if acc is not None and f"{p}_acc" not in out:
            hundred = acc.dtype.type(100)
            out[f"{p}_acc"] = acc.T * hundred
            out[f"{p}_err"] = hundred - acc.T * hundred
    curve = (plane.meta.get("slice_info") or {}).get("curve")
    if curve:
        from landscape.curves import curve_xy

        pts = np.asarray(curve["points"], dtype=np.float64)
        out["bend_coordinates"] = pts
        out["curve_coordinates"] = curve_xy(curve["kind"], pts)
    return out


def write_garipov_npz(plane: Plane, path) -> None:
    with open(path, "wb") as f:  # np.savez on a path would append .npz to the temporary name
        np.savez(f, **garipov_arrays(plane))

"""A plane as a ParaView structured grid (.vts, written by pyevtk), as Li et al.'s h52vtp.py offers it:
the surface z = the metric (optionally capped at `zmax`, then log10), optionally resampled to an
`interp` x `interp` grid; every metric as point data, exactly as stored unless resampled.

Points not evaluated (or diverged) have no height: they sit at the highest drawn z and the point
array `evaluated` is 0 there (ParaView's Threshold filter on it hides them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from landscape.errors import ResultError, SpecError

from .source import Plane


def heights(values: np.ndarray, zmax: float | None, log: bool) -> np.ndarray:
    z = np.asarray(values, dtype=np.float64)
    if zmax is not None:
        z = np.minimum(z, zmax)  # NaN stays NaN
    if log:
        if np.nanmin(z) <= 0:
            raise SpecError("--log needs positive values of the metric; it has values <= 0 (drop --log)")
        z = np.log10(z)
    return z


def resample(plane: Plane, n: int) -> Plane:
    """Every metric linearly interpolated onto an n x n grid over the same extent."""
    from scipy.interpolate import RegularGridInterpolator

    x, y = np.linspace(plane.x.min(), plane.x.max(), n), np.linspace(plane.y.min(), plane.y.max(), n)
    Y, X = np.meshgrid(y, x, indexing="ij")
    pts = np.stack([Y.ravel(), X.ravel()], axis=-1)
    metrics = {k: RegularGridInterpolator((plane.y, plane.x), v.astype(np.float64))(pts).reshape(n, n)
               for k, v in plane.metrics.items()}
    return Plane(x=x, y=y, metrics=metrics, meta=plane.meta)


def write_vtk(plane: Plane, path, metric: str = "loss", zmax: float | None = None, log: bool = False,
              interp: int | None = None) -> None:
    from pyevtk.hl import gridToVTK

    if plane.y is None:
        raise ResultError("--format vtk writes a plane; this result is a line: use --format ll-h5")
    if metric not in plane.metrics:
        raise SpecError(f"metric {metric!r} is not in this result; it has {', '.join(plane.metrics)}")
    if interp is not None:
        if not 2 <= interp <= 4096:
            raise SpecError(f"--interp must be a grid size from 2 to 4096, got {interp}")
        plane = resample(plane, interp)
    z = heights(plane.metrics[metric], zmax, log)  # (ny, nx)
    evaluated = np.isfinite(z)
    if evaluated.any():
        z = np.where(evaluated, z, z[evaluated].max())
    else:
        z = np.zeros_like(z)
    ny, nx = z.shape
    # VTK's structured grid runs x fastest: arrays (nx, ny, 1) in Fortran order hold point (i, j) at x[i], y[j].
    grid = lambda a: np.asfortranarray(np.asarray(a).T[:, :, None])  # noqa: E731
    X, Y = np.meshgrid(plane.x.astype(np.float64), plane.y.astype(np.float64))
    data = {k: grid(v) for k, v in plane.metrics.items()}
    data["evaluated"] = grid(evaluated.astype(np.uint8))
    data["z"] = grid(z)
    stem = str(path) + ".vtkout"
    written = gridToVTK(stem, grid(X), grid(Y), grid(z), pointData=data)
    os.replace(written, Path(path))

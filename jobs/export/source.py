"""A result's arrays exactly as stored (dtype and values untouched), for the exporters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import zarr

from landscape.errors import ResultError


@dataclass
class Plane:
    x: np.ndarray  # (nx,)
    y: np.ndarray | None  # (ny,) or None for a line
    metrics: dict[str, np.ndarray]  # name -> (ny, nx) or (nx,), row i at y[i], NaN where not evaluated
    meta: dict

    @property
    def ndim(self) -> int:
        return 1 if self.y is None else 2


def read(result) -> Plane:
    """The metric arrays and axes of a scan result (a line or a plane)."""
    from cluster.store import ResultStore

    g = result if isinstance(result, zarr.Group) else ResultStore.open(str(result)).group
    meta = dict(g.attrs.get("landscape", {}))
    if meta.get("job", "scan") != "scan" or meta.get("dims") not in (1, 2):
        raise ResultError(f"only scan results (a line or a plane) can be exported; this is a {meta.get('job', 'scan')} "
                          f"result with {meta.get('dims')} dimension(s)")
    names = [n for n in meta.get("metrics", ["loss", "accuracy"]) if n in g]
    return Plane(
        x=np.asarray(g["x"][...]), y=np.asarray(g["y"][...]) if meta["dims"] == 2 else None,
        metrics={n: np.asarray(g[n][...]) for n in names}, meta=meta,
    )

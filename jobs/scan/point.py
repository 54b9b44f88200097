"""`landscape point`: the weights at any grid coordinate of a result, as a state_dict."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from cluster.storage import check_parent_folders
from cluster.store import ResultStore
from landscape.checkpoints import save_atomic
from landscape.errors import ResultError, SpecError

from .stored import stored_slice


def _check_coordinate(name: str, value: float, axis: np.ndarray, extrapolate: bool) -> None:
    if not math.isfinite(value):
        raise SpecError(f"--{name} {value} is not a finite number")
    lo, hi = float(axis.min()), float(axis.max())
    if not extrapolate and not lo <= value <= hi:
        raise SpecError(f"--{name} {value:g} is outside the grid ({name} runs from {lo:g} to {hi:g}); pass --extrapolate to go beyond it")


def point_state(result: str, x: float, y: float | None = None, extrapolate: bool = False) -> dict[str, torch.Tensor]:
    store = ResultStore.open(result)
    meta = store.meta
    if meta.get("job", "scan") != "scan" or "dims" not in meta:  # an animation's frames each have their own plane
        raise ResultError(f"{result} is not a scan (its job is {meta.get('job')!r}): `landscape point` reads scans")
    dims = meta["dims"]
    if dims == 2 and y is None:
        raise SpecError(f"{result} is a plane: give both --x and --y")
    if dims == 1 and y is not None:
        raise SpecError(f"{result} is a line: give --x only")
    _check_coordinate("x", x, store.group["x"][...], extrapolate)
    if y is not None:
        _check_coordinate("y", y, store.group["y"][...], extrapolate)
    sl, extras = stored_slice(store)
    state = {**sl.layout.unflatten(sl.point([x] if dims == 1 else [x, y])), **extras}
    return {k: v.clone() for k, v in state.items()}


def write_point(result: str, x: float, y: float | None, out: str | Path, extrapolate: bool = False) -> Path:
    out = Path(out)
    if out.is_dir():
        raise ResultError(f"-o {str(out)!r} is a directory; give a file name such as {str(out / 'point.pt')!r}")
    check_parent_folders(out, "-o")
    state = point_state(result, x, y, extrapolate)
    return save_atomic(state, out, "-o")  # never a half-written .pt under the asked name

"""`landscape point`: the weights at any grid coordinate of a result, as a state_dict."""

from __future__ import annotations

from pathlib import Path

import torch

from cluster.store import ResultStore
from landscape.errors import SpecError
from landscape.params import StateLayout
from landscape.slices import combine


def point_state(result: str, x: float, y: float | None = None) -> dict[str, torch.Tensor]:
    store = ResultStore.open(result)
    meta = store.meta
    dims = meta["dims"]
    if dims == 2 and y is None:
        raise SpecError(f"{result} is a plane: give both --x and --y")
    if dims == 1 and y is not None:
        raise SpecError(f"{result} is a line: give --x only")
    coords = [x] if dims == 1 else [x, y]
    origin = torch.from_numpy(store.group["origin"][...])  # (P,)
    directions = torch.from_numpy(store.group["directions"][...])  # (D, P)
    state = dict(StateLayout.from_json(meta["layout"]).unflatten(combine(origin, directions, coords)))
    state.update({k: torch.tensor(v) for k, v in meta.get("non_float_state", {}).items()})
    return {k: v.clone() for k, v in state.items()}


def write_point(result: str, x: float, y: float | None, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(point_state(result, x, y), out)
    return out

"""The slice a scan result holds, read back: origin, directions, coefficient maps and what its geometry recorded.

What `landscape point` combines into weights, and what a resumed or finished scan of a costly slice kind
(a Hessian plane's Lanczos, a trajectory's PCA) takes instead of computing its slice again."""

from __future__ import annotations

import torch

from cluster.store import ResultStore, inspect_output
from landscape.coefmaps import from_json
from landscape.params import StateLayout
from landscape.slices import Slice


def stored_slice(store: ResultStore) -> tuple[Slice, dict]:
    """(the result's slice, its origin's non-float state)."""
    meta = store.meta
    directions = torch.from_numpy(store.group["directions"][...])  # (D, P)
    d = directions.shape[0]
    sl = Slice(
        meta.get("slice_kind", "random_plane"), StateLayout.from_json(meta["layout"]),
        torch.from_numpy(store.group["origin"][...]), directions, checkpoints=list(meta.get("checkpoints", [])),
        coef_map=from_json(meta.get("coef_map"), d), info=dict(meta.get("slice_info", {})),
        companions={c: from_json(j, d) for c, j in meta.get("companions", {}).items()},
    )
    return sl, {k: torch.tensor(v) for k, v in meta.get("non_float_state", {}).items()}


def scan_of(url: str | None, identity: str) -> ResultStore | None:
    """The scan result at `url` if it is one of this identity (to resume or report), else None."""
    if url is None:
        return None
    out = inspect_output(url)
    if out.state != "result" or out.meta.get("identity") != identity or out.meta.get("job", "scan") != "scan":
        return None
    return ResultStore.open(url)

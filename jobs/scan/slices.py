"""The checkpoint slices of a scan: a random plane or line around one checkpoint, the line between two, the
plane through three (each checkpoint refused if it holds NaN or inf, unless allowed)."""

from __future__ import annotations

import torch

from landscape.errors import SpecError
from landscape.factories import ModelFactory
from landscape.param_select import entry_mask, keep_only, select
from landscape.params import StateLayout, non_float_state
from landscape.slices import Slice, line_between, plane_through, random_slice

from ..common.build import load_checked, record_params
from ..specs import ScanSpec, slice_checkpoints


def build_checkpoint_slice(spec: ScanSpec, factory: ModelFactory, notes: list[str], data=None) -> tuple[Slice, dict]:
    """The slice and the non-float state of its origin checkpoint."""
    model = factory()
    layout = StateLayout.of(model)
    s = spec.slice
    paths = slice_checkpoints(s)
    states = [load_checked(p, model, spec.allow_nonfinite, notes) for p in paths]
    vecs = [layout.flatten(st) for st in states]
    chosen = select(layout, s.params, "slice.params") if s.params else None
    if chosen is not None and s.kind in ("line_between", "plane_through"):  # the other checkpoints, outside the block: the first's
        mask = entry_mask(layout, chosen)
        vecs = [vecs[0]] + [torch.where(mask, v, vecs[0]) for v in vecs[1:]]
        notes.append(f"slice.params: the checkpoints after the first differ from it only on {len(chosen)} tensor(s)")
    if s.kind in ("random_plane", "random_line"):
        sl = random_slice(layout, vecs[0], spec.dims, s.seed, s.normalization, s.ignore)
    elif s.kind == "line_between":
        sl = line_between(layout, *vecs, labels=[p.stem for p in paths])
    else:  # plane_through
        sl = plane_through(layout, *vecs, labels=[p.stem for p in paths])
    if chosen is not None and s.kind in ("random_plane", "random_line"):
        sl.directions = keep_only(sl.directions, entry_mask(layout, chosen))
        if not bool(torch.any(sl.directions != 0)):
            raise SpecError("slice.params chooses only 1-D parameters, which ignore: biasbn zeroes; set slice.ignore: none")
    record_params(sl, s.params)
    return sl, non_float_state(states[0])

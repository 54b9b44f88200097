"""The checkpoint slices of a scan: a random plane or line around one checkpoint, the line between two, the
plane through three (each checkpoint refused if it holds NaN or inf, unless allowed)."""

from __future__ import annotations

from landscape.factories import ModelFactory
from landscape.params import StateLayout, non_float_state
from landscape.slices import Slice, line_between, plane_through, random_slice

from ..common.build import load_checked
from ..specs import ScanSpec, slice_checkpoints


def build_checkpoint_slice(spec: ScanSpec, factory: ModelFactory, notes: list[str], data=None) -> tuple[Slice, dict]:
    """The slice and the non-float state of its origin checkpoint."""
    model = factory()
    layout = StateLayout.of(model)
    s = spec.slice
    paths = slice_checkpoints(s)
    states = [load_checked(p, model, spec.allow_nonfinite, notes) for p in paths]
    vecs = [layout.flatten(st) for st in states]
    if s.kind in ("random_plane", "random_line"):
        sl = random_slice(layout, vecs[0], spec.dims, s.seed, s.normalization, s.ignore)
    elif s.kind == "line_between":
        sl = line_between(layout, *vecs, labels=[p.stem for p in paths])
    else:  # plane_through
        sl = plane_through(layout, *vecs, labels=[p.stem for p in paths])
    return sl, non_float_state(states[0])

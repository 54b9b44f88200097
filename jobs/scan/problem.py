"""A scan spec as the problem its actors evaluate: data, model and the slice its kind names, checked.

Each slice kind has one builder, `build(spec, factory, notes, data) -> (Slice, origin's non-float state)`,
in the module of its capability; SLICE_KINDS is the one table of them. A new slice kind is a spec
class (jobs/specs/), a builder, and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from landscape import data as datasets
from landscape.errors import SpecError
from landscape.factories import ModelFactory
from landscape.param_select import select
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.slices import Slice

from ..common.build import check_prepared, prepare
from ..curvature.plane import build_hessian_plane
from ..curves.slices import build_curve_slice, fit_curve_grid
from ..specs import ScanSpec
from ..specs.hessian import HessianOptions
from ..trajectories.slices import after_build as trajectory_after_build
from ..trajectories.slices import build_slice as build_trajectory_slice
from .slices import build_checkpoint_slice
from .stored import scan_of, stored_slice


@dataclass(frozen=True)
class SliceKind:
    build: object  # fn(spec, factory, notes, data) -> (Slice, extras)
    after_build: object = None  # fn(spec, built): a fitted grid, work before the tiles
    costly: bool = False  # a resumed or finished result's stored slice is read instead of building it again


SLICE_KINDS: dict[str, SliceKind] = {
    "random_plane": SliceKind(build_checkpoint_slice),
    "random_line": SliceKind(build_checkpoint_slice),
    "line_between": SliceKind(build_checkpoint_slice),
    "plane_through": SliceKind(build_checkpoint_slice),
    "hessian_plane": SliceKind(build_hessian_plane, costly=True),
    "curve": SliceKind(build_curve_slice),
    "curve_plane": SliceKind(build_curve_slice),
    "trajectory": SliceKind(build_trajectory_slice, trajectory_after_build),
    "trajectory_pca": SliceKind(build_trajectory_slice, trajectory_after_build, costly=True),
}


def build_slice(spec: ScanSpec, factory: ModelFactory, notes: list[str] | None = None, data=None) -> tuple[Slice, dict]:
    """The slice of the spec and the non-float state of its origin checkpoint (`data`: (inputs, targets) if loaded)."""
    kind = SLICE_KINDS.get(spec.slice.kind)
    if kind is None:  # pragma: no cover - the spec's union forbids it
        raise SpecError(f"unknown slice kind {spec.slice.kind!r}")
    return kind.build(spec, factory, notes if notes is not None else [], data)

@dataclass
class Built:
    """A scan's problem, checked, with what the run should say and record about it."""

    problem: ScanProblem
    extras: dict  # the origin checkpoint's non-float state (BatchNorm's num_batches_tracked)
    notes: list[str] = field(default_factory=list)
    grid: object = None  # the grid with its range resolved (grid.fit: path); None: spec.grid as written
    meta: dict = field(default_factory=dict)  # more entries for the result's meta (e.g. grid_fit)
    # Work on the cluster before the tiles, each fn(store, request, cluster_spec) recording its
    # results in the meta and skipping what a resumed result already has (a trajectory's checkpoints).
    before_tiles: list = field(default_factory=list)


def bn_subset(spec: ScanSpec, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    if spec.batchnorm_samples is None or spec.batchnorm_samples >= len(inputs):
        return None
    return datasets.subsample(inputs, targets, spec.batchnorm_samples, seed=spec.data.seed)[0]


def bn_data(spec: ScanSpec, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    """The samples batchnorm: recompute re-estimates from (None: each split's own inputs)."""
    if not spec.batchnorm_data:
        return bn_subset(spec, inputs, targets)
    x, y = split_inputs(spec, spec.batchnorm_data)
    sub = bn_subset(spec, x, y)
    return x if sub is None else sub


def split_inputs(spec: ScanSpec, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of one split of the scan's data, checked against the model as the main data are."""
    p = prepare(spec.split_data(name), spec.model)
    check_prepared(p, spec.loss)
    return p.inputs, p.targets


def build_problem(spec: ScanSpec, url: str | None = None) -> Built:
    """Everything the actors need, checked (data fits model) before any work starts.

    `url`: where the result goes; if a result of this spec is there, a costly slice is read from it."""
    prepared = prepare(spec.main_data, spec.model)
    inputs, targets, factory, notes = prepared.inputs, prepared.targets, prepared.factory, prepared.notes
    check_prepared(prepared, spec.loss)  # data problems first: they say more than a checkpoint mismatch
    if "ensemble" in spec.metrics and targets.dim() > 1 and not targets.is_floating_point():
        raise SpecError("metrics: ensemble averages one class distribution per sample; token data (kind text) has one per token")
    store = scan_of(url, spec.identity()) if SLICE_KINDS[spec.slice.kind].costly else None
    if store is not None:
        sl, extras = stored_slice(store)
        notes.append(f"{spec.slice.kind}: the slice stored in {url} (not computed again)")
    else:
        sl, extras = build_slice(spec, factory, notes, data=(inputs, targets))
    if spec.hessian is not None and spec.hessian.params:  # a typo fails here, not on the actors
        select(sl.layout, spec.hessian.params, "hessian.params")
    options = EvalOptions(
        precision=spec.precision,
        data_chunk=spec.data_chunk,
        expected_points=int(np.prod(spec.grid_shape)),
        batchnorm=spec.batchnorm_mode,
        batchnorm_batch=spec.batchnorm_batch,
        **spec.evaluator.model_dump(),
    )
    problem = ScanProblem(
        factory, sl, inputs, targets, spec.loss, options, metrics=tuple(spec.metrics),
        bn_inputs=bn_data(spec, inputs, targets), sequential=spec.data.sequential(),
        splits={name: split_inputs(spec, name) for name in (spec.eval or [])[1:]},
        metric_options={"hessian": (spec.hessian or HessianOptions()).model_dump()} if "hessian" in spec.metrics else {},
    )
    if spec.batchnorm == "recompute" and not _has_batchnorm(factory):  # asked for (curves default to it)
        notes.append("batchnorm: recompute has nothing to do: the model has no BatchNorm layer")
    built = Built(problem, extras, notes)
    if spec.grid.fit == "curve":
        built.grid, built.meta["grid_fit"] = fit_curve_grid(spec, sl)
    after = SLICE_KINDS[spec.slice.kind].after_build
    if after is not None:
        after(spec, built)
    return built


def _has_batchnorm(factory: ModelFactory) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in factory().modules())


def check_scan(spec: ScanSpec) -> str:
    """`landscape validate`: everything a run checks before it writes (notes printed), as one line.
    Here, not in run.py, so that validating needs torch but never Ray or Zarr."""
    built = build_problem(spec)
    for note in built.notes:
        print(f"note: {note}")
    return f"valid scan {spec.name!r}: {spec.slice.kind}, grid {spec.grid_shape}, {len(built.problem.inputs)} samples"

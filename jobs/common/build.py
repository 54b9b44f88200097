"""Turn a validated spec into the math objects of `landscape/` (data, model, slice)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from landscape import data as datasets
from landscape.adapters import fit_input_dtype
from landscape.checkpoints import load_state, nonfinite_entries
from landscape.datasets import Loaded, load_dataset
from landscape.errors import CheckpointError, SpecError
from landscape.factories import ModelFactory
from landscape.memory import check_data_memory
from landscape.params import StateLayout, non_float_state
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem, check_data_fits
from landscape.slices import Slice, line_between, plane_through, random_slice

from ..specs import DataSpec, ModelSpec, ScanSpec, slice_checkpoints
from ..specs.datasets import FILE_DATA_KINDS
from ..specs.hessian import HessianOptions


def load_data_full(spec: DataSpec) -> Loaded:
    """The data of a spec (subsampled when asked), with notes on conversions and, for file data sets, their class count."""
    if spec.kind in FILE_DATA_KINDS:  # subset (stratified) and memory check inside, before decoding
        return load_dataset(spec.kind, **spec.load_kwargs())
    notes: list[str] = []
    if spec.kind == "digits":
        x, y = datasets.digits()
    elif spec.kind == "synthetic":
        x, y = datasets.synthetic(spec.n, tuple(spec.shape), spec.classes, spec.seed, spec.task)
    else:
        x, y, notes = datasets.from_factory(spec.factory, **spec.kwargs)
    x, y = datasets.subsample(x, y, spec.subset, spec.seed)
    check_data_memory(len(x), tuple(x.shape[1:]), f"data {spec.kind}", bytes_per_value=max(4, x.element_size()))
    return Loaded(x, y, None, notes)


def load_data_noted(spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(inputs, targets, notes on conversions), subsampled when asked."""
    d = load_data_full(spec)
    return d.inputs, d.targets, d.notes


def load_data(spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for a data spec, subsampled when asked."""
    x, y, _ = load_data_noted(spec)
    return x, y


def model_factory(spec: ModelSpec, inputs: torch.Tensor, targets: torch.Tensor, classes: int | None = None) -> ModelFactory:
    """A picklable factory sized to the data (input shape, number of outputs: the data set's classes when known)."""
    factory = ModelFactory(
        kind=spec.kind,
        input_shape=tuple(inputs.shape[1:]),
        num_classes=classes or datasets.num_classes(targets),
        options=dict(spec.options) | ({"name": spec.name} if spec.name else {}),
        factory=spec.factory,
        seed=spec.seed,
    )
    factory()  # fail now, with a SpecError, on bad options
    return factory


@dataclass
class Prepared:
    """Data and a model factory that fit together (checked by `check_prepared`)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    factory: ModelFactory
    classes: int | None  # the data set's class count, when it has one
    notes: list[str]


def prepare(data: DataSpec, model: ModelSpec) -> Prepared:
    """Load the data, size the model to it, and keep integer inputs integer if the model reads them (token ids)."""
    d = load_data_full(data)
    factory = model_factory(model, d.inputs, d.targets, d.classes)
    inputs, notes = d.inputs, list(d.notes)
    if not inputs.is_floating_point():
        inputs, note = fit_input_dtype(factory(), inputs)
        notes.append(note)
    return Prepared(inputs, d.targets, factory, d.classes, notes)


def check_prepared(p: Prepared, loss: str) -> None:
    """DataError if the data does not go through the model, or its outputs do not fit the labels or the data set's classes."""
    check_data_fits(p.factory, p.inputs, p.targets, loss, classes=p.classes)


def load_checked(path, model, allow_nonfinite: bool, notes: list[str]) -> dict[str, torch.Tensor]:
    """A checkpoint that fits `model`; refused if it holds NaN or inf unless allowed (then noted)."""
    state = load_state(path, model)
    bad = nonfinite_entries(state)
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        if not allow_nonfinite:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds NaN or inf in {shown}; its landscape would be garbage. "
                "Set allow_nonfinite: true to scan it anyway"
            )
        notes.append(f"checkpoint {path} holds NaN or inf in {shown} (allow_nonfinite: true)")
    return state


def build_slice(spec: ScanSpec, factory: ModelFactory, notes: list[str] | None = None, data=None) -> tuple[Slice, dict]:
    """The slice of the spec and the non-float state of its origin checkpoint (`data`: (inputs, targets) if loaded)."""
    notes = notes if notes is not None else []
    if spec.slice.kind in ("curve", "curve_plane"):  # a curve checkpoint and the endpoints it names
        from ..curves.slices import build_curve_slice

        return build_curve_slice(spec, factory, notes)
    model = factory()
    layout = StateLayout.of(model)
    s = spec.slice
    if getattr(s, "has_path", False):  # trajectories read their many checkpoints one at a time
        from ..trajectories.slices import build_trajectory_slice

        return build_trajectory_slice(spec, model, layout, notes)
    paths = slice_checkpoints(s)
    states = [load_checked(p, model, spec.allow_nonfinite, notes) for p in paths]
    vecs = [layout.flatten(st) for st in states]
    if s.kind in ("random_plane", "random_line"):
        sl = random_slice(layout, vecs[0], spec.dims, s.seed, s.normalization, s.ignore)
    elif s.kind == "line_between":
        sl = line_between(layout, *vecs, labels=[p.stem for p in paths])
    elif s.kind == "plane_through":
        sl = plane_through(layout, *vecs, labels=[p.stem for p in paths])
    elif s.kind == "hessian_plane":
        from ..curvature.hessian import hessian_plane_of

        sl = hessian_plane_of(spec, factory, layout, vecs[0], data or load_data(spec.data), notes)
    else:  # pragma: no cover - the spec's union forbids it
        raise SpecError(f"unknown slice kind {s.kind!r}")
    return sl, non_float_state(states[0])


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


def build_problem(spec: ScanSpec) -> Built:
    """Everything the actors need, checked (data fits model) before any work starts."""
    prepared = prepare(spec.data, spec.model)
    inputs, targets, factory, notes = prepared.inputs, prepared.targets, prepared.factory, prepared.notes
    check_prepared(prepared, spec.loss)  # data problems first: they say more than a checkpoint mismatch
    sl, extras = build_slice(spec, factory, notes, data=(inputs, targets))
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
        bn_inputs=bn_subset(spec, inputs, targets),
        metric_options={"hessian": (spec.hessian or HessianOptions()).model_dump()} if "hessian" in spec.metrics else {},
    )
    if spec.batchnorm == "recompute" and not _has_batchnorm(factory):  # asked for (curves default to it)
        notes.append("batchnorm: recompute has nothing to do: the model has no BatchNorm layer")
    built = Built(problem, extras, notes)
    if getattr(spec.slice, "has_path", False):
        from ..trajectories.slices import checkpoint_values, fit_grid

        if spec.grid.fit:
            built.grid, built.meta["grid_fit"] = fit_grid(spec, sl)
        if spec.slice.kind == "trajectory_pca":
            built.before_tiles.append(checkpoint_values(spec, built))
    return built


def _has_batchnorm(factory: ModelFactory) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in factory().modules())

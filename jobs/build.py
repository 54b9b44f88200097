"""Turn a validated spec into the math objects of `landscape/` (data, model, slice)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from landscape import data as datasets
from landscape.checkpoints import load_state, nonfinite_entries
from landscape.errors import CheckpointError, SpecError
from landscape.evaluator import ScanProblem, check_fit
from landscape.factories import ModelFactory
from landscape.plan import EvalOptions
from landscape.params import StateLayout, non_float_state
from landscape.slices import Slice, line_between, plane_through, random_slice

from .specs import DataSpec, ModelSpec, ScanSpec, slice_checkpoints


def load_data_noted(spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(inputs, targets, notes on conversions), subsampled when asked."""
    notes: list[str] = []
    if spec.kind == "digits":
        x, y = datasets.digits()
    elif spec.kind == "synthetic":
        x, y = datasets.synthetic(spec.n, tuple(spec.shape), spec.classes, spec.seed, spec.task)
    else:
        x, y, notes = datasets.from_factory(spec.factory, **spec.kwargs)
    x, y = datasets.subsample(x, y, spec.subset, spec.seed)
    return x, y, notes


def load_data(spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for a data spec, subsampled when asked."""
    x, y, _ = load_data_noted(spec)
    return x, y


def model_factory(spec: ModelSpec, inputs: torch.Tensor, targets: torch.Tensor) -> ModelFactory:
    """A picklable factory sized to the data (input shape, number of outputs)."""
    factory = ModelFactory(
        kind=spec.kind,
        input_shape=tuple(inputs.shape[1:]),
        num_classes=datasets.num_classes(targets),
        options=dict(spec.options),
        factory=spec.factory,
        seed=spec.seed,
    )
    factory()  # fail now, with a SpecError, on bad options
    return factory


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


def build_slice(spec: ScanSpec, factory: ModelFactory, notes: list[str] | None = None) -> tuple[Slice, dict]:
    """The slice of the spec and the non-float state of its origin checkpoint."""
    notes = notes if notes is not None else []
    if spec.slice.kind in ("curve", "curve_plane"):  # a curve checkpoint and the endpoints it names
        from .curve_slices import build_curve_slice

        return build_curve_slice(spec, factory, notes)
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
    elif s.kind == "plane_through":
        sl = plane_through(layout, *vecs, labels=[p.stem for p in paths])
    else:  # pragma: no cover - the spec's union forbids it
        raise SpecError(f"unknown slice kind {s.kind!r}")
    return sl, non_float_state(states[0])


@dataclass
class Built:
    """A scan's problem, checked, with what the run should say and record about it."""

    problem: ScanProblem
    extras: dict  # the origin checkpoint's non-float state (BatchNorm's num_batches_tracked)
    notes: list[str] = field(default_factory=list)


def bn_subset(spec: ScanSpec, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    if spec.batchnorm_samples is None or spec.batchnorm_samples >= len(inputs):
        return None
    return datasets.subsample(inputs, targets, spec.batchnorm_samples, seed=spec.data.seed)[0]


def build_problem(spec: ScanSpec) -> Built:
    """Everything the actors need, checked (data fits model) before any work starts."""
    inputs, targets, notes = load_data_noted(spec.data)
    factory = model_factory(spec.model, inputs, targets)
    sl, extras = build_slice(spec, factory, notes)
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
    )
    check_fit(problem)
    if spec.batchnorm == "recompute" and not _has_batchnorm(factory):  # asked for (curves default to it)
        notes.append("batchnorm: recompute has nothing to do: the model has no BatchNorm layer")
    return Built(problem, extras, notes)


def _has_batchnorm(factory: ModelFactory) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in factory().modules())

"""Turn a validated spec into the math objects of `landscape/` (data, model, slice)."""

from __future__ import annotations

import numpy as np
import torch

from landscape import data as datasets
from landscape.checkpoints import load_state
from landscape.errors import SpecError
from landscape.evaluator import ScanProblem, check_fit
from landscape.factories import ModelFactory
from landscape.plan import EvalOptions
from landscape.params import StateLayout, non_float_state
from landscape.slices import Slice, line_between, plane_through, random_slice

from .spec import DataSpec, ModelSpec, ScanSpec


def load_data(spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for a data spec, subsampled when asked."""
    if spec.kind == "digits":
        x, y = datasets.digits()
    elif spec.kind == "synthetic":
        x, y = datasets.synthetic(spec.n, tuple(spec.shape), spec.classes, spec.seed, spec.task)
    else:
        x, y = datasets.from_factory(spec.factory, **spec.kwargs)
    return datasets.subsample(x, y, spec.subset, spec.seed)


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


def build_slice(spec: ScanSpec, factory: ModelFactory) -> tuple[Slice, dict]:
    """The slice of the spec and the non-float state of its origin checkpoint."""
    model = factory()
    layout = StateLayout.of(model)
    s = spec.slice
    paths = [s.checkpoint] if s.kind in ("random_plane", "random_line") else list(s.checkpoints)
    states = [load_state(p, model) for p in paths]
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


def build_problem(spec: ScanSpec) -> tuple[ScanProblem, dict]:
    """Everything the actors need, checked (data fits model) before any work starts."""
    inputs, targets = load_data(spec.data)
    factory = model_factory(spec.model, inputs, targets)
    sl, extras = build_slice(spec, factory)
    options = EvalOptions(
        precision=spec.precision,
        data_chunk=spec.data_chunk,
        expected_points=int(np.prod(spec.grid_shape)),
        **spec.evaluator.model_dump(),
    )
    problem = ScanProblem(factory, sl, inputs, targets, spec.loss, options)
    check_fit(problem)
    return problem, extras

"""A spec's data, model and checkpoints as the math objects of `landscape/` (what every job builds first)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from landscape import data as datasets
from landscape.adapters import fit_input_dtype
from landscape.checkpoints import load_state, nonfinite_entries
from landscape.datasets import Loaded, load_dataset
from landscape.errors import CheckpointError
from landscape.factories import ModelFactory
from landscape.memory import check_data_memory
from landscape.param_select import moved
from landscape.problem import check_data_fits
from landscape.subsets import take_subset

from ..specs import DataSpec, ModelSpec
from ..specs.datasets import FILE_DATA_KINDS


def load_data_full(spec: DataSpec) -> Loaded:
    """The data of a spec (subsampled when asked), with notes on conversions and, for file data sets, their class count."""
    if spec.kind in FILE_DATA_KINDS:  # subset (stratified) and memory check inside, before decoding
        return load_dataset(spec.kind, **spec.load_kwargs())
    notes: list[str] = []
    if spec.kind == "text":
        from landscape.text import load_tokens

        t = load_tokens(spec.path, spec.tokenizer, spec.block_size, spec.max_tokens, spec.dtype)
        x, y = take_subset(t.inputs, t.targets, spec.subset, spec.seed, f"the token blocks of {str(spec.path)!r}")
        return Loaded(x, y, t.vocab, t.notes)
    if spec.kind == "digits":
        x, y = datasets.digits()
        what = "digits" if spec.split == "all" else f"digits {spec.split}"
        if spec.split != "all":
            idx = datasets.stratified_split(y, spec.split, spec.test_fraction, spec.split_seed)
            x, y = x[idx], y[idx]
    elif spec.kind == "synthetic":
        x, y = datasets.synthetic(spec.n, tuple(spec.shape), spec.classes, spec.seed, spec.task)
        what = "the synthetic data"
    else:
        x, y, notes = datasets.from_factory(spec.factory, spec.kwargs, spec.subset, spec.seed)  # a Dataset: only the subset is read
        what = f"data factory {spec.factory!r}"
    x, y = take_subset(x, y, spec.subset, spec.seed, what)  # the one subset rule (landscape/subsets.py)
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
        options=dict(spec.options) | ({"name": spec.name} if spec.name else {}) | spec.lm_options(),
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


def record_params(sl, params) -> None:
    """What a slice records of `slice.params`: the globs asked for and the tensors its directions move."""
    sl.info["params"] = params
    sl.info["moved"] = moved(sl.layout, sl.directions)  # the tensors the slice moves

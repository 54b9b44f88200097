"""Validated job specs (pydantic v2): one config type per job kind, one module each.

Unknown fields are rejected (extra="forbid"); slice and data kinds are
discriminated unions, so a typo names the field and the valid choices. YAML
keys given twice are refused. `SPEC_KINDS` says how `landscape validate` tells
the kinds apart: the first whose marker field is in the file wins.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .base import Strict, format_validation_error, validate
from .spec_file import read_yaml  # the one place a spec file is read
from .parts import COORD_LIMIT, MAX_POINTS, Axis, ClusterSpec, DataSpec, DigitsData, EvaluatorSpec, Grid, ImportData, ModelSpec, SyntheticData
from .scan import MAX_TILES, ScanSpec, SliceSpec, slice_checkpoints
from .sharpness import SharpnessSpec
from .train import TrainSpec
from .gradients import GradientsSpec
from .lr_scan import LRScanSpec
from .hessian import HessianSpec
from .curve import CurveTrainSpec
from .animate import AnimateSpec

# (name used by `landscape schema --kind`, spec class, a field only that kind's files have,
#  "module:function" that checks a spec's files beyond its fields: fn(spec) -> one-line summary)
SPEC_KINDS: list[tuple[str, type[BaseModel], str, str]] = [
    ("animate", AnimateSpec, "frames", "jobs.curves.commands:check_animate"),  # before scan: it has a slice too
    ("scan", ScanSpec, "slice", "jobs.scan.problem:check_scan"),
    ("curve", CurveTrainSpec, "endpoints", "jobs.curves.commands:check_curve"),  # before train: it has epochs too
    ("gradients", GradientsSpec, "record", "jobs.health.commands:check_spec"),  # before train: epochs too
    ("lr-scan", LRScanSpec, "learning_rates", "jobs.health.commands:check_spec"),
    ("train", TrainSpec, "epochs", "jobs.training.train:check_train_spec"),
    ("hessian", HessianSpec, "top_k", "jobs.curvature.hessian:check_hessian"),
    ("sharpness", SharpnessSpec, "at", "jobs.curvature.sharpness:check_sharpness"),  # after hessian: it has `at` too
]


def spec_class(kind: str) -> type[BaseModel]:
    return {name: cls for name, cls, *_ in SPEC_KINDS}[kind]


def spec_kind(spec: BaseModel) -> str:
    """The kind's name (as `landscape schema --kind` takes it)."""
    return next(name for name, cls, *_ in SPEC_KINDS if type(spec) is cls)


def spec_checker(spec: BaseModel):
    """The function that checks this kind of spec's files (checkpoints exist and fit, data fits)."""
    import importlib

    path = next(check for _, cls, _, check in SPEC_KINDS if type(spec) is cls)
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def submitted_record(spec_path: str | Path) -> Path:
    """Where `landscape submit` leaves, beside a job's copy of the spec, what it knew where the spec was written."""
    p = Path(spec_path)
    return p.with_name(p.stem + ".submitted.json")


def _with_submitted(spec, path: str | Path):
    record = submitted_record(path)
    if record.is_file():
        spec._submitted = json.loads(record.read_text())
    return spec


def load_spec(path: str | Path, cls: type[BaseModel] = ScanSpec):
    """Read and validate a YAML spec; SpecError with one line per problem."""
    return _with_submitted(validate(cls, read_yaml(path), str(path)), path)


def load_any_spec(path: str | Path):
    """Whatever kind of spec the file holds, told apart by SPEC_KINDS' marker fields (a scan by default)."""
    raw = read_yaml(path)
    cls = next((cls for _, cls, marker, _ in SPEC_KINDS if marker in raw), ScanSpec)
    return _with_submitted(validate(cls, raw, str(path)), path)


__all__ = [
    "COORD_LIMIT", "MAX_POINTS", "MAX_TILES", "SPEC_KINDS", "Axis", "ClusterSpec", "DataSpec", "DigitsData",
    "EvaluatorSpec", "Grid", "HessianSpec", "ImportData", "ModelSpec", "ScanSpec", "SliceSpec", "Strict", "SyntheticData",
    "TrainSpec", "CurveTrainSpec", "AnimateSpec", "GradientsSpec", "LRScanSpec", "format_validation_error", "load_any_spec",
    "load_spec", "read_yaml", "slice_checkpoints", "spec_checker", "spec_class", "spec_kind",
]

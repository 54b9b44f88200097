"""Validated job specs (pydantic v2): one config type per job kind.

Unknown fields are rejected (extra="forbid"); slice and data kinds are
discriminated unions, so a typo names the field and the valid choices.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from landscape.errors import SpecError
from landscape.models import MODEL_KINDS


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Axis(Strict):
    """One grid axis: `num` evenly spaced points from `min` to `max` inclusive."""

    min: float = Field(description="first coordinate")
    max: float = Field(description="last coordinate")
    num: int = Field(gt=0, description="number of points (>= 1; 1 needs min == max)")

    @model_validator(mode="after")
    def _range(self):
        if self.num > 1 and self.max < self.min:
            raise ValueError(f"reversed range: min {self.min} > max {self.max}; swap them")
        if self.num > 1 and self.max == self.min:
            raise ValueError(f"empty range: min == max == {self.min} with num {self.num}; widen it or set num: 1")
        return self


class Grid(Strict):
    x: Axis = Field(description="horizontal axis (first direction)")
    y: Axis | None = Field(None, description="vertical axis (second direction); only for planes")


class ModelSpec(Strict):
    kind: str = Field(description=f"one of {', '.join(MODEL_KINDS)}, or 'import' with `factory`")
    options: dict = Field(default_factory=dict, description="keyword options of the model (e.g. widths: [64, 64])")
    factory: str | None = Field(None, description="'package.module:function' returning an nn.Module (kind: import)")
    seed: int = Field(0, description="seed of the initial weights (training)")

    @model_validator(mode="after")
    def _kind(self):
        if self.kind == "import":
            if not self.factory:
                raise ValueError("kind 'import' needs factory: 'package.module:function'")
        elif self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; expected one of {', '.join(MODEL_KINDS)} or 'import'")
        elif self.factory:
            raise ValueError("factory is only used with kind: import")
        return self


class DigitsData(Strict):
    kind: Literal["digits"]
    subset: int | None = Field(None, gt=0, description="seeded subsample of this many samples")
    seed: int = Field(0, description="seed of the subsample")


class SyntheticData(Strict):
    kind: Literal["synthetic"]
    n: int = Field(gt=0, description="number of samples")
    shape: list[Annotated[int, Field(gt=0)]] = Field(min_length=1, description="one sample's shape, e.g. [3, 32, 32]")
    classes: int = Field(10, gt=1, description="classes (or regression outputs)")
    task: Literal["classification", "regression"] = "classification"
    seed: int = 0
    subset: int | None = Field(None, gt=0)


class ImportData(Strict):
    kind: Literal["import"]
    factory: str = Field(description="'package.module:function' returning (inputs, targets) or a Dataset")
    kwargs: dict = Field(default_factory=dict)
    subset: int | None = Field(None, gt=0)
    seed: int = 0


DataSpec = Annotated[Union[DigitsData, SyntheticData, ImportData], Field(discriminator="kind")]
Normalization = Literal["filter", "layer", "weight", "none"]


class RandomPlane(Strict):
    """Two filter-normalized Gaussian directions around a checkpoint (Li et al.)."""

    kind: Literal["random_plane"]
    checkpoint: Path = Field(description="the center (a state_dict file)")
    seed: int = Field(0, description="seed of the random directions")
    normalization: Normalization = "filter"
    ignore: Literal["biasbn", "none"] = Field("biasbn", description="biasbn: zero 1-D parameters in the directions")


class RandomLine(RandomPlane):
    kind: Literal["random_line"]


class LineBetween(Strict):
    """w(alpha) = a + alpha * (b - a): a at 0, b at 1."""

    kind: Literal["line_between"]
    checkpoints: tuple[Path, Path]


class PlaneThrough(Strict):
    """Plane through three checkpoints; Gram-Schmidt basis, Euclidean coordinates."""

    kind: Literal["plane_through"]
    checkpoints: tuple[Path, Path, Path]


SliceSpec = Annotated[Union[RandomPlane, RandomLine, LineBetween, PlaneThrough], Field(discriminator="kind")]
PLANES = ("random_plane", "plane_through")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("use letters, digits, '_', '.', '-' (it names output files)")
    return v


class ClusterSpec(Strict):
    actors: int | None = Field(None, gt=0, description="number of actors (default: one per GPU, else one per CPU)")
    gpus_per_actor: float | None = Field(None, ge=0, description="GPU fraction per actor (default 1 with GPUs, else 0)")
    cpus_per_actor: float = Field(1, gt=0)
    max_attempts: int = Field(3, gt=0, description="tries per tile before the job fails")
    placement_timeout_s: float = Field(60, gt=0, description="how long to wait for actors to be placed")


class EvaluatorSpec(Strict):
    """How the evaluator runs; the defaults pick what measured fastest on the device."""

    points_per_pass: int | None = Field(
        None, gt=0, description="grid points evaluated together (vmap); default: 1 on CPU, 128 on GPU for models without convolutions"
    )
    shortcut: bool = Field(True, description="exact first-layer shortcut when its precomputed outputs fit in memory")
    cuda_graphs: bool | None = Field(None, description="replay each pass as a CUDA graph (default: on for GPUs)")
    channels_last: bool | None = Field(None, description="channels-last memory format (default: on for image inputs)")
    compile: bool | None = Field(
        None, description="torch.compile the model (default: on for conv nets on GPU in scans of >= 50,000 points)"
    )


class ScanSpec(Strict):
    """A loss-landscape scan."""

    name: str = Field(description="names the default output results/<name>.zarr")
    model: ModelSpec
    data: DataSpec
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    slice: SliceSpec
    grid: Grid
    tile: int | tuple[int, int] = Field(32, description="tile = Zarr chunk, in points per axis ([rows, cols] or one int)")
    precision: Literal["fp32", "tf32", "bf16"] = Field("fp32", description="arithmetic of the forward passes")
    data_chunk: int | None = Field(None, gt=0, description="samples per forward pass (default: from the device's memory)")
    evaluator: EvaluatorSpec = Field(default_factory=EvaluatorSpec)
    output: str | None = Field(None, description="result path or URL (default results/<name>.zarr)")
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)

    _name = field_validator("name")(_check_name)

    @field_validator("tile")
    @classmethod
    def _tile(cls, v):
        sizes = (v, v) if isinstance(v, int) else v
        if any(s <= 0 for s in sizes):
            raise ValueError("tile sizes must be positive")
        return v

    @model_validator(mode="after")
    def _grid_fits_slice(self):
        plane = self.slice.kind in PLANES
        if plane and self.grid.y is None:
            raise ValueError(f"slice {self.slice.kind} is a plane: grid.y is required")
        if not plane and self.grid.y is not None:
            raise ValueError(f"slice {self.slice.kind} is a line: remove grid.y")
        return self

    @property
    def dims(self) -> int:
        return 2 if self.slice.kind in PLANES else 1

    @property
    def tile_shape(self) -> tuple[int, ...]:
        t = (self.tile, self.tile) if isinstance(self.tile, int) else tuple(self.tile)
        return t if self.dims == 2 else (t[-1],)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Result array shape: (ny, nx), or (nx,) for lines."""
        return (self.grid.y.num, self.grid.x.num) if self.dims == 2 else (self.grid.x.num,)

    def identity(self) -> str:
        """Hash of what determines the numbers (not where they go or who computes)."""
        d = self.model_dump(mode="json", exclude={"output", "cluster"})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


class TrainSpec(Strict):
    """Train a model and save a checkpoint per epoch."""

    name: str
    model: ModelSpec
    data: DataSpec
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    epochs: int = Field(10, gt=0)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(64, gt=0)
    seed: int = Field(0, description="seed of the shuffling")
    output: str | None = Field(None, description="checkpoint folder (default runs/<name>)")

    _name = field_validator("name")(_check_name)


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: where (dotted field path) and what to do."""
    tags = {"digits", "synthetic", "import", "random_plane", "random_line", "line_between", "plane_through"}
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in tags and not str(p).startswith("function-")) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling against `landscape schema`"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level")
    return raw


def load_any_spec(path: str | Path) -> "ScanSpec | TrainSpec":
    """A scan spec, or a training spec when the file has `epochs` and no `slice`."""
    raw = _read_yaml(Path(path))
    return load_spec(path, TrainSpec if "epochs" in raw and "slice" not in raw else ScanSpec)


def load_spec(path: str | Path, cls: type[BaseModel] = ScanSpec):
    """Read and validate a YAML spec; SpecError with one line per problem."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise SpecError(format_validation_error(e, str(path))) from None

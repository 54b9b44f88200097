"""The scan spec: a slice of weight space, a grid on it, and how to evaluate it."""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union, get_args

from pydantic import Field, field_validator, model_validator

from landscape.metric_arrays import METRIC_FAMILIES, array_names

from .base import Seed, Strict, UNION_TAGS, check_name
from .hessian import HessianOptions, HessianPlane
from .curve import CurvePlaneSlice, CurveSlice
from .selection import ParamsChoice
from .parts import ClusterSpec, DataSpec, EvaluatorSpec, Grid, ModelSpec
from .trajectory import TrajectoryPath, TrajectoryPCA

Normalization = Literal["filter", "layer", "weight", "none"]
MAX_TILES = 1_000_000  # the driver keeps a done-mask and a queue per tile
MAX_TILE_SIDE = 4096  # points per tile side
MAX_TILE_POINTS = 1 << 22  # points per tile: an actor's per-point sums (float64, per metric) stay ~32 MiB each


class RandomPlane(ParamsChoice):
    """Two filter-normalized Gaussian directions around a checkpoint (Li et al.)."""

    dims: ClassVar[int] = 2
    kind: Literal["random_plane"]
    checkpoint: Path = Field(description="the center (a state_dict file)")
    seed: Seed = Field(0, description="seed of the random directions")
    normalization: Normalization = "filter"
    ignore: Literal["biasbn", "none"] = Field("biasbn", description="biasbn: zero 1-D parameters in the directions")


class RandomLine(RandomPlane):
    dims: ClassVar[int] = 1
    kind: Literal["random_line"]


class LineBetween(ParamsChoice):
    """w(alpha) = a + alpha * (b - a): a at 0, b at 1."""

    dims: ClassVar[int] = 1
    kind: Literal["line_between"]
    checkpoints: tuple[Path, Path]


class PlaneThrough(ParamsChoice):
    """Plane through three checkpoints; Gram-Schmidt basis, Euclidean coordinates."""

    dims: ClassVar[int] = 2
    kind: Literal["plane_through"]
    checkpoints: tuple[Path, Path, Path]


SliceSpec = Annotated[
    Union[
        RandomPlane, RandomLine, LineBetween, PlaneThrough, TrajectoryPCA, TrajectoryPath, HessianPlane, CurveSlice,
        CurvePlaneSlice,
    ],
    Field(discriminator="kind"),
]
UNION_TAGS.update({"random_plane", "random_line", "line_between", "plane_through"})
UNION_TAGS.update({"trajectory_pca", "trajectory"})
UNION_TAGS.add("hessian_plane")
UNION_TAGS.update({"curve", "curve_plane"})


def slice_checkpoints(s) -> list[Path]:
    """Every checkpoint file a slice spec names (for validation and for shipping with a job)."""
    if hasattr(s, "files"):  # slices that resolve their files (a trajectory's glob)
        return s.files()
    one = getattr(s, "checkpoint", None)
    return [Path(one)] if one is not None else [Path(p) for p in getattr(s, "checkpoints", None) or ()]


class Refine(Strict):
    """After the preview's coarse pass, the tiles where `metric` changes most between neighbours first."""

    metric: str = Field("loss", description="the metric array whose change between coarse neighbours ranks the tiles")
    fraction: float = Field(0.1, gt=0, le=1, allow_inf_nan=False, description="share of the tiles refined first")


def split_choices(annotation) -> list[str]:
    """The split names a data spec's `split` annotation allows (Literal[...], possibly with None)."""
    args = get_args(annotation)
    return [a for a in args if isinstance(a, str)] or [c for a in args for c in split_choices(a)]


class ScanSpec(Strict):
    """A loss-landscape scan."""

    name: str = Field(description="names the default output results/<name>.zarr")
    model: ModelSpec
    data: DataSpec
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    slice: SliceSpec
    grid: Grid
    metrics: list[str] = Field(
        ["loss", "accuracy"], description=f"per-point metrics; loss and accuracy always, plus any of {', '.join(METRIC_FAMILIES)}"
    )
    tile: int | tuple[int, int] = Field(
        32, description=f"tile = Zarr chunk, in points per axis ([rows, cols] or one int; at most {MAX_TILE_SIDE} per side, "
        f"{MAX_TILE_POINTS:,} points)"
    )
    preview: int | None = Field(
        None,
        description="progressive preview: evaluate every p-th row and column first (p a power of two, 2..256), "
        "then every p/2-th, ..., then the rest; the same values, no point evaluated twice",
    )
    refine: Refine | None = Field(
        None, description="with preview: after the coarse pass, evaluate first where the surface changes most (same values)"
    )
    precision: Literal["fp32", "tf32", "bf16"] = Field("fp32", description="arithmetic of the forward passes")
    data_chunk: int | None = Field(None, gt=0, description="samples per forward pass (default: from the device's memory)")
    batchnorm: Literal["eval", "recompute"] | None = Field(
        None,
        description="eval: BatchNorm uses the running statistics the slice carries; recompute: re-estimate them at every "
        "grid point from the data (update_bn), then evaluate. Default: eval (recompute for curve and curve_plane)",
    )
    batchnorm_samples: int | None = Field(None, gt=0, description="recompute from a seeded subset of this many samples")
    eval: list[str] | None = Field(
        None, min_length=1, description="data splits scanned at every point, e.g. [train, test]: `data` with its split "
        "set to each; the first gives loss, accuracy, ..., each other one <split>_loss, <split>_accuracy, ...",
    )
    batchnorm_data: str | None = Field(
        None, description="with batchnorm: recompute, re-estimate the statistics from this split of `data` (e.g. train) "
        "for every split scanned (default: each split from its own samples)",
    )
    batchnorm_batch: int = Field(128, gt=0, description="samples per train-mode pass when recomputing statistics")
    allow_nonfinite: bool = Field(False, description="scan checkpoints holding NaN or inf weights instead of refusing them")
    evaluator: EvaluatorSpec = Field(default_factory=EvaluatorSpec)
    output: str | None = Field(None, description="result path or URL (default results/<name>.zarr)")
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    hessian: HessianOptions | None = Field(None, description="options of the hessian metric (Lanczos steps, tolerance, seed)")

    _name = field_validator("name")(check_name)

    @field_validator("precision")
    @classmethod
    def _hessian_precision(cls, v, info):
        if v == "bf16" and "hessian" in (info.data.get("metrics") or []):
            raise ValueError("the hessian metric needs precision fp32 or tf32 (second derivatives in bf16 keep about 2 digits)")
        return v

    @field_validator("batchnorm")
    @classmethod
    def _hessian_batchnorm(cls, v, info):
        if v == "recompute" and "hessian" in (info.data.get("metrics") or []):
            raise ValueError("the hessian metric takes BatchNorm in eval mode; it cannot be combined with batchnorm: recompute")
        return v

    @field_validator("hessian")
    @classmethod
    def _hessian_listed(cls, v, info):
        if v is not None and "metrics" in info.data and "hessian" not in info.data["metrics"]:
            raise ValueError("options for a metric the scan does not compute: add hessian to metrics, or remove this block")
        return v

    @field_validator("tile", mode="before")
    @classmethod
    def _tile(cls, v):
        """Whole numbers from 1 to MAX_TILE_SIDE, said plainly (pydantic's own words name int parsing, not the tile)."""
        form = f"give a positive integer or [rows, cols], each at most {MAX_TILE_SIDE:,}"
        sizes = list(v) if isinstance(v, (list, tuple)) else [v]
        if isinstance(v, (list, tuple)) and len(sizes) != 2:
            raise ValueError(f"{form}; got a list of {len(sizes)}")
        whole = []
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or (isinstance(s, float) and not s.is_integer()):
                raise ValueError(f"{form}; got {s!r}")
            if s <= 0:
                raise ValueError(f"tile sizes must be positive; got {s:g}")
            if s > MAX_TILE_SIDE:
                raise ValueError(
                    f"{s:,.0f} points per side is more than {MAX_TILE_SIDE:,}: a tile is one Zarr chunk, allocated, evaluated and "
                    "returned whole by one actor (a tile larger than the grid gains nothing; the default is 32)"
                )
            whole.append(int(s))
        return whole[0] if not isinstance(v, (list, tuple)) else tuple(whole)

    @field_validator("preview")
    @classmethod
    def _preview(cls, v):
        if v is not None and (v < 2 or v > 256 or v & (v - 1)):
            raise ValueError(f"must be a power of two from 2 to 256 (e.g. 8: every 8th row and column first), got {v}")
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        unknown = [m for m in v if m not in METRIC_FAMILIES]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; expected any of {', '.join(METRIC_FAMILIES)}")
        # loss and accuracy come with every pass over the data; keep the user's order otherwise.
        return ["loss", "accuracy"] + [m for m in dict.fromkeys(v) if m not in ("loss", "accuracy")]

    @model_validator(mode="after")
    def _grid_fits_slice(self):
        plane = self.dims == 2
        if plane and self.grid.y is None:
            raise ValueError(f"slice {self.slice.kind} is a plane: grid.y is required")
        if not plane and self.grid.y is not None:
            raise ValueError(f"slice {self.slice.kind} is a line: remove grid.y")
        if prod(self.tile_shape) > MAX_TILE_POINTS:
            raise ValueError(
                f"tile {list(self.tile_shape)} holds {prod(self.tile_shape):,} points, more than {MAX_TILE_POINTS:,} (2048 x 2048): "
                "an actor allocates and returns a tile's values at once; use a smaller tile"
            )
        tiles = prod(-(-n // t) for n, t in zip(self.grid_shape, self.tile_shape))
        if tiles > MAX_TILES:
            raise ValueError(
                f"tile {list(self.tile_shape)} cuts the grid into {tiles:,} tiles, more than {MAX_TILES:,}; use a larger tile"
            )
        check_grid = getattr(self.slice, "check_grid", None)  # a slice's own limits on its coordinates
        if check_grid is not None:
            check_grid(self.grid)
        if "ensemble" in self.metrics and self.loss != "cross_entropy":
            raise ValueError("metrics: ensemble averages class probabilities; it needs loss: cross_entropy")
        if self.data.tolerance is not None and self.batchnorm_mode == "recompute":
            raise ValueError(
                "data.tolerance (sequential evaluation) evaluates a point step by step; batchnorm: recompute would re-estimate "
                "its statistics at every step: use batchnorm: eval, or remove data.tolerance"
            )
        if self.refine is not None and self.preview is None:
            raise ValueError("refine orders the passes after preview's coarse one: set preview too (e.g. preview: 8)")
        if self.refine is not None and self.refine.metric not in array_names(self.metrics):
            raise ValueError(
                f"refine.metric {self.refine.metric!r} is not computed by this scan; use one of {', '.join(array_names(self.metrics))}"
            )
        if self.batchnorm_samples is not None and self.batchnorm_mode != "recompute":
            raise ValueError("batchnorm_samples is used only with batchnorm: recompute")
        return self

    @model_validator(mode="after")
    def _splits(self):
        names = list(self.eval or []) + ([self.batchnorm_data] if self.batchnorm_data else [])
        if self.eval and len(set(self.eval)) != len(self.eval):
            raise ValueError(f"eval lists a split twice: {self.eval}")
        if self.batchnorm_data and self.batchnorm_mode != "recompute":
            raise ValueError("batchnorm_data is used only with batchnorm: recompute")
        if self.eval and len(self.eval) > 1 and self.data.tolerance is not None:
            raise ValueError("data.tolerance (sequential evaluation) applies to a scan of one split: scan each split of eval "
                             "in its own spec, or remove data.tolerance")
        for name in names:
            self.split_data(name)
        return self

    def split_data(self, name: str):
        """`data` with its split set to `name` (ValueError, one line, if this data kind has no such split)."""
        if "split" not in type(self.data).model_fields:
            raise ValueError(f"data kind {self.data.kind} has no splits; eval and batchnorm_data need digits or a file data set")
        choices = split_choices(type(self.data).model_fields["split"].annotation)
        if name not in choices:
            raise ValueError(f"data kind {self.data.kind} has no split {name!r}; expected one of {', '.join(choices)}")
        return type(self.data).model_validate({**dict(self.data), "split": name})

    @property
    def main_data(self):
        """The data of the scan's unprefixed arrays: eval's first split, else `data`."""
        return self.split_data(self.eval[0]) if self.eval else self.data

    @model_validator(mode="after")
    def _fit_needs_a_path(self):
        if self.grid.fit == "curve":
            if self.slice.kind != "curve_plane":
                raise ValueError(f"grid.fit: curve applies only to curve_plane slices, not {self.slice.kind}; give grid.x "
                                 "(and grid.y) min and max")
            return self
        if self.grid.fit is not None and not getattr(self.slice, "has_path", False):
            raise ValueError(
                f"grid.fit: {self.grid.fit} applies only to trajectory slices (trajectory_pca, trajectory), "
                f"not {self.slice.kind}; give grid.x (and grid.y) min and max"
            )
        return self

    @property
    def dims(self) -> int:
        return self.slice.dims

    @property
    def tile_shape(self) -> tuple[int, ...]:
        t = (self.tile, self.tile) if isinstance(self.tile, int) else tuple(self.tile)
        return t if self.dims == 2 else (t[-1],)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Result array shape: (ny, nx), or (nx,) for lines."""
        return (self.grid.y.num, self.grid.x.num) if self.dims == 2 else (self.grid.x.num,)

    @property
    def batchnorm_mode(self) -> str:
        return self.batchnorm or getattr(self.slice, "default_batchnorm", "eval")

    def identity(self) -> str:
        """Hash of what determines the numbers (not where they go or who computes).

        Fields left at their defaults are left out, so a field added later (with a default
        that changes nothing) does not change the identity of results made before it.
        """
        files = {"slice_files": [str(p) for p in self.slice.files()]} if hasattr(self.slice, "files") else {}  # a glob
        own = self.numbers_identity({"output", "cluster", "refine"}, exclude_defaults=True, **files)  # refine: order only
        record = self.submitted or {}
        if record.get("identity") and record.get("copy_identity") == own:
            # A submitted job's copy of the spec names uploaded copies of the checkpoints: its identity is that
            # of the spec as written, computed where it was written, so it resumes a local run's result (and back).
            # Only while the copy is unchanged: an edited copy is a new spec with its own identity.
            return record["identity"]
        return own

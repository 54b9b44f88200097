"""Curvature specs: `landscape hessian` at a point, the scan's `hessian:` block, the `hessian_plane` slice."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .base import Seed, Strict, check_name
from .parts import DataSpec, ModelSpec
from .sampling import all_the_data
from .selection import ParamsChoice

Normalization = Literal["filter", "layer", "weight", "none"]


class HessianOptions(ParamsChoice):
    """Per-point curvature of a scan (`metrics: [loss, accuracy, hessian]`): Lanczos at every grid point."""

    iterations: int = Field(100, gt=0, le=10_000, description="Lanczos steps (H v products) per grid point, at most (a cap)")
    tol: float = Field(
        1e-3, ge=1e-6, lt=1,
        description="stop a point once each extreme's residual is below tol x |that eigenvalue| (hessian_residual "
        "records the larger ratio; points above tol are marked in the plots and counted)",
    )
    seed: Seed = Field(0, description="seed of the Lanczos start vector (the same at every point)")
    data_chunk: int | None = Field(None, gt=0, description="samples per H v pass (default: the evaluator's data chunk)")


class HessianPlane(ParamsChoice):
    """The plane of the top two Hessian eigenvectors at a checkpoint; their eigenvalues go into slice_info."""

    dims: ClassVar[int] = 2
    kind: Literal["hessian_plane"]
    checkpoint: Path = Field(description="the center (a state_dict file)")
    normalization: Normalization = Field(
        "none", description="none: unit eigenvectors (coordinates are Euclidean distances); filter/layer/weight: Li et al.'s rescaling"
    )
    ignore: Literal["biasbn", "none"] = Field("biasbn", description="with a normalization: biasbn zeroes 1-D parameters")
    iterations: int = Field(100, gt=0, le=100_000, description="Lanczos steps, at most")
    tol: float = Field(1e-5, ge=1e-6, lt=1, description="residual tolerance of the two eigenpairs, relative to max|eigenvalue| (fp32: >= 1e-6)")
    seed: Seed = Field(0, description="seed of the Lanczos start vector")


class HessianAt(Strict):
    """Where the Hessian is taken: a checkpoint, or a grid point of a scan's result."""

    checkpoint: Path | None = Field(None, description="a state_dict file")
    result: str | None = Field(None, description="a scan's result (path or URL); with x (and y for planes)")
    x: float | None = Field(None, allow_inf_nan=False, description="grid coordinate along the first direction")
    y: float | None = Field(None, allow_inf_nan=False, description="grid coordinate along the second direction (planes)")
    extrapolate: bool = Field(False, description="allow a point of the result's plane outside its grid")

    @model_validator(mode="after")
    def _one_place(self):
        if (self.checkpoint is None) == (self.result is None):
            raise ValueError("give exactly one of checkpoint or result")
        if self.checkpoint is not None and (self.x is not None or self.y is not None):
            raise ValueError("x and y locate a grid point of a result; remove them or use result:")
        if self.result is not None and self.x is None:
            raise ValueError("a result's grid point needs x (and y for a plane)")
        return self

    def describe(self) -> str:
        if self.checkpoint is not None:
            return str(self.checkpoint)
        return f"{self.result} at x={self.x:g}" + (f", y={self.y:g}" if self.y is not None else "")


class EigenOptions(Strict):
    iterations: int = Field(100, gt=0, le=100_000, description="Lanczos steps (H v products), at most")
    tol: float = Field(1e-4, ge=1e-6, lt=1, description="stop once every wanted residual is below tol x max|eigenvalue| (fp32: >= 1e-6)")
    seed: Seed = Field(0, description="seed of the start vector")


class TraceOptions(Strict):
    samples: int = Field(64, gt=1, le=1_000_000, description="Rademacher probes, at most (the standard error needs >= 2)")
    tol: float | None = Field(None, gt=0, description="stop early once the standard error is below tol x |trace|")
    batch: int | None = Field(None, gt=0, description="probes per H v pass (default: 1 on CPU, where it measured fastest; 8 on GPU)")
    seed: Seed = Field(1, description="seed of the probes")


class DensityOptions(Strict):
    runs: int = Field(4, gt=0, le=1000, description="stochastic Lanczos quadrature runs (Rademacher start vectors; on GPU up to 8 share each pass)")
    iterations: int = Field(64, gt=0, le=100_000, description="Lanczos steps per run")
    sigma: float = Field(0.01, gt=0, description="Gaussian broadening, as a fraction of the spread of the Ritz values")
    points: int = Field(1000, ge=10, le=1_000_000, description="points of the density's grid")
    seed: Seed = Field(2, description="seed of the start vectors")


class HessianSpec(Strict):
    """Top-k eigenpairs, smallest eigenvalue, trace and spectral density of the loss's Hessian at one point."""

    name: str = Field(description="names the default output results/<name>.zarr")
    at: HessianAt
    top_k: int = Field(gt=0, description="how many of the largest eigenvalues (and their eigenvectors)")
    model: ModelSpec | None = Field(None, description="required with at.checkpoint; default: the result's")
    data: DataSpec | None = Field(None, description="required with at.checkpoint; default: the result's")
    _all_the_data = field_validator("data")(all_the_data)
    loss: Literal["cross_entropy", "mse"] | None = Field(None, description="default: the result's, else cross_entropy")
    eigen: EigenOptions = Field(default_factory=EigenOptions)
    trace: TraceOptions | None = Field(default_factory=TraceOptions, description="null: skip the trace")
    density: DensityOptions | None = Field(default_factory=DensityOptions, description="null: skip the density")
    precision: Literal["fp32", "tf32"] = Field("fp32", description="arithmetic of the H v products (no bf16: 2 digits)")
    data_chunk: int | None = Field(None, gt=0, description="samples per H v pass (default: from the device's memory)")
    allow_nonfinite: bool = Field(False, description="accept a checkpoint holding NaN or inf (its results are NaN)")
    output: str | None = Field(None, description="result path or URL (default results/<name>.zarr)")
    blocks: list[str] | None = Field(
        None, min_length=1,
        description="also the spectrum of each block's Hessian: [auto] (one block per layer) or globs (each one block; "
        "weights: every tensor of dimension > 1); --blocks on the command line sets it",
    )

    _name = field_validator("name")(check_name)

    @field_validator("blocks")
    @classmethod
    def _auto_alone(cls, v):
        if v is not None and "auto" in v and len(v) > 1:
            raise ValueError("auto picks the blocks itself: give auto alone, or globs")
        return v

    @model_validator(mode="after")
    def _complete(self):
        if self.at.checkpoint is not None and (self.model is None or self.data is None):
            raise ValueError("with at.checkpoint, model and data are required (a result's point takes the result's)")
        if self.eigen.iterations < self.top_k:
            raise ValueError(f"eigen.iterations {self.eigen.iterations} is below top_k {self.top_k}; Lanczos needs at least top_k steps")
        return self

    def identity(self, result_identity: str | None = None) -> str:
        """Hash of what determines the numbers (and of the result the point comes from)."""
        return self.numbers_identity({"output"} | ({"blocks"} if self.blocks is None else set()), result_identity=result_identity)

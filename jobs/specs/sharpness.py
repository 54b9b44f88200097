"""The `landscape sharpness` spec: sharpness numbers at one point (landscape/sharpness.py, landscape/spectrum.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Seed, Strict, check_name
from .hessian import EigenOptions, HessianAt, TraceOptions
from .parts import DataSpec, ModelSpec
from .selection import ParamsChoice


class AscentOptions(Strict):
    steps: int = Field(20, ge=0, le=10_000, description="projected ascent steps after the first-order maximizer")
    seed: Seed = Field(0, description="seed of the start direction where the gradient is exactly zero")


class SharpnessSpec(ParamsChoice):
    """Top Hessian eigenvalue, trace, Keskar et al.'s epsilon-sharpness and the adaptive (ASAM) sharpness at one point."""

    name: str = Field(description="names the default output results/<name>.zarr")
    at: HessianAt
    model: ModelSpec | None = Field(None, description="required with at.checkpoint; default: the result's")
    data: DataSpec | None = Field(None, description="required with at.checkpoint; default: the result's")
    loss: Literal["cross_entropy", "mse"] | None = Field(None, description="default: the result's, else cross_entropy")
    epsilon: float = Field(1e-3, gt=0, le=1, allow_inf_nan=False,
                           description="Keskar et al.'s box: |z_i| <= epsilon (|x_i| + 1) (they report 1e-3 and 5e-4)")
    rho: float = Field(0.05, gt=0, le=10, allow_inf_nan=False, description="adaptive sharpness: ||z / (|x| + eta)||_2 <= rho")
    eta: float = Field(0.01, ge=0, le=10, allow_inf_nan=False, description="adaptive sharpness: the offset of |x| (ASAM's eta)")
    ascent: AscentOptions = Field(default_factory=AscentOptions)
    eigen: EigenOptions = Field(default_factory=EigenOptions)
    trace: TraceOptions | None = Field(default_factory=TraceOptions, description="null: skip the trace")
    precision: Literal["fp32", "tf32"] = Field("fp32", description="arithmetic of the gradients and H v products")
    data_chunk: int | None = Field(None, gt=0, description="samples per pass (default: from the device's memory)")
    allow_nonfinite: bool = Field(False, description="accept a checkpoint holding NaN or inf (its results are NaN)")
    output: str | None = Field(None, description="result path or URL (default results/<name>.zarr)")

    _name = field_validator("name")(check_name)

    @property
    def top_k(self) -> int:  # resolve_point checks it against the parameter count
        return 1

    def identity(self, result_identity: str | None = None) -> str:
        return self.numbers_identity({"output"}, result_identity=result_identity)

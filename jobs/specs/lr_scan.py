"""The learning-rate scan spec: short trainings at log-spaced rates on the actors, bisection, range test."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import LearningRate, Seed, Strict, check_name
from .parts import ClusterSpec, DataSpec, ModelSpec
from .sampling import all_the_data


class LRRange(Strict):
    """`num` learning rates evenly spaced in log from `lo` to `hi` inclusive."""

    lo: LearningRate = Field(description="lowest learning rate (> 0)")
    hi: LearningRate = Field(description="highest learning rate (> lo)")
    num: int = Field(16, ge=2, le=10_000, description="number of rates in the scan")

    @model_validator(mode="after")
    def _order(self):
        if self.lo >= self.hi:
            raise ValueError(f"lo {self.lo:g} >= hi {self.hi:g}; lo must be below hi")
        return self


class BisectSpec(Strict):
    """`--bisect`: narrow [lo, hi] around the breakthrough, several rates per round."""

    tolerance: float = Field(0.05, gt=0, allow_inf_nan=False, description="stop when the bracket spans at most this many decades")
    probes: int = Field(3, ge=1, le=1000, description="rates tried per round (at once, on the actors); the bracket shrinks (probes+1)-fold")
    max_rounds: int = Field(20, ge=1, le=200)


class RangeTestSpec(Strict):
    """The learning-rate range test beside the scan: one run, the rate growing exponentially per step."""

    enabled: bool = True
    lo: LearningRate | None = Field(None, description="first rate (default learning_rates.lo)")
    hi: LearningRate | None = Field(None, description="last rate (default learning_rates.hi)")
    steps: int | None = Field(None, ge=3, le=1_000_000, description="steps (default: as many as one scan run takes, at least 100)")
    smoothing: float = Field(0.98, ge=0, lt=1, description="beta of the bias-corrected moving average of the loss")
    diverge_factor: float = Field(4.0, gt=1, allow_inf_nan=False, description="stop once the smoothed loss exceeds this multiple of its minimum")

    @model_validator(mode="after")
    def _order(self):
        if self.lo is not None and self.hi is not None and self.lo >= self.hi:
            raise ValueError(f"lo {self.lo:g} >= hi {self.hi:g}; lo must be below hi")
        return self


class LRScanSpec(Strict):
    """`landscape lr-scan`: for each rate a short training from the same weights and batch order."""

    name: str
    model: ModelSpec
    data: DataSpec
    _all_the_data = field_validator("data")(all_the_data)
    learning_rates: LRRange
    epochs: int = Field(3, le=10_000, description="epochs per rate (>= 1: the ratio compares consecutive epochs)")
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0, le=10)
    batch_size: int = Field(64, gt=0)
    seed: Seed = Field(0, description="seed of the shuffling (the same for every rate)")
    track: str | None = Field(None, description="parameter whose median gradient is followed (default: the first weight matrix)")
    collapse_ratio: float = Field(
        0.1, gt=0, lt=1, description="a rate collapses when the median gradient falls below this fraction of its value one epoch before"
    )
    probe_samples: int | None = Field(None, gt=0, description="gradient and accuracy on a seeded subset of this many training samples (default: all)")
    bisect: BisectSpec = Field(default_factory=BisectSpec)
    range_test: RangeTestSpec = Field(default_factory=RangeTestSpec)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    output: str | None = Field(None, description="result path or URL (default results/<name>-lr-scan.zarr, -lr-bisect.zarr)")

    _name = field_validator("name")(check_name)

    @field_validator("epochs")
    @classmethod
    def _epochs(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"an LR scan needs epochs >= 1 (each ratio compares an epoch with the one before), got {v}")
        return v

    def identity(self, method: str) -> str:
        """Hash of what determines the numbers of `method` (scan or bisect), not where they go or who computes."""
        return self.numbers_identity({"output", "cluster", "bisect" if method == "scan" else "none"}, method=method)

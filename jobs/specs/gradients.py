"""The gradient-health spec: train (or only look at initialization) and record per-parameter gradient statistics."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import LearningRate, Seed, Strict, check_name
from .parts import ClusterSpec, DataSpec, ModelSpec
from .sampling import all_the_data


class GradientsSpec(Strict):
    """`landscape gradients`: per named parameter and recorded step, log10|grad| quantiles, |grad| and |dw|/|w|."""

    name: str
    model: ModelSpec
    data: DataSpec
    _all_the_data = field_validator("data")(all_the_data)
    record: Literal["step", "epoch"] = Field(
        description="step: every `every`-th training step, from that step's mini-batch gradient and its update; "
        "epoch: at initialization and after each epoch, from the gradient of the probe samples (no step taken)"
    )
    every: int = Field(1, gt=0, description="with record: step, record every N-th step (step 0 always)")
    epochs: int = Field(1, ge=0, le=100_000, description="training epochs; 0 = only the gradient at initialization")
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: LearningRate = 0.01
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0, le=10)
    batch_size: int = Field(64, gt=0)
    seed: Seed = Field(0, description="seed of the shuffling")
    probe_samples: int | None = Field(
        None, gt=0, description="with record: epoch, a seeded subset of this many training samples (default: all)"
    )
    cluster: ClusterSpec = Field(default_factory=ClusterSpec, description="the actor that trains (one: the training does not split)")
    output: str | None = Field(None, description="result path or URL (default results/<name>-gradients.zarr)")

    _name = field_validator("name")(check_name)

    def identity(self) -> str:
        """Hash of what determines the numbers (not where they go, nor who computes them)."""
        return self.numbers_identity({"output", "cluster"})

"""The training spec: a built-in (or imported) model trained with seeded SGD."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import LearningRate, Seed, Strict, check_name
from .parts import DataSpec, ModelSpec
from .sampling import all_the_data


class TrainSpec(Strict):
    """Train a model and save a checkpoint per epoch."""

    name: str
    model: ModelSpec
    data: DataSpec
    _all_the_data = field_validator("data")(all_the_data)
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    epochs: int = Field(10, gt=0, le=100_000)
    lr: LearningRate = 0.1
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=10)
    batch_size: int = Field(64, gt=0)
    seed: Seed = Field(0, description="seed of the shuffling")
    output: str | None = Field(None, description="checkpoint folder (default runs/<name>)")
    save_every: int | None = Field(
        None, gt=0, description="also save step_NNN.pt every this many optimizer steps (mini-batches), from step_000.pt "
        "(the initial weights) to the last step; names sort in training order (a finer trajectory than epochs)",
    )

    _name = field_validator("name")(check_name)

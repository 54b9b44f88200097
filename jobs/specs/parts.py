"""Spec parts shared by several job kinds: grid axes, model, data, cluster, evaluator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from landscape.model_kinds import MODEL_KINDS

from .base import UNION_TAGS, Seed, Strict
from .sampling import Sampling
from .subset_rule import SubsetRuleMarked
from .datasets import Cifar10Data, Cifar100Data, FashionMnistData, ImageFolderData, MnistData, SvhnData

# Grid coordinates are applied in float32 to weights of order 1: beyond this they
# overflow or drown every weight; no landscape of interest lies that far out.
COORD_LIMIT = 1e6
MAX_POINTS = 100_000_000  # default limit of a scan's grid points (grid.max_points raises it)


class Axis(Strict):
    """One grid axis: `num` evenly spaced points from `min` to `max` inclusive (min/max left out only under grid.fit)."""

    min: float | None = Field(None, description=f"first coordinate (finite, |min| <= {COORD_LIMIT:g}); required unless grid.fit")
    max: float | None = Field(None, description=f"last coordinate (finite, |max| <= {COORD_LIMIT:g}); required unless grid.fit")
    num: int = Field(gt=0, description="number of points (>= 1; 1 needs min == max)")

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is None:  # grid.fit sets it (Grid checks that one of the two is given)
            return v
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v}")
        if abs(v) > COORD_LIMIT:
            raise ValueError(f"{v:g} is beyond +-{COORD_LIMIT:g}; grid coordinates that far out overflow float32 weights")
        return v

    @model_validator(mode="after")
    def _range(self):
        if self.min is None or self.max is None:
            return self
        if self.num == 1 and self.max != self.min:
            raise ValueError(f"num: 1 is one point, but min {self.min} != max {self.max}; set min == max or num >= 2")
        if self.num > 1 and self.max < self.min:
            raise ValueError(f"reversed range: min {self.min} > max {self.max}; swap them")
        if self.num > 1 and self.max == self.min:
            raise ValueError(f"empty range: min == max == {self.min} with num {self.num}; widen it or set num: 1")
        return self


class Grid(Strict):
    x: Axis = Field(description="horizontal axis (first direction)")
    y: Axis | None = Field(None, description="vertical axis (second direction); only for planes")
    max_points: int = Field(
        MAX_POINTS, gt=0, description="refuse grids with more points than this (a guard against typos; raise it on purpose)"
    )
    fit: Literal["path", "curve"] | None = Field(
        None, description="path: the range covers a trajectory's projected path (trajectory slices); curve: "
        "curve_plane grids as Garipov et al.'s plane.py, x from -margin to 1 + margin times |w2 - w1|, y likewise "
        "times the bend's distance from the line (leave out min/max)",
    )
    margin: float | None = Field(
        None, ge=0, le=100, allow_inf_nan=False,
        description="with fit: added on each side, as a fraction of the path's extent (default 0.25), or of |w2 - w1| "
        "and the bend's offset (fit: curve, default 0.2 as plane.py)",
    )

    @model_validator(mode="after")
    def _fit(self):
        axes = [(n, a) for n, a in (("x", self.x), ("y", self.y)) if a is not None]
        if self.fit is not None:
            given = [f"{n}.{k}" for n, a in axes for k in ("min", "max") if getattr(a, k) is not None]
            if given:
                raise ValueError(f"fit: {self.fit} sets the range from the path: remove {', '.join(given)} (or remove fit)")
            if any(a.num < 2 for _, a in axes):
                raise ValueError(f"fit: {self.fit} spreads the points over a fitted range: give each axis num >= 2")
        else:
            if self.margin is not None:
                raise ValueError("margin is used only with fit: path or fit: curve")
            missing = [f"{n}.{k}" for n, a in axes for k in ("min", "max") if getattr(a, k) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)}: required field missing (or set fit: path, for trajectory slices)")
        return self

    @property
    def fit_margin(self) -> float:
        return (0.2 if self.fit == "curve" else 0.25) if self.margin is None else self.margin

    @model_validator(mode="after")
    def _size(self):
        points = self.x.num * (self.y.num if self.y is not None else 1)
        if points > self.max_points:
            shape = f"{self.x.num:,} x {self.y.num:,}" if self.y is not None else f"{self.x.num:,}"
            raise ValueError(
                f"the grid has {points:,} points ({shape}), more than grid.max_points = {self.max_points:,}; "
                "use fewer points, or raise grid.max_points if you mean it"
            )
        return self

    @property
    def points(self) -> int:
        return self.x.num * (self.y.num if self.y is not None else 1)


class ModelSpec(Strict):
    kind: str = Field(description=f"one of {', '.join(MODEL_KINDS)}, 'import' with `factory`, or 'hf_causal_lm'")
    options: dict = Field(default_factory=dict, description="keyword options of the model (e.g. widths: [64, 64])")
    factory: str | None = Field(None, description="'package.module:function' returning an nn.Module (kind: import)")
    seed: Seed = Field(0, description="seed of the initial weights (training)")
    name: str | None = Field(None, description="kind torchvision: the model's name in torchvision.models, e.g. resnet18")
    path: Path | None = Field(None, description="kind hf_causal_lm: a local folder written by save_pretrained")
    config: dict | None = Field(
        None, description="kind hf_causal_lm: a config (model_type, default gpt2, and its fields) for a randomly initialised model",
    )

    @model_validator(mode="after")
    def _causal_lm(self):
        if self.kind == "hf_causal_lm":
            if (self.path is None) == (self.config is None):
                raise ValueError("kind hf_causal_lm needs exactly one of path (a save_pretrained folder) or config")
            if self.options:
                raise ValueError("kind hf_causal_lm takes path or config, not options")
        elif self.path is not None or self.config is not None:
            raise ValueError("path and config are only used with kind: hf_causal_lm")
        return self

    def lm_options(self) -> dict:
        """The factory options of kind hf_causal_lm (empty for other kinds)."""
        if self.kind != "hf_causal_lm":
            return {}
        return {"path": str(self.path)} if self.path is not None else {"config": dict(self.config)}

    @model_validator(mode="after")
    def _name(self):
        if self.kind == "torchvision" and not self.name:
            raise ValueError("kind torchvision needs name: e.g. resnet18 (torchvision.models.list_models())")
        if self.kind != "torchvision" and self.name is not None:
            raise ValueError("name is only used with kind: torchvision")
        return self

    @model_validator(mode="after")
    def _kind(self):
        if self.kind == "hf_causal_lm":
            if self.factory:
                raise ValueError("factory is only used with kind: import")
        elif self.kind == "import":
            if not self.factory:
                raise ValueError("kind 'import' needs factory: 'package.module:function'")
        elif self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; expected one of {', '.join(MODEL_KINDS)} or 'import'")
        elif self.factory:
            raise ValueError("factory is only used with kind: import")
        return self


class DigitsData(SubsetRuleMarked):
    kind: Literal["digits"]
    split: Literal["all", "train", "test"] = Field(
        "all", description="all 1,797 samples, or the train / test part of a seeded split stratified by class")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="the test part's share of each class (split train/test)")
    split_seed: Seed = Field(0, description="seed of the train/test split")
    subset: int | None = Field(None, gt=0, description="seeded subsample of this many samples (of the split)")
    seed: Seed = Field(0, description="seed of the subsample")

    def _as_before(self, d: dict) -> dict:
        # Without a split the spec reads (and hashes, for run identities and resumes) as before splits existed.
        if self.split == "all":
            for k in ("split", "test_fraction", "split_seed"):
                d.pop(k, None)
        return d


class SyntheticData(SubsetRuleMarked):
    kind: Literal["synthetic"]
    n: int = Field(gt=0, le=10_000_000, description="number of samples")
    shape: list[Annotated[int, Field(gt=0)]] = Field(min_length=1, description="one sample's shape, e.g. [3, 32, 32]")
    classes: int = Field(10, gt=1, description="classes (or regression outputs)")
    task: Literal["classification", "regression"] = "classification"
    seed: Seed = 0
    subset: int | None = Field(None, gt=0)

    def _rule_changed_samples(self) -> bool:
        return self.subset is not None and self.task == "classification"  # regression: uniform, as before


class ImportData(SubsetRuleMarked):
    kind: Literal["import"]
    factory: str = Field(description="'package.module:function' returning (inputs, targets) or a Dataset")
    kwargs: dict = Field(default_factory=dict)
    subset: int | None = Field(None, gt=0)
    seed: Seed = 0


class TextData(Sampling):
    """Token blocks for a causal language model (landscape/text.py): a text file and a tokenizer, or token ids."""

    kind: Literal["text"]
    path: Path = Field(description="a text file, or token ids: .npy (any integer dtype) or .bin (raw values of dtype)")
    tokenizer: str | None = Field(None, description="a tokenizer.json, or a tokenizer folder (required for text)")
    block_size: int = Field(gt=0, le=1_000_000, description="tokens per sample (each sample predicts block_size tokens)")
    max_tokens: int | None = Field(None, gt=0, description="use the first max_tokens tokens only")
    dtype: Literal["uint16", "uint32", "int32", "int64"] = Field("uint16", description="value type of a .bin file (nanoGPT: uint16)")
    subset: int | None = Field(None, gt=0, description="a seeded subset of this many blocks")
    seed: Seed = 0


DataSpec = Annotated[
    Union[DigitsData, SyntheticData, ImportData, TextData, Cifar10Data, Cifar100Data, MnistData, FashionMnistData, SvhnData, ImageFolderData],
    Field(discriminator="kind"),
]
UNION_TAGS.update({"digits", "synthetic", "import", "text"})
UNION_TAGS.update({"cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "image_folder"})


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
        None,
        description="torch.compile the model (default: on for conv nets in scans of >= 1,000 points on CPU, "
        ">= 50,000 on GPU); if it fails to compile, the scan goes on without it and the result says why",
    )

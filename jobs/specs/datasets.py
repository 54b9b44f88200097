"""Spec parts of the data sets read from local files (landscape/datasets.py): CIFAR, MNIST, SVHN, image folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import Seed
from .sampling import Sampling


class FileData(Sampling):
    """A data set read from files under `root`; never downloaded."""

    root: Path = Field(description="folder holding the data set's files (as torchvision writes them, or the unpacked archive)")
    split: Literal["train", "test"] = Field("train", description="which split to read")
    normalize: bool = Field(True, description="subtract each channel's mean and divide by its std (the data set's usual constants)")
    mean: list[float] | None = Field(None, min_length=1, description="per-channel means instead of the usual ones (with std)")
    std: list[Annotated[float, Field(gt=0)]] | None = Field(None, min_length=1, description="per-channel stds instead of the usual ones (with mean)")
    subset: int | None = Field(None, gt=0, description="a seeded subset of this many samples, stratified by class")
    subset_fraction: float | None = Field(None, gt=0, le=1, description="a seeded stratified subset of this fraction of the samples")
    seed: Seed = Field(0, description="seed of the subset")

    @model_validator(mode="after")
    def _choices(self):
        if self.subset is not None and self.subset_fraction is not None:
            raise ValueError("give subset or subset_fraction, not both")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give mean and std together")
        if self.mean is not None and not self.normalize:
            raise ValueError("mean and std are used only with normalize: true")
        return self

    def load_kwargs(self) -> dict:
        """Keyword arguments of landscape.datasets.load_dataset."""
        return self.model_dump(exclude={"kind", *Sampling.model_fields})  # sequential evaluation is not the loader's


class Cifar10Data(FileData):
    kind: Literal["cifar10"]


class Cifar100Data(FileData):
    kind: Literal["cifar100"]


class MnistData(FileData):
    kind: Literal["mnist"]


class FashionMnistData(FileData):
    kind: Literal["fashion_mnist"]


class SvhnData(FileData):
    kind: Literal["svhn"]
    split: Literal["train", "test", "extra"] = Field("train", description="which split to read (extra: the 531k extra digits)")


class ImageFolderData(FileData):
    """Class-per-folder images (root/<class>/*.png, or Imagenette's root/train/<class>/*.JPEG)."""

    kind: Literal["image_folder"]
    split: Literal["train", "test"] | None = Field(
        None, description="train reads root/train, test reads root/val (or root/test); leave out when root holds the class folders"
    )
    size: int | None = Field(None, gt=0, description="resize the shorter side to this and centre-crop size x size")


FILE_DATA = (Cifar10Data, Cifar100Data, MnistData, FashionMnistData, SvhnData, ImageFolderData)
FILE_DATA_KINDS = ("cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "image_folder")

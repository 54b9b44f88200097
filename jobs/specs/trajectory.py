"""Slice specs of a training trajectory: its PCA plane (Li et al. section 7) and the path itself."""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from landscape.errors import SpecError

from .base import Strict
from .selection import ParamsChoice

_CHECKPOINTS = (
    "the trajectory in training order: a list of state_dict files, or a glob such as runs/digits-mlp/step_*.pt "
    "(sorted by name, numbers compared as numbers: ckpt_9 before ckpt_10)"
)


def natural_key(path: Path) -> list:
    """Sort key: digit runs compare as numbers (text and digits alternate, so types line up)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


class _Trajectory(Strict):
    has_path: ClassVar[bool] = True  # grid.fit: path applies
    min_checkpoints: ClassVar[int] = 2
    shape_name: ClassVar[str] = "a path (kind: trajectory)"
    checkpoints: list[Path] | str = Field(description=_CHECKPOINTS)

    @field_validator("checkpoints")
    @classmethod
    def _enough(cls, v):
        if isinstance(v, str):
            if not v.strip():
                raise ValueError("give a list of checkpoint files or a glob pattern")
        elif len(v) < cls.min_checkpoints:
            raise ValueError(f"{cls.shape_name} needs at least {cls.min_checkpoints} checkpoints, got {len(v)}")
        return v

    def paths(self) -> list[Path]:
        """The checkpoints in order: the list as given, or the glob's matches sorted; SpecError if too few."""
        if not isinstance(self.checkpoints, str):
            return [Path(p) for p in self.checkpoints]
        pattern = self.checkpoints
        found = sorted((Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()), key=natural_key)
        if not found:
            raise SpecError(f"slice.checkpoints: the glob {pattern!r} matches no file (relative paths are read from the current directory)")
        if len(found) < self.min_checkpoints:
            names = ", ".join(str(p) for p in found)
            raise SpecError(
                f"slice.checkpoints: the glob {pattern!r} matches only {len(found)} file{'s' * (len(found) > 1)} "
                f"({names}); {self.shape_name} needs at least {self.min_checkpoints} checkpoints"
            )
        return found

    def files(self) -> list[Path]:
        """Every file the slice reads (validation, shipping with a submitted job)."""
        return self.paths()


class TrajectoryPCA(_Trajectory, ParamsChoice):
    """The plane of the top two principal components of a training trajectory, the path projected on it."""

    dims: ClassVar[int] = 2
    min_checkpoints: ClassVar[int] = 3
    shape_name: ClassVar[str] = "a plane (kind: trajectory_pca)"
    kind: Literal["trajectory_pca"]
    origin: Literal["last"] | Path = Field(
        "last", description="the plane's origin (0, 0): last (the trajectory's last checkpoint) or a checkpoint file"
    )
    ignore: Literal["biasbn", "none"] = Field(
        "biasbn", description="biasbn: the plane does not move 1-D parameters (biases, BatchNorm), as in Li et al."
    )

    def origin_path(self) -> Path | None:
        return None if self.origin == "last" else Path(self.origin)

    def files(self) -> list[Path]:
        extra = self.origin_path()
        paths = self.paths()
        return paths + ([extra] if extra is not None and extra not in paths else [])



class TrajectoryPath(_Trajectory):
    """The piecewise-linear path through the checkpoints in order (checkpoint k at x = k)."""

    dims: ClassVar[int] = 1
    kind: Literal["trajectory"]

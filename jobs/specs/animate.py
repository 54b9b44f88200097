"""The animation spec: a curve_plane scan per epoch of a curve run, as one job, then a video."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .base import Strict
from .scan import ScanSpec


class VideoSpec(Strict):
    format: Literal["auto", "mp4", "gif"] = Field(
        "auto", description="auto: MP4 when ffmpeg is on PATH, else an animated GIF; mp4 without ffmpeg writes the GIF (and says so)"
    )
    fps: float = Field(4, gt=0, le=120, description="frames per second")
    dpi: int = Field(100, gt=10, le=600)
    plane: Literal["each", "last"] = Field(
        "each", description="each: every frame on its own plane (it turns as the bend moves); last: every frame drawn on the "
        "last epoch's plane, its curve projected onto it, so the plane holds still"
    )


class AnimateSpec(ScanSpec):
    """One curve_plane scan per curve checkpoint of a curve run, evaluated as one job into one result.

    `slice.curve` names the curve run's folder (every epoch_NNN.pt curve checkpoint
    in it is a frame) or one curve checkpoint. Each frame has its own plane (the
    bend moves as the curve trains); the grid, colour scale and contour levels are
    shared by all frames.
    """

    frames: Literal["all"] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] = Field(
        description="all: every curve checkpoint in slice.curve; or a list of epochs, e.g. [1, 5, 10]"
    )
    video: VideoSpec = Field(default_factory=VideoSpec)

    @field_validator("frames", mode="before")
    @classmethod
    def _frames(cls, v):
        """Say what a frame list is (the union's own words would name its branches, not the field)."""
        form = "give frames: all (every curve checkpoint) or a list of epoch numbers >= 0, e.g. [1, 5, 10]"
        if v == "all":
            return v
        if not isinstance(v, list) or not v:
            raise ValueError(f"{form}; got {v!r}" + (" (an empty list has no frame)" if v == [] else ""))
        bad = [e for e in v if isinstance(e, bool) or not isinstance(e, int) or e < 0]
        if bad:
            raise ValueError(f"{form}; got {bad[0]!r}" + (" (epochs count from 0)" if isinstance(bad[0], int) and not isinstance(bad[0], bool) else ""))
        return v

    @model_validator(mode="after")
    def _curve_plane(self):
        if self.slice.kind != "curve_plane":
            raise ValueError(f"slice.kind: an animation renders curve_plane frames, got {self.slice.kind!r}")
        if self.preview is not None:
            raise ValueError("preview: an animation evaluates each frame's tiles whole; remove preview (it is for single scans)")
        if self.grid.fit is not None:
            raise ValueError(f"grid.fit: {self.grid.fit}: the frames share one grid while the bend moves; give grid.x and "
                             "grid.y min and max")
        return self

    def identity(self) -> str:
        """What determines the numbers; the video's look is not part of it."""
        return self.numbers_identity({"output", "cluster", "video"})

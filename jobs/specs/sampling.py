"""Sequential evaluation fields of a data spec: how much of the data each grid point needs (landscape/sequential.py)."""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from .base import Strict

DEFAULT_MIN_SAMPLES = 1000
DEFAULT_STEP = 250


class Sampling(Strict):
    """Base of every data spec: with `tolerance`, a scan stops adding data to a point once its loss is known."""

    tolerance: float | None = Field(
        None,
        description="sequential evaluation: stop adding data to a grid point once the standard error of its loss is at "
        "most this fraction of the loss (e.g. 0.002); the samples used are stored per point. Default: all the data",
    )
    min_samples: int | None = Field(
        None, gt=0, description=f"with tolerance: every point sees at least this many samples (default {DEFAULT_MIN_SAMPLES})"
    )
    step: int | None = Field(
        None, gt=0, description=f"with tolerance: samples added to a point per pass, in a seeded stratified order (default {DEFAULT_STEP})"
    )

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0 < v < 1):
            raise ValueError(f"must be a relative standard error between 0 and 1 (e.g. 0.002), got {v}")
        return v

    @model_validator(mode="after")
    def _only_with_tolerance(self):
        given = [k for k in ("min_samples", "step") if getattr(self, k) is not None]
        if self.tolerance is None and given:
            raise ValueError(f"{' and '.join(given)} apply only to sequential evaluation: set tolerance too, or remove them")
        return self

    def sequential(self) -> Sequential | None:
        """The stopping rule of a scan, or None (every point sees all the data)."""
        from landscape.sequential import Sequential  # torch: only a scan that runs needs it

        if self.tolerance is None:
            return None
        return Sequential(
            self.tolerance, self.min_samples or DEFAULT_MIN_SAMPLES, self.step or DEFAULT_STEP, getattr(self, "seed", 0)
        )


def all_the_data(data):
    """Field validator of job kinds other than scans: sequential evaluation is a scan's."""
    if data is not None and data.tolerance is not None:
        raise ValueError("tolerance (sequential evaluation) applies to scans only; remove it here")
    return data

"""Mode-connectivity specs: training a curve between two checkpoints, and the curve slices of scans."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, StrictBool, StrictInt

from landscape.coefmaps import MAX_BENDS

from .base import Strict
from .parts import DataSpec
from .train import TrainSpec

CurveKind = Literal["bezier", "polychain"]


class CurveShape(Strict):
    """The curve's form: its bends between the endpoints, and which points train."""

    kind: CurveKind = Field(description="bezier: Bezier curve of degree num_bends + 1 with control points w1, theta_1 .. "
                            "theta_k, w2 (one bend: quadratic); polychain: w1 -> theta_1 -> .. -> theta_k -> w2, the bends "
                            "at t = i / (num_bends + 1)")
    num_bends: StrictInt = Field(
        1, ge=1, le=MAX_BENDS, description=f"bends k between the endpoints, 1 to {MAX_BENDS} (Garipov et al.'s "
        "--num_bends counts the endpoints too: theirs is k + 2, their default 3 is our 1)",
    )
    init: Literal["linear", "random"] = Field(
        "linear", description="linear: bend i starts on the straight line at i / (num_bends + 1) (one bend: (w1 + w2)/2); "
        "random: at the model's own seeded initialization (model.seed + i - 1), off the line (their --init_linear_off)",
    )
    fix_start: StrictBool = Field(True, description="w1 stays fixed (false: trained too, from its checkpoint; the "
                                  "trained w1 is kept in each curve checkpoint and the last as w1_trained.pt)")
    fix_end: StrictBool = Field(True, description="w2 stays fixed (false: trained too, as fix_start)")

    def identity_exclude(self) -> set[str]:
        """The options at their defaults, left out of the identity: curves from before them keep theirs."""
        return {k for k in ("num_bends", "fix_start", "fix_end") if getattr(self, k) == CurveShape.model_fields[k].default}


class CurveCluster(Strict):
    """Where `landscape submit` (or train-curve --address) trains: Ray Train workers, data parallel."""

    workers: int = Field(1, gt=0, description="data-parallel workers (Ray Train TorchTrainer, DDP); --workers overrides")
    gpus_per_worker: float | None = Field(None, ge=0, description="GPUs per worker (default: 1 when the cluster has GPUs, else 0)")
    cpus_per_worker: float = Field(1, gt=0)


class CurveTrainSpec(TrainSpec):
    """Train the bend of a curve joining two trained checkpoints (Garipov et al. 2018).

    Objective: the mean over t ~ U[0, 1] of the loss at phi(t), one t per
    mini-batch; the bends are trained, the endpoints too where curve.fix_start / fix_end
    are false. A curve checkpoint per epoch (epoch_001.pt ..) holds the bends (and the
    trained endpoints) and names the endpoints' checkpoints by content hash.
    """

    endpoints: tuple[Path, Path] = Field(description="the two checkpoints (state_dicts) the curve joins: [w1, w2]")
    curve: CurveShape
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr_schedule: Literal["constant", "cosine", "garipov", "garipov_per_step"] = Field(
        "constant",
        description="constant; cosine (to 0 at the end, per step); garipov: Garipov et al.'s, set once per epoch e "
        "(1..epochs) from e/epochs: lr up to half, then linearly down to 1% at 90%, then 1%; garipov_per_step: the same "
        "shape from step/steps, changed every step",
    )
    regularizer: Literal["garipov", "optimizer"] = Field(
        "garipov",
        description="how weight_decay acts: garipov (Garipov et al.'s curves): 0.5 * weight_decay * ||phi(t)||^2 added "
        "to the loss at the sampled t, optimizer weight decay 0; optimizer: the optimizer's weight decay on the bend",
    )
    test_data: DataSpec | None = Field(
        None, description="held-out data evaluated after each epoch at t = 0.5 (BatchNorm statistics re-estimated on "
        "the training data, as their test curves), e.g. {kind: digits, split: test}",
    )
    output: str | None = Field(None, description="curve checkpoint folder (default runs/<name>)")
    cluster: CurveCluster = Field(default_factory=CurveCluster)


class CurveSlice(Strict):
    """The curve itself, t in [0, 1], beside the straight line between the same endpoints."""

    dims: ClassVar[int] = 1
    default_batchnorm: ClassVar[str] = "recompute"
    kind: Literal["curve"]
    curve: Path = Field(description="a curve checkpoint of `landscape train-curve` (runs/<name>/epoch_NNN.pt)")
    endpoints: tuple[Path, Path] | None = Field(
        None, description="where the endpoints are now (default: the paths the curve checkpoint recorded); their "
        "content must match its hashes"
    )

    @staticmethod
    def check_grid(grid) -> None:
        if grid.fit is not None:  # no range to check: the spec's fit check says what is wrong
            return
        if grid.x.min < 0 or grid.x.max > 1:
            raise ValueError(
                f"grid.x runs from {grid.x.min:g} to {grid.x.max:g}, but a curve is defined for t in [0, 1]; "
                "keep grid.x within [0, 1] (a plane around the curve: slice kind curve_plane)"
            )


class CurvePlaneSlice(Strict):
    """The plane through w1, w2 and the bend theta (origin w1, e1 along w2 - w1), the curve drawn on it; curves of
    one bend (num_bends: 1)."""

    dims: ClassVar[int] = 2
    default_batchnorm: ClassVar[str] = "recompute"
    kind: Literal["curve_plane"]
    curve: Path = Field(description="a curve checkpoint (for `landscape animate`: a curve run's folder, one frame per epoch)")
    endpoints: tuple[Path, Path] | None = Field(
        None, description="where the endpoints are now (default: the recorded paths); their content must match"
    )


CURVE_SLICES = (CurveSlice, CurvePlaneSlice)

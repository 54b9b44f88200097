"""The metric families a spec may name and the arrays each fills, as data (no torch).

Specs check `metrics:` against them when a file is read and plots label arrays with them,
so `landscape validate` and the figures need no torch; metrics.py computes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArrayInfo:
    """How a metric array is described in the result and drawn in plots."""

    description: str
    log_scale: bool = False  # colour scale and contour levels in log space (positive values)
    unit_range: bool = False  # values in [0, 1] (accuracies)


SE_SUFFIX = "_se"


def se_name(name: str) -> str:
    """The array holding the standard error of metric array `name` (a mean over samples)."""
    return name + SE_SUFFIX


def with_se(*names: str) -> tuple[str, ...]:
    """Each mean-over-samples array followed by its standard-error array."""
    return tuple(n for name in names for n in (name, se_name(name)))


# family -> (its array names, "module:Class" that computes them)
FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "loss": (with_se("loss"), "landscape.metrics:LossAccuracy"),
    "accuracy": (with_se("accuracy"), "landscape.metrics:LossAccuracy"),
    "hessian": (("hessian_max", "hessian_min", "hessian_ratio", "hessian_residual"), "landscape.hessian:HessianExtremes"),
    "ensemble": (("ensemble_accuracy", "ensemble_nll"), "landscape.ensembles:EnsembleWithFirst"),
}
METRIC_FAMILIES = tuple(FAMILIES)

ARRAYS: dict[str, ArrayInfo] = {
    "loss": ArrayInfo("mean loss over the data", log_scale=True),
    "accuracy": ArrayInfo("fraction of samples whose largest output is the label (NaN for regression)", unit_range=True),
    "hessian_max": ArrayInfo("largest Hessian eigenvalue (Lanczos, BatchNorm eval)"),
    "hessian_min": ArrayInfo("smallest Hessian eigenvalue (< 0: not convex)"),
    "hessian_ratio": ArrayInfo("|smallest / largest| Hessian eigenvalue"),
    "hessian_residual": ArrayInfo("largest Lanczos residual / |its own eigenvalue| (> tol: not converged)", log_scale=True),
    "ensemble_accuracy": ArrayInfo(
        "accuracy of the ensemble of this point and the slice's point at coordinate 0 (w1): mean of softmax probabilities",
        unit_range=True,
    ),
    "ensemble_nll": ArrayInfo("mean negative log-likelihood of that two-member ensemble", log_scale=True),
    "samples": ArrayInfo("samples the point was evaluated on (sequential evaluation stops once the loss is known)"),
}


def se_info(name: str) -> ArrayInfo:
    """How the standard-error array of metric array `name` is described."""
    return ArrayInfo(
        f"standard error of {name}: standard deviation of the per-sample values (ddof 1) / sqrt(samples)", log_scale=True
    )


ARRAYS.update({se_name(n): se_info(n) for n in ("loss", "accuracy")})


def array_names(families) -> list[str]:
    """The result's metric arrays for these families, in order, without repeats."""
    return list(dict.fromkeys(n for f in families for n in FAMILIES[f][0]))

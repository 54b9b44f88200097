"""Per-point metrics: each is a named array of the result (same dims, same chunks).

A *family* (what a spec lists under `metrics:`) fills one or more arrays. Two kinds:
- OutputMetric: accumulated from the model's outputs chunk by chunk inside the
  evaluator's pass over the data (fused with it, captured in its CUDA graph);
  loss and accuracy are one.
- PointMetric: computed per grid point by passes of its own (e.g. Hessian extremes).
Families are looked up by name in FAMILIES and built lazily (by import path), so a
metric's module is imported only by scans that use it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ArrayInfo:
    """How a metric array is described in the result and drawn in plots."""

    description: str
    log_scale: bool = False  # colour scale and contour levels in log space (positive values)
    unit_range: bool = False  # values in [0, 1] (accuracies)


# family -> (its array names, "module:Class" that computes them)
FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "loss": (("loss",), "landscape.metrics:LossAccuracy"),
    "accuracy": (("accuracy",), "landscape.metrics:LossAccuracy"),
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
}


def array_names(families) -> list[str]:
    """The result's metric arrays for these families, in order, without repeats."""
    return list(dict.fromkeys(n for f in families for n in FAMILIES[f][0]))


def build_metrics(families, options: dict | None = None) -> list:
    """One metric object per distinct implementation; `options[family]` are its keyword arguments."""
    options = options or {}
    made: dict[str, object] = {}
    for f in families:
        path = FAMILIES[f][1]
        if path not in made:
            module, _, cls = path.partition(":")
            made[path] = getattr(importlib.import_module(module), cls)(**options.get(f, {}))
    return list(made.values())


class OutputMetric:
    """Accumulated over data chunks from the outputs of K grid points at once."""

    names: tuple[str, ...] = ()
    accumulators: int = 0  # (K,) float64 sums it keeps

    def bind(self, evaluator) -> None:
        """Once per evaluator, after its data are on the device (precompute here)."""

    def accumulate(self, acc: list[torch.Tensor], out: torch.Tensor, target: torch.Tensor, start: int, stop: int) -> None:
        """Add a chunk: out (K, n, C) fp32 for samples start:stop, target (n, ...)."""
        raise NotImplementedError

    def finish(self, acc: list[torch.Tensor], evaluator) -> dict[str, torch.Tensor]:
        """(M,) values per array name from the summed accumulators (M,)."""
        raise NotImplementedError


class PointMetric:
    """Computed for one grid point at a time by its own passes over the data."""

    names: tuple[str, ...] = ()

    def bind(self, evaluator) -> None:
        """Once per evaluator."""

    def compute(self, evaluator, coefs: torch.Tensor) -> dict[str, float]:
        """Values at the point with slice coefficients coefs (D,)."""
        raise NotImplementedError


def loss_terms(out: torch.Tensor, target: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per grid point: summed loss and correct predictions over a chunk.

    out (K, n, ...) fp32, target (n, ...) -> ((K,), (K,)); correct is NaN for regression.
    """
    k = out.shape[0]
    if loss == "cross_entropy":
        if out.device.type == "cpu" and out.dim() == 3:
            return _cross_entropy_cpu(out, target)
        return _cross_entropy_any(out, target)
    if target.is_floating_point():
        err = out - target.reshape(out.shape[1:])
        return err.square().flatten(1).sum(1), torch.full((k,), float("nan"), device=out.device)
    onehot = F.one_hot(target, out.shape[-1]).to(out.dtype)  # class labels under mse
    return (out - onehot).square().flatten(1).sum(1), (out.argmax(-1) == target).sum(1).to(out.dtype)


def _cross_entropy_terms(logits: torch.Tensor, top: torch.Tensor, picked: torch.Tensor, maxima: torch.Tensor,
                         maxima_count: torch.Tensor, dim: int) -> torch.Tensor:
    """Per-sample cross-entropy (top - picked) + log1p(sum over the other classes of exp(z - top)).

    logsumexp - picked computed as (top + log(sum)) - picked rounds every loss to the
    largest logit's precision (a loss of 1e-3 with logits near 10 keeps 3 digits) and
    log(1 + s) at small s to fp32's 1 + s; here top - picked is exact (0 for a
    correct, unique maximum) and log1p keeps s's own precision, so small losses keep
    fp32's relative precision. The maximal classes contribute exp(0) = 1 each: one of
    them is the 1 of log1p, the others (ties) are added back as counts.
    top, picked: the maximum and the target's logit, kept as size-1 `dim`; maxima:
    logits == top, maxima_count its sum over `dim`. Returns the per-sample losses with `dim` removed.
    """
    e = (logits - top).exp_()  # every entry in [0, 1]; exactly 1 at the maxima
    rest = e.masked_fill_(maxima, 0.0).sum(dim) + (maxima_count - 1).to(e.dtype)
    return (top - picked).squeeze(dim) + rest.log1p_()


def _cross_entropy_any(out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) summed cross-entropy and correct predictions, classes last (any device, any (K, n, ..., C) shape)."""
    top = out.amax(-1, keepdim=True)
    index = target.view(1, *target.shape, 1).expand(*out.shape[:-1], 1)
    per_sample = _cross_entropy_terms(out, top, out.gather(-1, index), index, -1)
    return per_sample.flatten(1).sum(1), (out.argmax(-1) == target).flatten(1).sum(1).to(out.dtype)


def _cross_entropy_terms(logits: torch.Tensor, top: torch.Tensor, picked: torch.Tensor, index: torch.Tensor,
                         dim: int) -> torch.Tensor:
    """Per-sample cross-entropy (top - z_t) + log1p((e_t - 1) + sum over c != t of e_c), e = exp(z - top).

    logsumexp - z_t computed as (top + log(sum e)) - z_t rounds every loss to the
    largest logit's precision (a loss of 1e-3 with logits near 10 keeps 3 digits),
    and log(sum e) to fp32's 1 + s. A small loss means the target is the maximum:
    then top - z_t = 0 and e_t - 1 = 0 exactly, and log1p keeps the other classes'
    sum at its own precision, so small losses keep fp32's relative precision. (When
    the target is not a maximum, p_t <= 1/2 and the loss is at least log 2.) The
    target's entry is left out (a write per sample, not a mask pass).
    top: the maximum, picked: the target's logit, index: the target class, all with
    size-1 `dim`. Returns the per-sample losses with `dim` removed.
    """
    # exp(-inf) = 0 leaves the target's entry out. In-place only where autograd keeps no copy (the Hessian
    # differentiates this twice): the difference before exp, exp's own output.
    e = (logits - top).scatter_(dim, index, float("-inf")).exp_()  # every entry in [0, 1]
    e_t = (picked - top).exp()
    return (top - picked).squeeze(dim) + torch.log1p((e_t - 1).squeeze(dim) + e.sum(dim))


def _cross_entropy_cpu(out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) summed cross-entropy (logsumexp - logit[target]) and correct predictions, class-major.

    PyTorch's CPU log_softmax and argmax over a short class axis (10 classes) are
    slow (log_softmax ~15 ns an element: it vectorizes along the classes); the same
    reductions across the samples of a (K, C, n) layout run several times faster
    (BENCHMARKS.md). Logits from `head.ClassMajorLinear` are that layout already.
    Correct means the target is the first maximal class: argmax's rule, NaN included.
    """
    k, c = out.shape[0], out.shape[-1]
    by_class = out.transpose(1, 2).contiguous()  # (K, C, n); a no-op for class-major logits
    top = by_class.amax(1, keepdim=True)  # (K, 1, n)
    index = target.view(1, 1, -1).expand(k, 1, -1)
    picked = by_class.gather(1, index)  # (K, 1, n)
    per_sample = _cross_entropy_terms(by_class, top, picked, index, 1)  # (K, n)
    picked = picked[:, 0]
    hit = by_class == top  # (K, C, n) the maximal classes
    if bool((hit.sum(1) == 1).all()):  # one maximal class everywhere (no tie, no NaN): is it the target?
        correct = (picked >= top[:, 0]).sum(1)
    else:  # argmax's rule: the first maximal class, or the first NaN
        hit = hit | (by_class.isnan() & top.isnan())
        rank = torch.arange(c, 0, -1, dtype=out.dtype, device=out.device).view(1, c, 1)  # C .. 1
        first = c - torch.where(hit, rank, 0.0).amax(1)  # (K, n) index of the first maximal class
        correct = (first == target).sum(1)
    return per_sample.sum(1), correct.to(out.dtype)


class LossAccuracy(OutputMetric):
    """Mean loss (cross-entropy per sample, or MSE per output element) and accuracy."""

    names = ("loss", "accuracy")
    accumulators = 2

    def bind(self, evaluator) -> None:
        self.loss = evaluator.loss

    def accumulate(self, acc, out, target, start, stop) -> None:
        l, c = loss_terms(out, target, self.loss)
        acc[0] += l
        acc[1] += c

    def finish(self, acc, evaluator) -> dict[str, torch.Tensor]:
        return {"loss": acc[0] / evaluator.terms_per_point, "accuracy": acc[1] / evaluator.n}

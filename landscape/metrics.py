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

import torch
import torch.nn.functional as F

# The families and arrays as data (no torch: specs and plots read them): metric_arrays.py
from .metric_arrays import ARRAYS, FAMILIES, METRIC_FAMILIES, SE_SUFFIX, ArrayInfo, array_names, se_info, se_name, with_se  # noqa: F401


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


def sample_terms(out: torch.Tensor, target: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per grid point and sample: loss summed over the sample's output elements, and whether it is correct.

    out (K, n, ...) fp32, target (n, ...) -> ((K, n), (K, n) or None for regression). A block of
    tokens (target (n, T)) is one sample: its loss summed over its T tokens, correct a count of tokens.
    """
    k = out.shape[0]
    if loss == "cross_entropy" and not target.is_floating_point() and target.dim() > 1:
        n = target.shape[0]
        per_token, hit = sample_terms(out.reshape(k, -1, out.shape[-1]), target.reshape(-1), loss)  # (K, n*T)
        return per_token.view(k, n, -1).sum(2), hit.view(k, n, -1).sum(2).to(out.dtype)  # (K, n)
    if loss == "cross_entropy":
        if out.device.type == "cpu" and out.dim() == 3 and out.shape[-1] <= CLASS_MAJOR_MAX:
            return _cross_entropy_cpu(out, target)
        return _cross_entropy_any(out, target)
    if target.is_floating_point():
        err = out - target.reshape(out.shape[1:])
        return err.square().flatten(2).sum(2), None
    onehot = F.one_hot(target, out.shape[-1]).to(out.dtype)  # class labels under mse
    return (out - onehot).square().flatten(2).sum(2), out.argmax(-1) == target


def loss_terms(out: torch.Tensor, target: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per grid point: summed loss and correct predictions over a chunk.

    out (K, n, ...) fp32, target (n, ...) -> ((K,), (K,)); correct is NaN for regression.
    """
    per_sample, correct = sample_terms(out, target, loss)
    if correct is None:
        return per_sample.sum(1), torch.full((out.shape[0],), float("nan"), device=out.device)
    return per_sample.sum(1), correct.sum(1).to(out.dtype)


# Above this many classes (a language model's vocabulary) the class-major CPU layout stops paying.
CLASS_MAJOR_MAX = 1024


def _cross_entropy_any(out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, n) cross-entropy per sample and whether it is correct, classes last (any device): out (K, n, C), target (n,)."""
    top = out.amax(-1, keepdim=True)  # (K, n, 1)
    index = target.view(1, -1, 1).expand(out.shape[0], -1, 1)
    return _cross_entropy_terms(out, top, out.gather(-1, index), index, -1), out.argmax(-1) == target


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
    """(K, n) cross-entropy per sample (logsumexp - logit[target]) and correct predictions, class-major.

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
        correct = picked >= top[:, 0]
    else:  # argmax's rule: the first maximal class, or the first NaN
        hit = hit | (by_class.isnan() & top.isnan())
        rank = torch.arange(c, 0, -1, dtype=out.dtype, device=out.device).view(1, c, 1)  # C .. 1
        first = c - torch.where(hit, rank, 0.0).amax(1)  # (K, n) index of the first maximal class
        correct = first == target
    return per_sample, correct


def moments(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) float64 sum and sum of squares of per-sample values (K, n): a mean and its standard error from one pass."""
    v = values.double()
    return v.sum(1), v.square().sum(1)


def mean_and_se(total: torch.Tensor, squares: torch.Tensor, n) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and its standard error (sample standard deviation, ddof 1, / sqrt(n)) from sums over n samples."""
    mean = total / n
    var = ((squares - total * mean) / (n - 1)).clamp_min(0.0)  # float64 sums: rounding may dip below 0
    return mean, (var / n).sqrt()


class LossAccuracy(OutputMetric):
    """Mean loss (cross-entropy per sample, or MSE per output element) and accuracy, with standard errors.

    The standard errors come from the sum of squares of the per-sample values, kept
    beside their sum in the same pass. A sample's MSE value is its mean over output
    elements, so the loss (their mean) is the mean over all elements as before.
    A sample's accuracy is 0 or 1, or for a block of tokens the fraction predicted right.
    """

    names = with_se("loss", "accuracy")
    accumulators = 4  # sums and sums of squares of the per-sample loss and accuracy

    def bind(self, evaluator) -> None:
        self.loss = evaluator.loss
        self.elements = evaluator.terms_per_point // evaluator.n  # output elements (mse) or tokens per sample, else 1
        self.labels = evaluator.predictions // evaluator.n  # tokens per sample, else 1

    def accumulate(self, acc, out, target, start, stop) -> None:
        per_sample, correct = sample_terms(out, target, self.loss)  # (K, n)
        if self.elements != 1:
            per_sample = per_sample / self.elements
        total, squares = moments(per_sample)
        acc[0] += total
        acc[1] += squares
        if correct is None:  # regression: no accuracy
            acc[2] += float("nan")
            acc[3] += float("nan")
        elif self.labels == 1:  # 0 or 1 per sample: its sum of squares is its sum (no second reduction)
            hits = correct.sum(1).double()
            acc[2] += hits
            acc[3] += hits
        else:  # a block of tokens: the fraction of its tokens predicted right
            c_total, c_squares = moments(correct.double() / self.labels)
            acc[2] += c_total
            acc[3] += c_squares

    def finish(self, acc, evaluator) -> dict[str, torch.Tensor]:
        n = evaluator.samples_seen  # all the data, or (M,) per point under sequential evaluation
        loss, loss_se = mean_and_se(acc[0], acc[1], n)
        accuracy, accuracy_se = mean_and_se(acc[2], acc[3], n)
        return {"loss": loss, "loss_se": loss_se, "accuracy": accuracy, "accuracy_se": accuracy_se}

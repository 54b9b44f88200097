"""Gradient health per named parameter: the median of log10|grad| and friends.

The statistic is the source's one-liner,
    p.grad.view(-1)[p.grad.view(-1) != 0].abs().log10().median().item(),
i.e. over the non-zero entries, with torch's median (the lower of the two middle
values). Its 10th and 90th percentiles use the same rule (the entry at index
floor(q (n - 1)) of the sorted values), so the three are order statistics of
one sorted vector. A parameter whose gradient is all zero (or None) has no
statistic (NaN); one with a NaN entry has NaN statistics, as torch's median does.

Recording goes through the one training loop's hooks: `GradientRecorder.on_backward`
reads the gradients after backward (and snapshots the weights), `on_step` measures
the optimizer's update |w_after - w_before| / |w_before| of the same step.
`probe_gradients` is the gradient of a fixed set of samples at the current weights
(no optimizer step): what per-epoch recording and learning-rate scans compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .metrics import loss_terms
from .training import StopTraining, mean_loss

# Per parameter and recorded step, in this order.
STATS = ("median_log10_grad", "p10_log10_grad", "p90_log10_grad", "grad_norm", "update_ratio")
STAT_INFO = {
    "median_log10_grad": "median of log10|grad| over the non-zero entries (torch's median: the lower middle value)",
    "p10_log10_grad": "10th percentile of log10|grad| over the non-zero entries (entry floor(0.1 (n-1)) of the sorted values)",
    "p90_log10_grad": "90th percentile of log10|grad| over the non-zero entries (entry floor(0.9 (n-1)) of the sorted values)",
    "grad_norm": "Euclidean norm of the gradient",
    "update_ratio": "|w_after - w_before| / |w_before| of the optimizer step (Euclidean norms; NaN where no step was taken or w_before = 0)",
}


def median_log10_abs(grad: torch.Tensor) -> float:
    """The source's one-liner, verbatim (reshape instead of view: also non-contiguous gradients)."""
    g = grad.reshape(-1)
    return g[g != 0].abs().log10().median().item()


def gradient_stats(grad: torch.Tensor | None) -> tuple[float, float, float, float]:
    """(median, p10, p90 of log10|grad| over non-zero entries, |grad|_2) of one parameter's gradient."""
    if grad is None:
        return (math.nan,) * 4
    flat = grad.detach().reshape(-1)  # (n,)
    norm = float(torch.linalg.vector_norm(flat))
    logs = flat[flat != 0].abs().log10()  # (nnz,) same dtype and op as the one-liner
    n = logs.numel()
    if n == 0 or bool(torch.isnan(logs).any()):
        return math.nan, math.nan, math.nan, norm
    s = logs.sort().values  # (nnz,)
    return float(s[(n - 1) // 2]), float(s[10 * (n - 1) // 100]), float(s[90 * (n - 1) // 100]), norm


def weight_matrices(model: nn.Module) -> list[str]:
    """Names of the parameters with 2 or more dimensions (Linear and conv weights), input side first."""
    return [n for n, p in model.named_parameters() if p.ndim >= 2]


def update_ratio(before: torch.Tensor, after: torch.Tensor) -> float:
    """|after - before| / |before|; NaN when |before| is 0 (no scale to compare with)."""
    w = float(torch.linalg.vector_norm(before))
    if w == 0:
        return math.nan
    return float(torch.linalg.vector_norm(after.detach() - before)) / w


@dataclass
class Row:
    """One recorded step: stats (P, 5) in STATS order, and what the loop said about the step."""

    step: int
    stats: np.ndarray
    loss: float = math.nan
    lr: float = math.nan


@dataclass
class GradientRecorder:
    """Hooks for `landscape.training.train` recording every `every`-th step's gradient statistics.

    The row of step s holds the gradient of batch s at the weights after s optimizer
    steps, and the update that step s then applied. `stop_after_first` ends training
    right after the first gradient, before any update (gradients at initialization).
    """

    model: nn.Module
    every: int = 1
    stop_after_first: bool = False
    rows: list[Row] = field(default_factory=list)

    def __post_init__(self):
        self.params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in self.params]
        self._before: list[torch.Tensor] | None = None
        self._loss = math.nan

    def objective(self, loss_kind: str):
        """The plain objective, remembering the batch loss (on_backward has no other way to see it)."""

        def plain(model, x, y, _g):
            out = model(x)
            value = mean_loss(out, y, loss_kind)
            self._loss = float(value.detach())
            return value, out

        return plain

    def on_backward(self, step: int, model: nn.Module) -> None:
        if step % self.every:
            return
        stats = np.full((len(self.params), len(STATS)), np.nan)  # (P, 5)
        for i, (_, p) in enumerate(self.params):
            stats[i, :4] = gradient_stats(p.grad)
        self.rows.append(Row(step, stats, loss=self._loss))
        if self.stop_after_first:
            raise StopTraining
        self._before = [p.detach().clone() for _, p in self.params]

    def on_step(self, step: int, metrics: dict) -> None:
        if self._before is None:
            return
        row = self.rows[-1]
        for i, ((_, p), b) in enumerate(zip(self.params, self._before)):
            row.stats[i, 4] = update_ratio(b, p)
        row.lr = float(metrics["lr"])
        self._before = None


@dataclass
class Probe:
    """The mean loss over the probe samples, their accuracy, and each parameter's gradient stats (P, 4)."""

    loss: float
    accuracy: float
    stats: np.ndarray


def probe_gradients(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: str,
                    chunk: int = 4096) -> Probe:
    """The gradient of the mean loss over `inputs` at the current weights, in train mode, no step taken.

    Chunks of `chunk` samples are weighted by their size, so the gradient is the
    full-batch one whatever the chunk. BatchNorm running statistics are restored
    afterwards: probing must not change the training it observes.
    """
    params = [p for _, p in model.named_parameters()]
    for p in params:
        p.grad = None
    buffers = {k: v.clone() for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    was_training = model.training
    model.train()
    n = len(inputs)
    total, correct = 0.0, 0.0
    for start in range(0, n, chunk):
        x, y = inputs[start : start + chunk], targets[start : start + chunk]
        out = model(x)  # (b, C)
        value = mean_loss(out, y, loss)
        (value * (len(x) / n)).backward()
        l_sum, c = loss_terms(out.detach()[None].float(), y, loss)  # the evaluator's sums: (1,), (1,)
        total, correct = total + float(l_sum[0]), correct + float(c[0])
    terms = n if loss == "cross_entropy" else n * out.shape[1]
    stats = np.array([gradient_stats(p.grad) for p in params]).reshape(len(params), 4)  # (P, 4)
    for p in params:
        p.grad = None
    if buffers:
        model.load_state_dict(buffers, strict=False)
    model.train(was_training)
    return Probe(total / terms, correct / n, stats)

"""The one training loop: seeded mini-batch training with hooks.

`train` (checkpoints per epoch), curve training (only the bend is optimized, at a
random point of the curve per batch), gradient recording (a hook after each
backward pass) and learning-rate scans (short runs, a schedule per step) are all
this loop with different hooks:
- objective(model, inputs, targets, generator) -> (mean loss to minimize, outputs for the metrics)
- parameters: what the optimizer updates (default: every parameter of the model)
- lr_at(step) -> learning rate of that step (default: constant `lr`)
- on_backward(step, model): after backward, before the optimizer step (gradients are there)
- on_step(step, metrics), on_epoch(epoch, model, metrics); either may raise StopTraining.
- resume / snapshot: `snapshot(epoch, state)` gets the loop's state after each epoch (the
  shuffling generator's and the optimizer's), before on_epoch; `resume=(epoch, state)` goes on
  after that epoch from such a state, so an interrupted run continues as if never stopped.
`shard=(rank, world)` gives each data-parallel worker its share of every batch
(the same batches in the same order everywhere; DDP averages the gradients).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Literal

import torch
from torch import nn

from .metrics import loss_terms

LossKind = Literal["cross_entropy", "mse"]
Optimizer = Literal["sgd", "adam"]


class StopTraining(Exception):
    """Raised by a hook to end training early (e.g. a diverged learning-rate probe)."""


def mean_loss(out: torch.Tensor, target: torch.Tensor, loss: LossKind) -> torch.Tensor:
    """The differentiable loss the evaluator reports, as a mean (cross-entropy per sample, MSE per element)."""
    if loss == "cross_entropy":
        if out.dim() == 3 and target.dim() == 2:  # tokens: (n, T, V) logits, (n, T) next tokens; the mean over all tokens
            return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1))
        return nn.functional.cross_entropy(out, target)
    if not target.is_floating_point():
        target = nn.functional.one_hot(target, out.shape[1]).to(out.dtype)
    return nn.functional.mse_loss(out, target.reshape(out.shape))


def make_optimizer(params: Iterable[torch.Tensor], kind: Optimizer, lr: float, momentum: float, weight_decay: float):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {kind!r}")


def train(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: LossKind = "cross_entropy",
    epochs: int = 10,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    optimizer: Optimizer = "sgd",
    parameters: Iterable[torch.Tensor] | None = None,
    objective: Callable | None = None,
    lr_at: Callable[[int], float] | None = None,
    on_backward: Callable[[int, nn.Module], None] | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    on_epoch: Callable[[int, nn.Module, dict], None] | None = None,
    shard: tuple[int, int] = (0, 1),
    resume: tuple[int, dict] | None = None,
    snapshot: Callable[[int, dict], None] | None = None,
) -> nn.Module:
    """Mini-batch training with a seeded shuffle; metrics per epoch are over the samples seen."""
    g = torch.Generator().manual_seed(seed)
    opt = make_optimizer(list(parameters) if parameters is not None else model.parameters(), optimizer, lr, momentum, weight_decay)
    rank, world = shard
    n, step, first = len(inputs), 0, 1
    if resume is not None:
        done, state = resume
        g.set_state(state["generator"])
        opt.load_state_dict(state["optimizer"])
        first, step = done + 1, done * math.ceil(n / batch_size)

    def plain(model, x, y, _g):
        out = model(x)
        return mean_loss(out, y, loss), out

    objective = objective or plain
    try:
        for epoch in range(first, epochs + 1):
            model.train()
            order = torch.randperm(n, generator=g)
            total, terms, correct, seen = 0.0, 0, 0.0, 0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size][rank::world]  # (b,) this worker's share
                if lr_at is not None:
                    for group in opt.param_groups:
                        group["lr"] = lr_at(step)
                batch_loss, out = objective(model, inputs[idx], targets[idx], g)
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                if on_backward is not None:
                    on_backward(step, model)
                opt.step()
                l_sum, c = (float(v) for v in loss_terms(out.detach()[None].float(), targets[idx], loss))
                labels = len(idx) if targets.is_floating_point() else targets[idx].numel()  # one per sample, or per token
                t = labels if loss == "cross_entropy" else out.numel()
                total, terms, correct, seen = total + l_sum, terms + t, correct + c, seen + labels
                if on_step is not None:
                    on_step(step, {"step": step, "epoch": epoch, "lr": opt.param_groups[0]["lr"], "loss": l_sum / max(t, 1)})
                step += 1
            if snapshot is not None:
                snapshot(epoch, {"generator": g.get_state(), "optimizer": opt.state_dict()})
            if on_epoch is not None:
                metrics = {"epoch": epoch, "train_loss": total / max(terms, 1), "train_accuracy": correct / max(seen, 1)}
                if not math.isfinite(metrics["train_loss"]):
                    metrics["diverged"] = True
                on_epoch(epoch, model, metrics)
    except StopTraining:
        pass
    return model

"""Seeded full-data SGD training that hands back a checkpoint per epoch."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .evaluator import LossKind, loss_terms


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
    on_epoch: Callable[[int, nn.Module, dict], None] | None = None,
) -> nn.Module:
    """Mini-batch SGD with a seeded shuffle; calls on_epoch(epoch, model, metrics)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    n = len(inputs)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=g)
        total, terms, correct = 0.0, 0, 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            out = model(inputs[idx])
            l_sum, c = (float(v) for v in loss_terms(out.detach()[None].float(), targets[idx], loss))
            t = len(idx) if loss == "cross_entropy" else out.numel()
            batch_loss = _mean_loss(out, targets[idx], loss)
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            total, terms, correct = total + l_sum, terms + t, correct + c
        if on_epoch is not None:
            on_epoch(epoch, model, {"epoch": epoch, "train_loss": total / terms, "train_accuracy": correct / n})
    return model


def _mean_loss(out: torch.Tensor, target: torch.Tensor, loss: LossKind) -> torch.Tensor:
    if loss == "cross_entropy":
        return nn.functional.cross_entropy(out, target)
    if not target.is_floating_point():
        target = nn.functional.one_hot(target, out.shape[1]).to(out.dtype)
    return nn.functional.mse_loss(out, target.reshape(out.shape))

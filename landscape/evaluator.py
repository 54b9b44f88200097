"""Turn grid coordinates into losses and accuracies on the full-batch data.

A plain class, no Ray: the cluster layer wraps it in an actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .errors import DataError
from .slices import Slice, combine

LossKind = Literal["cross_entropy", "mse"]


@dataclass
class ScanProblem:
    """Everything an evaluator needs; put into Ray's object store once per scan."""

    model_factory: Callable[[], nn.Module]  # picklable by reference (module-level or partial)
    slice: Slice
    inputs: torch.Tensor  # (N, ...) float
    targets: torch.Tensor  # (N,) int64 labels, or (N,)/(N, C) float for mse
    loss: LossKind = "cross_entropy"
    # Samples per forward pass. Fixed per scan (not per device) so the summation
    # order, and so every fp32 bit, is the same on every actor.
    data_chunk: int = 8192


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _loss_sum(out: torch.Tensor, target: torch.Tensor, loss: LossKind) -> tuple[float, int, float]:
    """Summed loss, number of terms it averages over, correct predictions (NaN for regression)."""
    if loss == "cross_entropy":
        total = F.cross_entropy(out, target, reduction="sum")
        correct = (out.argmax(dim=1) == target).sum()
        return float(total), len(out), float(correct)
    target = target.reshape(out.shape) if target.dim() == 1 else target
    if not target.is_floating_point():  # class labels under mse: one-hot targets
        target = F.one_hot(target, out.shape[1]).to(out.dtype)
        correct = float((out.argmax(dim=1) == target.argmax(dim=1)).sum())
    else:
        correct = float("nan")
    return float(F.mse_loss(out, target, reduction="sum")), out.numel(), correct


def check_fit(problem: ScanProblem) -> None:
    """Fail early, with a DataError, if the data does not fit the model or the loss."""
    model = problem.model_factory().eval()
    x, y = problem.inputs[:2], problem.targets[:2]
    try:
        with torch.no_grad():
            out = model(x)
    except RuntimeError as e:
        raise DataError(
            f"data with samples of shape {tuple(problem.inputs.shape[1:])} does not fit the model: "
            f"{str(e).splitlines()[0]}; pick a model for this input shape"
        ) from e
    if problem.loss == "cross_entropy":
        if problem.targets.is_floating_point():
            raise DataError("loss cross_entropy needs integer class labels; use loss: mse for float targets")
        if out.dim() != 2 or int(problem.targets.max()) >= out.shape[1]:
            raise DataError(
                f"the model outputs {tuple(out.shape[1:])} but the labels go up to {int(problem.targets.max())}; "
                "set the model's number of classes to fit the data"
            )
    elif y.is_floating_point() and out.numel() != y.numel():
        raise DataError(f"mse: the model outputs {tuple(out.shape[1:])} per sample but targets are {tuple(y.shape[1:])}")


class Evaluator:
    """Holds the model and the full-batch data on one device; evaluates grid points."""

    def __init__(self, problem: ScanProblem, device: str | torch.device | None = None):
        self.device = torch.device(device) if device is not None else default_device()
        self.loss = problem.loss
        self.chunk = problem.data_chunk
        self.model = problem.model_factory().to(self.device).eval()  # eval: BatchNorm uses running stats
        self.layout = problem.slice.layout
        self.origin = problem.slice.origin.to(self.device)  # (P,)
        self.directions = problem.slice.directions.to(self.device)  # (D, P)
        self.inputs = problem.inputs.to(self.device)  # (N, ...)
        self.targets = problem.targets.to(self.device)  # (N,) or (N, C)
        self.n = len(self.inputs)

    @property
    def dims(self) -> int:
        return self.directions.shape[0]

    @torch.no_grad()
    def evaluate_state(self, vec: torch.Tensor) -> tuple[float, float]:
        """Mean loss and accuracy of the flat state `vec` (P,) over all the data."""
        state = self.layout.unflatten(vec)
        loss_sum, terms, correct = 0.0, 0, 0.0
        for start in range(0, self.n, self.chunk):
            out = functional_call(self.model, state, (self.inputs[start : start + self.chunk],))
            l, t, c = _loss_sum(out, self.targets[start : start + self.chunk], self.loss)
            loss_sum, terms, correct = loss_sum + l, terms + t, correct + c
        return loss_sum / terms, correct / self.n

    def evaluate(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        """coords (K, D) grid coordinates -> {"loss": (K,), "accuracy": (K,)} float32."""
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, self.dims)
        loss = np.empty(len(coords), dtype=np.float32)
        acc = np.empty(len(coords), dtype=np.float32)
        for k, c in enumerate(coords):
            loss[k], acc[k] = self.evaluate_state(combine(self.origin, self.directions, c))
        return {"loss": loss, "accuracy": acc}

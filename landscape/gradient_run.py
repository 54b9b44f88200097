"""One gradient-health training as an actor's work item: `GradientsRun(problem).evaluate()`.

The whole training is one item (its rows depend on every step before them, so it
does not split); a killed actor's item is trained again from the start elsewhere,
from the same seeded weights and batch order, so the numbers do not depend on which
actor trained it. `evaluate` returns every recorded row: steps (R,), stats (R, P, 5)
in `STATS` order, loss (R,), lr (R,), the step at which the loss diverged (or None)
and each epoch's training loss and accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .gradients import STATS, GradientRecorder, Row, probe_gradients, update_ratio
from .problem import default_device
from .training import StopTraining, train


@dataclass
class GradientsProblem:
    """Everything a gradient-health run needs; picklable, put in Ray's object store once."""

    factory: Callable[[], nn.Module]  # seeded: the same initial weights every call
    inputs: torch.Tensor
    targets: torch.Tensor
    probe: tuple[torch.Tensor, torch.Tensor] | None  # record: epoch, the samples whose gradient is measured
    record: str  # "step" or "epoch"
    every: int
    epochs: int
    loss: str
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    seed: int
    label: str = "gradients"  # names the live per-epoch lines

    def steps_per_epoch(self) -> int:
        return -(-len(self.inputs) // self.batch_size)


class GradientsRun:
    """An actor's evaluator: the data on its device (its GPU when Ray gave it one, else the CPU), moved once."""

    def __init__(self, problem: GradientsProblem):
        self.problem = problem
        self.device = default_device()
        self.x, self.y = problem.inputs.to(self.device), problem.targets.to(self.device)
        self.probe = None if problem.probe is None else tuple(t.to(self.device) for t in problem.probe)

    def describe(self) -> dict:
        p = self.problem
        return {"record": p.record, "epochs": p.epochs, "optimizer": p.optimizer, "threads": torch.get_num_threads()}

    def evaluate(self) -> dict:
        p = self.problem
        model = p.factory().to(self.device)
        state = {"diverged": None}
        epochs: list[tuple[int, float, float]] = []
        hooks: dict = {}
        if p.record == "step":
            rec = GradientRecorder(model, every=p.every, stop_after_first=p.epochs == 0)
            hooks["objective"] = rec.objective(p.loss)
            hooks["on_backward"] = rec.on_backward
        else:
            rec = _EpochProbe(model, *self.probe, p.loss, p.steps_per_epoch(), p.lr)
            rec.measure(0)

        def on_step(step: int, metrics: dict) -> None:
            if p.record == "step":
                rec.on_step(step, metrics)
            if not math.isfinite(metrics["loss"]):
                state["diverged"] = step
                raise StopTraining

        def on_epoch(epoch: int, model, metrics: dict) -> None:
            if p.record == "epoch":
                rec.measure(epoch)
            epochs.append((epoch, float(metrics["train_loss"]), float(metrics["train_accuracy"])))
            # Live progress: Ray forwards an actor's output to the driver's terminal (and a job's log) as it comes.
            print(f"[{p.label}] epoch {epoch}/{p.epochs} loss {epochs[-1][1]:.4f} accuracy {epochs[-1][2]:.3f}", flush=True)

        if p.epochs > 0 or p.record == "step":
            train(model, self.x, self.y, loss=p.loss, epochs=max(p.epochs, 1), lr=p.lr, momentum=p.momentum,
                  weight_decay=p.weight_decay, batch_size=p.batch_size, seed=p.seed, optimizer=p.optimizer,
                  on_step=on_step, on_epoch=on_epoch, **hooks)
        rows = rec.rows
        for r in rows:
            if math.isnan(r.lr):  # epochs 0: no step took a rate, the spec's would have been used
                r.lr = p.lr
        n_params = sum(1 for q in model.parameters() if q.requires_grad)
        return {
            "step": np.array([r.step for r in rows], dtype=np.int64),
            "stats": np.stack([r.stats for r in rows]) if rows else np.zeros((0, n_params, len(STATS))),
            "loss": np.array([r.loss for r in rows], dtype=np.float64),
            "lr": np.array([r.lr for r in rows], dtype=np.float64),
            "diverged_at": state["diverged"],
            "epochs": epochs,
        }


class _EpochProbe:
    """record: epoch: the probe gradient at initialization and after each epoch; the epoch's net update ratio."""

    def __init__(self, model, x, y, loss, steps_per_epoch: int, lr: float):
        self.model, self.x, self.y, self.loss = model, x, y, loss
        self.spe, self.lr = steps_per_epoch, lr
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.rows: list[Row] = []
        self.before: list[torch.Tensor] | None = None

    def measure(self, epoch: int) -> None:
        pr = probe_gradients(self.model, self.x, self.y, self.loss)
        mask = [p.requires_grad for p in self.model.parameters()]
        stats = np.full((len(self.params), len(STATS)), np.nan)  # (P, 5)
        stats[:, :4] = pr.stats[np.array(mask)]
        if self.before is not None:
            stats[:, 4] = [update_ratio(b, p) for b, p in zip(self.before, self.params)]
        self.before = [p.detach().clone() for p in self.params]
        self.rows.append(Row(epoch * self.spe, stats, loss=pr.loss, lr=self.lr))

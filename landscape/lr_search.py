"""Learning-rate search from short trainings (the gradient-collapse criterion) and the range test.

One short training per learning rate (`LRRun.evaluate(lr)`, a work item for the
actors): the same initial weights, the same seeded batch order, the one training
loop. At initialization and after each epoch the gradient of the probe samples
is measured at the current weights; per epoch e the tracked parameter's median
gradient ratio is 10 ** (m_e - m_{e-1}) (m = median of log10|grad|, so this is
median|grad|_e / median|grad|_{e-1}) and the accuracy change is a_e - a_{e-1}.

A rate *collapses* when that ratio falls below a threshold in some epoch, when
its gradient vanishes entirely (no non-zero entry), or when it diverges (a
non-finite loss: the run stops there and is recorded as diverged, not an error).
The *breakthrough* is the largest learning rate below the smallest collapsing
one: where the median gradient no longer collapses, coming from above.

The range test (Smith 2017; fastai's lr_find) is one run whose learning rate
grows exponentially per step, stopped when the smoothed loss exceeds a multiple
of its minimum; it suggests the rate of steepest descent of the smoothed loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .gradients import probe_gradients
from .problem import default_device
from .training import StopTraining, train

# Per-epoch values one run returns (index 0 = initialization), all float64.
RUN_ARRAYS = ("median_log10_grad", "p10_log10_grad", "p90_log10_grad", "loss", "accuracy", "train_loss")


@dataclass(frozen=True)
class LRProblem:
    """Everything a learning-rate run needs; picklable, put in Ray's object store once."""

    factory: Callable[[], nn.Module]  # seeded: the same initial weights every call
    inputs: torch.Tensor
    targets: torch.Tensor
    loss: str
    epochs: int
    batch_size: int
    seed: int
    optimizer: str
    momentum: float
    weight_decay: float
    track: str  # the parameter whose median gradient decides collapse
    probe: tuple[torch.Tensor, torch.Tensor] | None = None  # (inputs, targets) measured per epoch (None: the training data)

    def probe_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.probe if self.probe is not None else (self.inputs, self.targets)

    def steps_per_epoch(self) -> int:
        return -(-len(self.inputs) // self.batch_size)


class _Runner:
    """The data on the actor's device (its GPU when Ray gave it one, else the CPU), moved once."""

    def __init__(self, problem: LRProblem):
        self.problem = problem
        self.device = default_device()
        self.x, self.y = problem.inputs.to(self.device), problem.targets.to(self.device)
        px, py = problem.probe_data()
        self.px, self.py = px.to(self.device), py.to(self.device)

    def model(self) -> nn.Module:
        return self.problem.factory().to(self.device)  # reseeded: the same weights whichever actor builds it

    def train(self, model: nn.Module, lr: float, epochs: int, **hooks) -> None:
        p = self.problem
        train(model, self.x, self.y, loss=p.loss, epochs=epochs, lr=lr, momentum=p.momentum, weight_decay=p.weight_decay,
              batch_size=p.batch_size, seed=p.seed, optimizer=p.optimizer, **hooks)


    def range_test(self, lo: float, hi: float, steps: int, beta: float, diverge_factor: float) -> dict:
        """The range test: one run, the rate growing exponentially from lo to hi (with its own training seconds)."""
        p = self.problem
        t0 = time.perf_counter()
        lrs = np.geomspace(lo, hi, steps)  # (S,)
        loss = np.full(steps, np.nan)
        smooth = np.full(steps, np.nan)
        state = {"avg": 0.0, "best": math.inf, "diverged": False}

        def on_step(step: int, metrics: dict) -> None:
            value = metrics["loss"]
            loss[step] = value
            if not math.isfinite(value):
                state["diverged"] = True
                raise StopTraining
            state["avg"] = beta * state["avg"] + (1 - beta) * value
            smooth[step] = state["avg"] / (1 - beta ** (step + 1))  # bias-corrected moving average
            state["best"] = min(state["best"], smooth[step])
            if smooth[step] > diverge_factor * state["best"]:
                state["diverged"] = True
                raise StopTraining
            if step + 1 >= steps:
                raise StopTraining

        epochs = -(-steps // p.steps_per_epoch())
        self.train(self.model(), lo, epochs, lr_at=lambda step: float(lrs[min(step, steps - 1)]), on_step=on_step)
        return {"lr": lrs, "loss": loss, "smoothed_loss": smooth, "diverged": state["diverged"],
                "suggestion": steepest_descent(lrs, smooth), "train_seconds": time.perf_counter() - t0}


class LRRun(_Runner):
    """An actor's evaluator: `evaluate(lr)` trains a fresh model at `lr` and returns per-epoch values;
    `evaluate(lo, (hi, steps, beta, diverge_factor))` runs the range test instead (one more item of the same queue)."""

    def __init__(self, problem: LRProblem):
        super().__init__(problem)
        names = [n for n, _ in problem.factory().named_parameters()]
        self.track_index = names.index(problem.track)

    def describe(self) -> dict:
        p = self.problem
        return {"track": p.track, "epochs": p.epochs, "optimizer": p.optimizer, "threads": torch.get_num_threads()}

    def evaluate(self, lr: float, range_test: tuple | None = None) -> dict:
        if range_test is not None:
            return self.range_test(lr, *range_test)
        p = self.problem
        model = self.model()
        out = {k: np.full(p.epochs + 1, np.nan) for k in RUN_ARRAYS}
        state = {"diverged": 0}

        def measure(epoch: int, model: nn.Module) -> None:
            pr = probe_gradients(model, self.px, self.py, p.loss)
            out["median_log10_grad"][epoch], out["p10_log10_grad"][epoch], out["p90_log10_grad"][epoch], _ = pr.stats[self.track_index]
            out["loss"][epoch], out["accuracy"][epoch] = pr.loss, pr.accuracy
            if not math.isfinite(pr.loss):
                state["diverged"] = max(epoch, 1)
                raise StopTraining

        def on_step(step: int, metrics: dict) -> None:
            if not math.isfinite(metrics["loss"]):
                state["diverged"] = metrics["epoch"]
                raise StopTraining

        def on_epoch(epoch: int, model: nn.Module, metrics: dict) -> None:
            out["train_loss"][epoch] = metrics["train_loss"]
            measure(epoch, model)

        try:
            measure(0, model)
        except StopTraining:  # not finite at initialization: nothing to train
            return {**out, "diverged": state["diverged"]}
        self.train(model, lr, p.epochs, on_step=on_step, on_epoch=on_epoch)
        return {**out, "diverged": state["diverged"]}


def derived(median_log10: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per epoch (..., E+1): the median-gradient ratio to one epoch before, and the accuracy change (NaN at 0)."""
    ratio = np.full(median_log10.shape, np.nan)
    gain = np.full(accuracy.shape, np.nan)
    ratio[..., 1:] = 10.0 ** (median_log10[..., 1:] - median_log10[..., :-1])
    gain[..., 1:] = accuracy[..., 1:] - accuracy[..., :-1]
    return ratio, gain


def collapsed(median_log10: np.ndarray, diverged: int, threshold: float) -> bool:
    """One run (E+1,): diverged, a ratio below `threshold` in some epoch, or a gradient that vanished entirely."""
    if diverged:
        return True
    ratio, _ = derived(median_log10, np.zeros_like(median_log10))
    if np.any(ratio[1:] < threshold):
        return True
    return bool(np.isfinite(median_log10[0]) and not np.all(np.isfinite(median_log10[1:])))


@dataclass
class Transition:
    """Where collapse sets in along increasing learning rates."""

    breakthrough: float | None  # largest rate below the smallest collapsing one (None: even the lowest collapses)
    first_collapse: float | None  # smallest collapsing rate (None: nothing collapses)

    def describe(self) -> str:
        if self.first_collapse is None:
            return f"no collapse up to {self.breakthrough:.3g}: raise hi"
        if self.breakthrough is None:
            return f"collapse already at the lowest rate {self.first_collapse:.3g}: lower lo"
        return f"breakthrough {self.breakthrough:.3g} (collapse from {self.first_collapse:.3g})"


def transition(lrs, is_collapsed) -> Transition:
    """The transition among probed rates (any order)."""
    pairs = sorted(zip((float(v) for v in lrs), (bool(c) for c in is_collapsed)))
    first = next((i for i, (_, c) in enumerate(pairs) if c), None)
    if first is None:
        return Transition(pairs[-1][0] if pairs else None, None)
    return Transition(pairs[first - 1][0] if first > 0 else None, pairs[first][0])


def interior(lo: float, hi: float, k: int) -> list[float]:
    """`k` rates evenly spaced in log between lo and hi, both excluded: one bisection round's probes."""
    return [float(v) for v in np.geomspace(lo, hi, k + 2)[1:-1]]


@dataclass
class BestGain:
    """The rate of the largest accuracy gain among the rates that did not collapse, if it is above the noise."""

    lr: float | None  # None: no rate qualifies (all collapsed, or no gain above the noise)
    gain: float  # that rate's gain (NaN: no rate left)
    noise: float  # two standard errors of the gain on the probe set
    candidates: int  # rates that did not collapse

    def describe(self) -> str:
        if self.candidates == 0:
            return "every rate collapsed or diverged: no accuracy gain to report"
        if self.lr is None:
            return (f"no accuracy gain above the probe set's noise (largest {self.gain:+.3f} among the "
                    f"{self.candidates} rate(s) that did not collapse; 2 standard errors: {self.noise:.3f})")
        return (f"largest accuracy gain at lr {self.lr:.3g}: {self.gain:+.3f} (above the probe set's noise "
                f"{self.noise:.3f}; among the {self.candidates} rate(s) that did not collapse)")


def gain_noise(before: float, after: float, samples: int) -> float:
    """Two standard errors of an accuracy difference on `samples` probe samples (binomial, the two as independent)."""
    var = (before * (1 - before) + after * (1 - after)) / max(samples, 1)
    return 2.0 * math.sqrt(max(var, 0.0)) if math.isfinite(var) else float("nan")


def best_gain(lrs: np.ndarray, accuracy: np.ndarray, diverged: np.ndarray, is_collapsed: np.ndarray | None = None,
              samples: int | None = None) -> BestGain:
    """The largest accuracy gain over the whole short training (last epoch minus initialization) among the rates
    that neither diverged nor collapsed, reported only when it exceeds two standard errors on the `samples`
    probe samples (without `samples`: any positive gain)."""
    gain = accuracy[:, -1] - accuracy[:, 0]  # (L,)
    out = np.asarray(diverged) > 0
    if is_collapsed is not None:
        out |= np.asarray(is_collapsed) > 0
    gain = np.where(out, np.nan, gain)
    candidates = int(np.isfinite(gain).sum())
    if not candidates:
        return BestGain(None, float("nan"), float("nan"), 0)
    i = int(np.nanargmax(gain))
    noise = gain_noise(float(accuracy[i, 0]), float(accuracy[i, -1]), samples) if samples else 0.0
    lr = float(np.asarray(lrs)[i]) if gain[i] > noise else None
    return BestGain(lr, float(gain[i]), noise, candidates)


def steepest_descent(lrs: np.ndarray, smoothed: np.ndarray) -> float | None:
    """The rate where the smoothed loss falls fastest per decade, between its first tenth and its minimum.

    The first tenth of the recorded steps is skipped (as fastai's lr_find skips the
    start): there the moving average rests on a handful of noisy batches.
    """
    k = int(np.isfinite(smoothed).sum())
    start = max(1, k // 10)
    s = smoothed[:k]
    end = start + int(np.argmin(s[start:])) + 1 if k > start else 0
    if end - start < 2:
        return None
    slope = np.gradient(s[start:end], np.log10(lrs[start:end]))  # loss change per decade
    return float(lrs[start + int(np.argmin(slope))])

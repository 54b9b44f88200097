"""Several data splits scanned in one pass over the grid: one evaluator per split, the same slice and points.

A scan's problem carries its main data (`inputs`, `targets`: arrays `loss`,
`accuracy`, ...) and optionally more splits (`splits`: name -> data, arrays
`<name>_loss`, `<name>_accuracy`, ...). Every split gets the evaluator of a
problem that is the scan's own with that split's data, so each number is what a
scan of that split alone would report. BatchNorm recompute re-estimates the
statistics from `bn_inputs` when given (e.g. the training split, as Garipov et
al.'s test curves do) and from each split's own data otherwise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .evaluator import Evaluator
from .problem import ScanProblem


def split_prefix(name: str) -> str:
    return f"{name}_"


class SplitsEvaluator:
    """The main data's evaluator plus one per extra split; `evaluate` merges their arrays (extra ones prefixed)."""

    def __init__(self, problem: ScanProblem, device: str | torch.device | None = None):
        main = replace(problem, splits={})
        self.main = Evaluator(main, device)
        self.device = self.main.device
        self.splits = {
            name: Evaluator(replace(main, inputs=x, targets=y), self.device) for name, (x, y) in problem.splits.items()
        }
        self.metric_names = self.main.metric_names + [
            split_prefix(s) + n for s, ev in self.splits.items() for n in ev.metric_names
        ]

    @property
    def dims(self) -> int:
        return self.main.dims

    def describe(self) -> dict:
        return {**self.main.describe(), "splits": {s: ev.n for s, ev in self.splits.items()}}

    def evaluate(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        out = self.main.evaluate(coords)
        for name, ev in self.splits.items():
            out.update({split_prefix(name) + k: v for k, v in ev.evaluate(coords).items()})
        return out


def evaluator_for(problem: ScanProblem, device: str | torch.device | None = None):
    """What an actor builds for a scan: the plain evaluator, or one per split when the problem has several."""
    return SplitsEvaluator(problem, device) if problem.splits else Evaluator(problem, device)

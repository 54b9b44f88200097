"""Evaluate whole weight states (a checkpoint itself, a point of a slice) with the one evaluator.

A state w is the slice w + 0 * d: the Evaluator with the state as its origin, at
coordinate 0, gives w bit for bit. One evaluator per actor serves any number
of states: each is copied into the origin before its pass. The first-layer
shortcut is off (it is precomputed from the origin), and one point per pass.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .evaluator import Evaluator
from .problem import ScanProblem
from .slices import Slice


class StateEvaluator:
    def __init__(self, problem: ScanProblem, device: str | torch.device | None = None):
        layout = problem.slice.layout
        self.slice = Slice("state", layout, torch.zeros(layout.size), torch.zeros(1, layout.size))
        options = replace(problem.options, points_per_pass=1, shortcut=False, expected_points=1)
        own = replace(problem, slice=self.slice, options=options, metrics=("loss", "accuracy"), metric_options={})
        self.evaluator = Evaluator(own, device)
        self.device = self.evaluator.device

    def describe(self) -> dict:
        return self.evaluator.describe()

    def evaluate(self, state) -> dict[str, float]:
        """state (P,) flat float32 (the layout of the problem's slice) -> {metric name: value}."""
        self.slice.origin.numpy()[:] = np.asarray(state, dtype=np.float32).reshape(-1)  # (P,); an out-of-memory rebuild starts here
        if self.evaluator.origin.data_ptr() != self.slice.origin.data_ptr():  # the device's copy
            self.evaluator.origin.copy_(self.slice.origin)
        out = self.evaluator.evaluate(np.zeros((1, 1)))
        return {name: float(v[0]) for name, v in out.items()}

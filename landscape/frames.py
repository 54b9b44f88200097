"""A series of slices that differ only in their directions (an animation's frames), and one evaluator for all.

`landscape animate` renders one curve_plane per epoch of a curve run: the frames
share the model, data, origin (w1) and options, and each has its own basis. A
`FrameEvaluator` holds one `Evaluator` and gives it another frame's basis
(`Evaluator.set_slice`) when a work item names another frame: the model is built
and compiled once per actor, not once per frame, and the data move to the device once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .evaluator import Evaluator
from .problem import ScanProblem, default_device


@dataclass
class FrameSeries:
    """The problem of frame 0 and every frame's directions (F, D, P); origin and everything else shared."""

    problem: ScanProblem
    directions: torch.Tensor  # (F, D, P) fp32

    @property
    def frames(self) -> int:
        return self.directions.shape[0]

    def problem_of(self, frame: int) -> ScanProblem:
        return replace(self.problem, slice=replace(self.problem.slice, directions=self.directions[frame]))


class FrameEvaluator:
    """`evaluate(frame, coords)`: the grid points of one frame's plane; switches frames when needed."""

    def __init__(self, series: FrameSeries, device: str | torch.device | None = None):
        self.device = torch.device(device) if device is not None else default_device()
        p = series.problem
        moved = dict(inputs=p.inputs.to(self.device), targets=p.targets.to(self.device),
                     bn_inputs=None if p.bn_inputs is None else p.bn_inputs.to(self.device))
        self.series = replace(series, problem=replace(p, **moved))  # the data go to the device once
        self.frame = -1
        self.switches = 0
        self._switch(0)  # fail at actor start, not at the first tile, if the evaluator cannot be built

    def _switch(self, frame: int) -> None:
        if not 0 <= frame < self.series.frames:
            raise IndexError(f"frame {frame} is not in 0..{self.series.frames - 1}")
        if self.frame < 0:
            self.evaluator = Evaluator(self.series.problem_of(frame), self.device)
        else:
            self.evaluator.set_slice(self.series.problem_of(frame).slice)
        self.frame = frame
        self.switches += 1

    def describe(self) -> dict:
        return self.evaluator.describe()

    def evaluate(self, frame: int, coords: np.ndarray) -> dict[str, np.ndarray]:
        if frame != self.frame:
            self._switch(frame)
        return self.evaluator.evaluate(coords)

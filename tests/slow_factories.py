"""A user model for the fault tests: slow on purpose, and able to fail at chosen grid points.

Scanned along `line_between(a, b)` with checkpoints whose `where` parameter is
0 in `a` and 1 in `b`, `where` equals the grid coordinate x at every grid point
(0 + x * 1 is exact in fp32), so the model knows which point, hence which
tile, it is evaluating: a fault can be pinned to one tile. `where` does not
touch the outputs. Its initial value is NaN, so the driver's own checks (which
run the model with its initial weights) never trigger a fault or a mark.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import torch
from torch import nn


class FaultyModel(nn.Module):
    def __init__(
        self,
        hidden: int = 6,
        delay: float = 0.0,
        mark_dir: str | None = None,
        die_at: tuple[float, float] | None = None,
        raise_at: tuple[float, float] | None = None,
        only_in_pid: int | None = None,
        hold: str | None = None,
    ):
        super().__init__()
        if only_in_pid is not None and os.getpid() != only_in_pid:  # builds in the driver, fails in actors
            raise RuntimeError(f"cannot build this model in process {os.getpid()}")
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 3))
        self.where = nn.Parameter(torch.tensor([math.nan]))
        self.delay, self.mark_dir, self.die_at, self.raise_at = delay, mark_dir, die_at, raise_at
        self.hold = hold  # while this file exists, grid points wait (a test holds the scan mid-way)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_coord = float(self.where)  # a plain tensor here: the evaluator calls one point at a time on CPU
        if not math.isnan(x_coord):
            if self.mark_dir:  # "this process is evaluating a grid point": the file name is its pid
                Path(self.mark_dir, str(os.getpid())).touch()
            if self.die_at and self.die_at[0] <= x_coord <= self.die_at[1]:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.raise_at and self.raise_at[0] <= x_coord <= self.raise_at[1]:
                raise RuntimeError(f"poisoned grid point x={x_coord:g}")
            time.sleep(self.delay)
            while self.hold and os.path.exists(self.hold):
                time.sleep(0.02)
        return self.net(x)


def make_model(**options) -> nn.Module:
    return FaultyModel(**options)


def line_checkpoints(folder: Path, hidden: int = 6) -> tuple[Path, Path]:
    """Two checkpoints a (where = 0) and b (where = 1) with different weights."""
    paths = []
    for seed, where in [(0, 0.0), (1, 1.0)]:
        torch.manual_seed(seed)
        state = FaultyModel(hidden).state_dict()
        state["where"] = torch.tensor([where])
        paths.append(Path(folder) / f"w{int(where)}.pt")
        torch.save(state, paths[-1])
    return paths[0], paths[1]

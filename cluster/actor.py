"""The actor: a thin shell around a plain evaluator object.

It knows nothing of models or losses: it builds whatever `make_evaluator`
returns from the problem (resolved from the object store once) and calls its
`evaluate(coords)`.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

import numpy as np


class TileWorker:
    def __init__(self, make_evaluator: Callable[[Any], Any], problem: Any, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.evaluator = make_evaluator(problem)

    def ready(self) -> dict:
        """Where this actor runs (also proves construction succeeded)."""
        dev = getattr(self.evaluator, "device", "cpu")
        return {"pid": os.getpid(), "host": socket.gethostname(), "device": str(dev)}

    def evaluate(self, coords: np.ndarray) -> tuple[dict, float]:
        """(results, seconds spent inside the evaluator)."""
        t0 = time.perf_counter()
        out = self.evaluator.evaluate(coords)
        return out, time.perf_counter() - t0

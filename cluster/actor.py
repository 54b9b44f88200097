"""The actor: a thin shell around a plain evaluator object.

It knows nothing of models or losses: it builds whatever `make_evaluator`
returns from the problem (resolved from the object store once) and calls its
`evaluate(*args)` per work item (a tile's coordinates, a learning rate, ...).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable


def _node_id() -> str | None:
    """The Ray node this process runs on; None outside Ray (the class is usable without it)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:
        return None


class TileWorker:
    def __init__(self, make_evaluator: Callable[[Any], Any], problem: Any, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.evaluator = make_evaluator(problem)

    def ready(self) -> dict:
        """Where this actor runs (also proves construction succeeded): pid, host, Ray node, device, plan."""
        dev = getattr(self.evaluator, "device", "cpu")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "node_id": _node_id(), "device": str(dev)}
        if hasattr(self.evaluator, "describe"):
            info["evaluator"] = self.evaluator.describe()  # precision, points per pass, chunk, shortcut...
        return info

    def evaluate(self, *args) -> tuple[Any, float]:
        """(what the evaluator's `evaluate(*args)` returns, seconds spent in it)."""
        t0 = time.perf_counter()
        out = self.evaluator.evaluate(*args)
        return out, time.perf_counter() - t0

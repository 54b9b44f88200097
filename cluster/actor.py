"""The actor: a thin shell around a plain evaluator object.

It knows nothing of models or losses: it builds whatever `make_evaluator`
returns from the problem (resolved from the object store once) and calls its
`evaluate(*args)` per work item (a tile's coordinates, a learning rate, ...).
What it does know is its share of the node: an actor given GPUs checks that
PyTorch can use one, and an actor given none keeps off the GPUs (Ray leaves
CUDA_VISIBLE_DEVICES alone for it, so PyTorch would pick GPU 0 unaccounted).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

from landscape.errors import ClusterError


def _ray_context() -> tuple[str | None, str | None, list]:
    """(Ray node id, node IP, GPU ids Ray gave this process); Nones outside Ray (the class is usable without it)."""
    try:
        import ray

        if not ray.is_initialized():
            return None, None, []
        return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address(), [str(g) for g in ray.get_gpu_ids()]
    except Exception:
        return None, None, []


def _no_cuda_reason(torch) -> str | None:
    """Why PyTorch cannot use a CUDA device in this process, or None when it can."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a build without CUDA"
    try:
        torch.cuda.init()
    except Exception as e:  # no driver, driver too old, device busy or lost...
        return f"CUDA does not initialize ({(str(e).strip().splitlines() or [type(e).__name__])[0][:200]})"
    if torch.cuda.device_count() == 0:
        return "torch sees no CUDA device"
    return None


class TileWorker:
    def __init__(
        self, make_evaluator: Callable[[Any], Any], problem: Any, threads: int | None = None, require_cuda: bool = True
    ):
        self.node_id, self.node_ip, self.gpu_ids = _ray_context()
        if self.node_id is not None and not self.gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # no GPU was given: compute on the CPU, even on a GPU node
        import torch

        if self.gpu_ids and require_cuda and (why := _no_cuda_reason(torch)):
            raise ClusterError(
                f"node {self.node_ip} ({socket.gethostname()}) gave this actor GPU {','.join(self.gpu_ids)} "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}) but {why}: "
                "install a CUDA build of PyTorch and the NVIDIA driver there, or run with --gpus-per-actor 0"
            )
        if threads:
            torch.set_num_threads(threads)
        self.evaluator = make_evaluator(problem)

    def ready(self) -> dict:
        """Where this actor runs (also proves construction succeeded): pid, host, Ray node, GPUs, device, plan."""
        dev = getattr(self.evaluator, "device", "cpu")
        info = {
            "pid": os.getpid(), "host": socket.gethostname(), "node_id": self.node_id, "node_ip": self.node_ip,
            "gpu_ids": self.gpu_ids, "device": str(dev),
        }
        if hasattr(self.evaluator, "describe"):
            info["evaluator"] = self.evaluator.describe()  # precision, points per pass, chunk, shortcut...
        return info

    def evaluate(self, *args) -> tuple[Any, float]:
        """(what the evaluator's `evaluate(*args)` returns, seconds spent in it)."""
        t0 = time.perf_counter()
        out = self.evaluator.evaluate(*args)
        return out, time.perf_counter() - t0

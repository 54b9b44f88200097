"""Data-parallel training on Ray: Ray Train's TorchTrainer (one process per worker, DDP over gloo or NCCL).

The training function is the caller's (it runs the one training loop with
`shard=(rank, world)`, so each worker takes its share of every batch and DDP
averages the gradients); this module only places the workers and turns a failed
run into one ClusterError line. `fit()` runs in a thread while the driver's main thread
polls for Ctrl-C and SIGTERM (cluster/interrupts.py), so a signal ends the run at a safe
point, with the CLI's one line, not inside Ray's C++ waits; off the main thread Ray Train
also leaves the process's SIGINT handler alone.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Any, Callable

from landscape.errors import ClusterError

from . import interrupts


def worker_rank() -> tuple[int, int]:
    """(rank, world size) inside a Ray Train worker."""
    import ray.train

    ctx = ray.train.get_context()
    return ctx.get_world_rank(), ctx.get_world_size()


def worker_device():
    import ray.train.torch

    return ray.train.torch.get_device()


def wrap_model(model):
    """DistributedDataParallel around `model` on this worker's device (as is for one worker)."""
    import ray.train.torch

    return ray.train.torch.prepare_model(model)


def check_fits(workers: int, cpus: float, gpus: float) -> None:
    """ClusterError when the cluster as a whole cannot hold the workers (Ray Train would wait forever)."""
    import ray

    have = ray.cluster_resources()
    need_cpu, need_gpu = workers * cpus, workers * gpus
    if need_cpu > have.get("CPU", 0) or need_gpu > have.get("GPU", 0):
        raise ClusterError(
            f"asked for {workers} training worker(s) x (CPU {cpus:g}, GPU {gpus:g}); the cluster has CPU "
            f"{have.get('CPU', 0):g}, GPU {have.get('GPU', 0):g}: lower --workers or cluster.gpus_per_worker"
        )


def store_on_master_addr() -> None:
    """In a Ray Train worker: make rank 0's TCPStore (torch.distributed's rendezvous server) listen on
    MASTER_ADDR (the node's address: 127.0.0.1 on a local cluster) only.

    torch binds that server to every interface ('::'); handed a socket already bound to an address, it
    listens there instead. Run in every worker before the process group is set up."""
    import importlib
    import socket

    import torch.distributed as dist

    rendezvous = importlib.import_module("torch.distributed.rendezvous")  # the attribute is a function of that name

    original = rendezvous._create_c10d_store
    if getattr(original, "landscape_bound", False):
        return

    def create(hostname, port, rank, world_size, timeout, use_libuv=True):
        if rank != 0 or rendezvous._torchelastic_use_agent_store():
            return original(hostname, port, rank, world_size, timeout, use_libuv)
        family = socket.AF_INET6 if ":" in hostname else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((hostname, port))
        sock.listen(128)
        return dist.TCPStore(host_name=hostname, port=port, world_size=world_size, is_master=True, timeout=timeout,
                             multi_tenant=True, use_libuv=use_libuv, master_listen_fd=sock.detach())

    create.landscape_bound = True
    rendezvous._create_c10d_store = create


def torch_config():
    """Ray Train's TorchConfig, whose backend first binds the rendezvous server to the node's address."""
    from ray.train.torch import TorchConfig

    base = TorchConfig().backend_cls

    class Backend(base):
        def on_start(self, worker_group, backend_config):
            worker_group.execute(store_on_master_addr)
            super().on_start(worker_group, backend_config)

    class Config(TorchConfig):
        @property
        def backend_cls(self):
            return Backend

    return Config()


def run_data_parallel(fn: Callable[[dict], Any], config: dict, workers: int, cpus: float, gpus: float, name: str) -> None:
    """Run `fn(config)` on `workers` Ray Train workers (TorchTrainer); ClusterError if it fails."""
    try:
        from ray.train import RunConfig, ScalingConfig, TrainingFailedError
        from ray.train.torch import TorchTrainer
    except ImportError:  # ray.train needs pyarrow and pandas, which plain `ray` does not bring
        raise ClusterError(
            "data-parallel training needs Ray Train's packages: pip install 'landscape[train]' (or 'ray[train]')"
        ) from None

    check_fits(workers, cpus, gpus)
    resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    with tempfile.TemporaryDirectory(prefix="landscape-train-") as storage:  # Ray Train's run state; we checkpoint ourselves
        trainer = TorchTrainer(
            fn,
            train_loop_config=config,
            torch_config=torch_config(),
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus > 0, resources_per_worker=resources),
            run_config=RunConfig(name=name, storage_path=storage),
        )
        try:
            fit_at_safe_point(trainer.fit)
        except TrainingFailedError as e:
            raise ClusterError(f"data-parallel training failed: {_first_line(e)}") from None


def fit_at_safe_point(fit: Callable[[], Any], poll_s: float = 0.2) -> Any:
    """`fit()` in a thread, the main thread polling: a signal (Ctrl-C, SIGTERM) is raised here between polls;
    whatever `fit` raises is raised here. The thread is a daemon: the process's exit ends it."""
    out: dict = {}

    def target() -> None:
        try:
            out["result"] = fit()
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e

    t = threading.Thread(target=target, name="ray-train-fit", daemon=True)
    t.start()
    with interrupts.polled():
        while t.is_alive():
            t.join(poll_s)
            interrupts.check()
    if "error" in out:
        raise out["error"]
    return out.get("result")


def _first_line(e: BaseException) -> str:
    """The workers' own error, not Ray Train's wrapping."""
    cause = e
    while cause.__cause__ is not None:
        cause = cause.__cause__
    lines = [ln.strip() for ln in str(cause).strip().splitlines() if ln.strip()]
    return lines[-1][:400] if lines else type(cause).__name__

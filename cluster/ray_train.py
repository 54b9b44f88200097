"""Data-parallel training on Ray: Ray Train's TorchTrainer (one process per worker, DDP over gloo or NCCL).

The training function is the caller's (it runs the one training loop with
`shard=(rank, world)`, so each worker takes its share of every batch and DDP
averages the gradients); this module only places the workers and turns a failed
run into one ClusterError line.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from typing import Any, Callable

from landscape.errors import ClusterError


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
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus > 0, resources_per_worker=resources),
            run_config=RunConfig(name=name, storage_path=storage),
        )
        main = threading.current_thread() is threading.main_thread()
        saved = signal.getsignal(signal.SIGINT) if main else None
        try:
            trainer.fit()
        except TrainingFailedError as e:
            raise ClusterError(f"data-parallel training failed: {_first_line(e)}") from None
        finally:
            if saved is not None:  # fit() leaves Ray Train's own Ctrl-C handler installed in this process
                signal.signal(signal.SIGINT, saved)


def _first_line(e: BaseException) -> str:
    """The workers' own error, not Ray Train's wrapping."""
    cause = e
    while cause.__cause__ is not None:
        cause = cause.__cause__
    lines = [ln.strip() for ln in str(cause).strip().splitlines() if ln.strip()]
    return lines[-1][:400] if lines else type(cause).__name__

"""The driver: put the problem in the object store once, start actors, feed them work items.

`run_work` is the generic part (any queue of items: tiles, frames' tiles,
learning rates); `evaluate_tiles` is a scan's use of it, streaming tiles into Zarr
with progress and Ray metrics.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable


from .actor import TileWorker
from .metrics import ScanMetrics
from .progress import Progress
from .scheduler import SchedulerStats, TileScheduler
from .session import ActorRequest
from .store import ResultStore


@dataclass
class DriverReport:
    points: int
    tiles: int  # work items queued by this run (tiles, or preview passes of tiles)
    wall_seconds: float
    evaluator_seconds: float  # summed over actors
    actor_deaths: int
    retries: int
    actors: list[dict]
    writes: int = 0  # results stored by this run: equal to `tiles`, with no retries, means each was computed and written once

    @property
    def evals_per_second(self) -> float:
        return self.points / self.wall_seconds if self.wall_seconds > 0 else float("nan")


def actor_factory(make_evaluator: Callable[[Any], Any], problem_ref: Any, request: ActorRequest,
                  label: str | None = None) -> Callable[[], Any]:
    """A function starting one actor as `request` asks (CPUs, GPUs, CUDA check) that builds `make_evaluator(problem)`;
    with `label` (the scan's name) the actors are named `<label>/actor-K-<run>` on the dashboard."""
    import ray

    worker = ray.remote(TileWorker)
    threads = max(1, int(request.cpus))
    started = itertools.count()
    run_tag = uuid.uuid4().hex[:6]  # actor names are unique per namespace: two runs of one scan must not clash

    def make_actor():
        opts = dict(num_cpus=request.cpus, num_gpus=request.gpus, max_restarts=0)
        if label:
            opts["name"] = f"{label}/actor-{next(started)}-{run_tag}"
        return worker.options(**opts).remote(make_evaluator, problem_ref, threads, request.require_cuda)

    return make_actor


def run_work(
    problem: Any,
    make_evaluator: Callable[[Any], Any],
    items: Iterable,
    count: int,
    args_of: Callable[[Any], tuple],
    on_result: Callable[[Any, Any, SchedulerStats], None],
    request: ActorRequest,
    *,
    max_attempts: int = 3,
    placement_timeout_s: float = 60.0,
    label: str | None = None,
) -> SchedulerStats:
    """Evaluate `count` work items on Ray actors that each build `make_evaluator(problem)` once.

    Each actor runs `evaluate(*args_of(item))` per item; `on_result(item, result,
    stats)` runs here as results arrive (stats: deaths and retries so far). Dead
    actors' items are redone; an item failing `max_attempts` times fails the job
    (ClusterError naming it). `label` (the scan's name) names the actors and tasks on the dashboard.
    """
    import ray

    problem_ref = ray.put(problem)  # once; every actor reads the same object
    # A GPU actor finishes a tile in milliseconds to seconds: a second one queued behind it keeps the GPU busy
    # while the driver stores the first. CPU actors share their cores with the driver: one at a time.
    scheduler = TileScheduler(
        actor_factory(make_evaluator, problem_ref, request, label), request.actors, request.describe,
        max_attempts=max_attempts, placement_timeout_s=placement_timeout_s, in_flight=2 if request.gpus > 0 else 1,
        label=label,
    )
    return scheduler.run(items, args_of, lambda item, result: on_result(item, result, scheduler.stats), count=count)


def store_tiles(store: ResultStore) -> Callable[[Any, dict], int]:
    """The `write` of a plain tile scan: store the tile's result, which completes one tile."""

    def write(tile, result: dict) -> int:
        store.write_tile(tile, result)
        return 1

    return write


def evaluate_tiles(
    problem: Any,
    make_evaluator: Callable[[Any], Any],
    store: ResultStore,
    items: Iterable,
    count: int,
    points: int,
    args_of: Callable[[Any], tuple],
    write: Callable[[Any, dict], int],
    request: ActorRequest,
    *,
    max_attempts: int = 3,
    placement_timeout_s: float = 60.0,
    label: str = "scan",
) -> DriverReport:
    """Evaluate `count` work items (`points` grid points) of a scan; each result is stored at once.

    `args_of(item)` gives the evaluator's arguments (the item's coordinates);
    `write(item, result)` stores it and returns how many tiles it completed.
    """
    t0 = time.monotonic()
    # Progress and metrics count the whole scan's stored tiles, as `landscape status` does:
    # tiles stored by an earlier (interrupted) run too; a preview pass that completes no tile adds none.
    done_mask = store.done_mask()
    tiles_done = [int(done_mask.sum())]
    writes = [0]
    progress = Progress(done_mask.size, points, label=label, tiles_done=tiles_done[0])
    metrics = ScanMetrics(label)
    metrics.update(tiles_done=tiles_done[0], tiles_total=done_mask.size, evals_per_second=0, actor_deaths=0, tile_retries=0)

    def on_result(item, result: dict, stats: SchedulerStats) -> None:
        stored = write(item, result)
        tiles_done[0] += stored
        writes[0] += 1
        n = len(next(iter(result.values())))
        progress.update(tiles=stored, points=n)
        metrics.add_points(n)
        metrics.update(
            tiles_done=tiles_done[0],
            evals_per_second=progress.rate,
            actor_deaths=stats.actor_deaths,
            tile_retries=stats.retries,
        )

    stats = run_work(
        problem, make_evaluator, items, count, args_of, on_result, request,
        max_attempts=max_attempts, placement_timeout_s=placement_timeout_s, label=label,
    )
    return DriverReport(
        points=points,
        tiles=count,
        wall_seconds=time.monotonic() - t0,
        evaluator_seconds=stats.evaluator_seconds,
        actor_deaths=stats.actor_deaths,
        retries=stats.retries,
        actors=stats.actors,
        writes=writes[0],
    )

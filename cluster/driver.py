"""The driver: put the problem in the object store once, start actors, stream tiles into Zarr."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .actor import TileWorker
from .metrics import ScanMetrics
from .progress import Progress
from .scheduler import TileScheduler
from .session import ActorRequest
from .store import ResultStore
from .tiling import Tile, tile_coords


@dataclass
class DriverReport:
    points: int
    tiles: int
    wall_seconds: float
    evaluator_seconds: float  # summed over actors
    actor_deaths: int
    retries: int
    actors: list[dict]

    @property
    def evals_per_second(self) -> float:
        return self.points / self.wall_seconds if self.wall_seconds > 0 else float("nan")


def evaluate_tiles(
    problem: Any,
    make_evaluator: Callable[[Any], Any],
    store: ResultStore,
    tiles: list[Tile],
    x: np.ndarray,
    y: np.ndarray | None,
    request: ActorRequest,
    *,
    max_attempts: int = 3,
    placement_timeout_s: float = 60.0,
    label: str = "scan",
) -> DriverReport:
    """Evaluate `tiles` on Ray actors; each finished tile is written and marked done at once."""
    import ray

    t0 = time.monotonic()
    problem_ref = ray.put(problem)  # once; every actor reads the same object
    worker = ray.remote(TileWorker)
    threads = max(1, int(request.cpus))

    def make_actor():
        opts = dict(num_cpus=request.cpus, num_gpus=request.gpus, max_restarts=0)
        return worker.options(**opts).remote(make_evaluator, problem_ref, threads)

    total_points = sum(int(np.prod(t.shape)) for t in tiles)
    progress = Progress(len(tiles), total_points, label=label)
    # The metrics count the whole scan: tiles stored by an earlier (interrupted) run too.
    done_mask = store.done_mask()
    todo = {t.index for t in tiles}
    stored_before = sum(1 for i in zip(*np.nonzero(done_mask)) if tuple(int(k) for k in i) not in todo)
    metrics = ScanMetrics(label)
    metrics.update(tiles_done=stored_before, tiles_total=done_mask.size, evals_per_second=0, actor_deaths=0, tile_retries=0)

    def on_result(tile: Tile, result: dict) -> None:
        store.write_tile(tile, result)
        points = int(np.prod(tile.shape))
        progress.update(points=points)
        metrics.add_points(points)
        stats = scheduler.stats
        metrics.update(
            tiles_done=stored_before + progress.tiles,
            evals_per_second=progress.rate,
            actor_deaths=stats.actor_deaths,
            tile_retries=stats.retries,
        )

    scheduler = TileScheduler(
        make_actor, request.actors, request.describe, max_attempts=max_attempts, placement_timeout_s=placement_timeout_s
    )
    stats = scheduler.run(tiles, lambda t: (tile_coords(t, x, y),), on_result)
    return DriverReport(
        points=total_points,
        tiles=len(tiles),
        wall_seconds=time.monotonic() - t0,
        evaluator_seconds=stats.evaluator_seconds,
        actor_deaths=stats.actor_deaths,
        retries=stats.retries,
        actors=stats.actors,
    )

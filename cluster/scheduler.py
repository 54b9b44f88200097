"""Feed tiles to actors from a queue, as each actor frees up; survive dead actors.

A hand-written `ray.wait` loop (not ActorPool) so we always know which tile a
dead actor was holding: that tile goes back on the queue and a replacement
actor is started. A tile that fails `max_attempts` times fails the job.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import ray
from ray.exceptions import RayActorError, RayTaskError

from landscape.errors import ClusterError

from .tiling import Tile


@dataclass
class SchedulerStats:
    evaluator_seconds: float = 0.0
    actor_deaths: int = 0
    retries: int = 0
    actors: list[dict] = field(default_factory=list)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


class TileScheduler:
    def __init__(
        self,
        make_actor: Callable[[], Any],
        n_actors: int,
        describe_request: Callable[[], str],
        max_attempts: int = 3,
        placement_timeout_s: float = 60.0,
    ):
        self.make_actor = make_actor
        self.n_actors = n_actors
        self.describe_request = describe_request
        self.max_attempts = max_attempts
        self.placement_timeout_s = placement_timeout_s
        self.stats = SchedulerStats()

    def run(
        self,
        tiles: list[Tile],
        args_of: Callable[[Tile], tuple],
        on_result: Callable[[Tile, Any], None],
    ) -> SchedulerStats:
        """Evaluate every tile; `on_result(tile, result)` runs in this process."""
        queue: deque[Tile] = deque(tiles)
        attempts: dict[tuple, int] = {}
        running: dict[Any, tuple[Any, Tile]] = {}  # task ref -> (actor, tile)
        starting: dict[Any, tuple[Any, float]] = {}  # ready ref -> (actor, started)
        idle: list[Any] = []
        ever_ready = False

        def start_actor():
            actor = self.make_actor()
            starting[actor.ready.remote()] = (actor, time.monotonic())

        for _ in range(min(self.n_actors, max(len(tiles), 1))):
            start_actor()

        while queue or running:
            while idle and queue:
                actor, tile = idle.pop(), queue.popleft()
                ref = actor.evaluate.options(name=tile.name).remote(*args_of(tile))
                running[ref] = (actor, tile)
            refs = list(running) + list(starting)
            if not refs:
                raise ClusterError(f"no actor is left to evaluate {len(queue)} remaining tile(s); {self.describe_request()}")
            done, _ = ray.wait(refs, num_returns=1, timeout=1.0)
            for ref in done:
                if ref in starting:
                    actor, _ = starting.pop(ref)
                    try:
                        self.stats.actors.append(ray.get(ref))
                        idle.append(actor)
                        ever_ready = True
                    except RayActorError as e:
                        self.stats.actor_deaths += 1
                        if not ever_ready and not starting and not idle and not running:
                            raise ClusterError(f"the actors failed to start: {_first_line(e)}") from None
                    except RayTaskError as e:  # the evaluator's constructor raised: same everywhere
                        raise ClusterError(f"an actor failed to build its evaluator: {_first_line(e)}") from None
                    continue
                actor, tile = running.pop(ref)
                try:
                    result, seconds = ray.get(ref)
                except RayActorError as e:
                    # The actor (or its node) died holding this tile: re-queue it, replace the actor.
                    self.stats.actor_deaths += 1
                    self._retry(tile, attempts, queue, e)
                    start_actor()
                    continue
                except RayTaskError as e:
                    self._retry(tile, attempts, queue, e)
                    idle.append(actor)
                    continue
                self.stats.evaluator_seconds += seconds
                on_result(tile, result)
                idle.append(actor)
            self._expire_starting(starting, idle, running, ever_ready)
        for actor in idle:
            ray.kill(actor)
        return self.stats

    def _retry(self, tile: Tile, attempts: dict, queue: deque, error: BaseException) -> None:
        attempts[tile.index] = attempts.get(tile.index, 0) + 1
        if attempts[tile.index] >= self.max_attempts:
            raise ClusterError(
                f"{tile.name} failed {attempts[tile.index]} times (cluster.max_attempts); "
                f"last error: {_first_line(error)}"
            )
        self.stats.retries += 1
        queue.appendleft(tile)

    def _expire_starting(self, starting: dict, idle: list, running: dict, ever_ready: bool) -> None:
        """Give up on actors that could not be placed within the timeout."""
        nowt = time.monotonic()
        for ref, (actor, t0) in list(starting.items()):
            if nowt - t0 > self.placement_timeout_s:
                starting.pop(ref)
                ray.kill(actor)
        if not starting and not idle and not running and not ever_ready:
            raise ClusterError(
                f"no actor could be placed within {self.placement_timeout_s:.0f} s: {self.describe_request()}"
            )

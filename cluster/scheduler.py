"""Feed work items to actors from a queue, as each actor frees up; survive dead actors.

A hand-written `ray.wait` loop (not ActorPool) so we always know which item a
dead actor was holding: that item goes back on the queue and a replacement
actor is started. An item that fails `max_attempts` times fails the job.
Items are scan tiles, animation frames' tiles, learning rates of a scan, ...:
Each actor holds up to `in_flight` items at once (its next one queued behind the one it
computes), so a fast GPU actor does not idle while the driver stores a result and
sends the next item; an actor's death re-queues all it held. Items are
anything with `index` (hashable, unique), `name` (the Ray task's name) and
`extent` (what error messages say it covers). They are drawn lazily from an
iterable, so a queue of a million tiles is never a list of a million objects.
The iterable may be a live producer: whenever the queue is empty it is asked
again, so `on_result` may make new items (the learning-rate bisection queues
each round when the last result of the one before arrives); the run ends when
it has nothing more and nothing is running.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import ray
from ray.exceptions import ObjectLostError, RayActorError, RayTaskError

from landscape.errors import ClusterError

from . import interrupts
from .tiling import Tile


@dataclass
class SchedulerStats:
    evaluator_seconds: float = 0.0
    actor_deaths: int = 0
    retries: int = 0
    actors: list[dict] = field(default_factory=list)


def _first_line(e: BaseException) -> str:
    """One line about an error: the user's exception for a task error, else the cause."""
    if isinstance(e, RayActorError) and not isinstance(e, RayTaskError):
        # Multi-line "died unexpectedly ... pid: N ... ip: A ... <cause>": keep pid, ip and the cause.
        text = str(e)
        if e.actor_init_failed:  # its constructor raised: the user's exception is the last line
            last = text.strip().splitlines()[-1]
            return re.sub(r"^landscape\.errors\.\w+: ", "", last)  # our errors already say what is wrong
        pid, ip = re.search(r"pid: (\d+)", text), re.search(r"ip: (\S+)", text)
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        where = ", ".join(w for w in [pid and f"pid {pid[1]}", ip and f"ip {ip[1]}"] if w)
        cause = (lines[-1] if lines else "the actor died").split(" Some common causes")[0]  # drop Ray's long advice
        return f"{type(e).__name__}{f' ({where})' if where else ''}: {cause[:300]}"
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


def _collect(ref) -> None:
    """Fetch a failed task's error so Ray does not report it as unhandled."""
    try:
        ray.get(ref, timeout=0)
    except Exception:
        pass


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # already dead, or its node is gone: nothing left to stop
        pass


class TileScheduler:
    def __init__(
        self,
        make_actor: Callable[[], Any],
        n_actors: int,
        describe_request: Callable[[], str],
        max_attempts: int = 3,
        placement_timeout_s: float = 60.0,
        in_flight: int = 1,
        label: str | None = None,
    ):
        self.make_actor = make_actor
        self.in_flight = max(1, in_flight)
        self.task_prefix = f"{label}/" if label else ""  # the dashboard tells two scans' tasks apart
        self.n_actors = n_actors
        self.describe_request = describe_request
        self.max_attempts = max_attempts
        self.placement_timeout_s = placement_timeout_s
        self.stats = SchedulerStats()

    def run(
        self,
        tiles: Iterable[Tile],
        args_of: Callable[[Tile], tuple],
        on_result: Callable[[Tile, Any], None],
        count: int | None = None,
    ) -> SchedulerStats:
        """Evaluate every item; `on_result(item, result)` runs in this process.

        `count` (the number of items) is needed when `tiles` is an iterator.
        Every actor it started is stopped when it returns or raises, so a failed
        scan leaves no actor holding resources in a shared Ray session.
        """
        if count is None:
            tiles = list(tiles)
            count = len(tiles)
        self._fresh: Iterator[Tile] = iter(tiles)
        self._queue: deque[Tile] = deque()  # items to redo, ahead of fresh ones
        self._attempts: dict[tuple, int] = {}
        self._running: dict[Any, tuple[Any, Tile]] = {}  # task ref -> (actor, tile)
        self._starting: dict[Any, tuple[Any, float]] = {}  # ready ref -> (actor, started)
        self._idle: list[Any] = []  # one entry per free slot of a live actor (in_flight slots each)
        self._orphans: set = set()  # task refs of dead actors whose items were re-queued already
        self._sent: dict[Any, int] = {}  # task ref -> when it was sent (an actor runs its items in that order)
        self._sends = 0
        self._ever_ready = False
        # Replacements for actors that die while starting, after the scan got going
        # (e.g. placed on a node that is going away); bounded so it cannot loop.
        self._restarts_left = self.n_actors * self.max_attempts
        try:
            for _ in range(min(self.n_actors, max(count, 1))):
                self._start_actor()
            with interrupts.polled():
                self._loop(args_of, on_result)
        finally:
            actors = [*self._idle, *(a for a, _ in self._running.values()), *(a for a, _ in self._starting.values())]
            for actor in {id(a): a for a in actors}.values():
                _kill(actor)
            self._idle, self._running, self._starting = [], {}, {}
        return self.stats

    def _start_actor(self) -> None:
        actor = self.make_actor()
        self._starting[actor.ready.remote()] = (actor, time.monotonic())

    def _next(self) -> Tile | None:
        if self._queue:
            return self._queue.popleft()
        return next(self._fresh, None)

    def _has_work(self) -> bool:
        if self._queue:
            return True
        nxt = next(self._fresh, None)
        if nxt is None:
            return False
        self._queue.append(nxt)
        return True

    def _loop(self, args_of, on_result) -> None:
        running, starting, idle = self._running, self._starting, self._idle
        while self._has_work() or running:
            while idle and self._has_work():
                # The free slot of the least busy actor: the last items spread over all actors.
                busy = Counter(id(a) for a, _ in running.values())
                actor = idle.pop(min(range(len(idle)), key=lambda i: busy[id(idle[i])]))
                tile = self._next()
                ref = actor.evaluate.options(name=self.task_prefix + tile.name).remote(*args_of(tile))
                running[ref] = (actor, tile)
                self._sent[ref] = self._sends = self._sends + 1
            refs = list(running) + list(starting) + list(self._orphans)
            if not refs:
                raise ClusterError(f"no actor is left to evaluate the remaining work; {self.describe_request()}")
            done, _ = ray.wait(refs, num_returns=1, timeout=1.0)
            interrupts.check()  # Ctrl-C or SIGTERM during the wait: end here, between Ray calls
            for ref in done:
                if ref in self._orphans:  # an item of a dead actor, already re-queued: collect its error
                    self._orphans.discard(ref)
                    _collect(ref)
                    continue
                if ref in starting:
                    self._started(ref)
                    continue
                actor, tile = running.pop(ref)
                sent = self._sent.pop(ref)
                try:
                    result, seconds = ray.get(ref)
                except RayActorError as e:
                    # The actor (or its node) died holding this tile: re-queue it, replace the actor.
                    self._lost_actor(actor, sent, tile, e)
                    continue
                except (RayTaskError, ObjectLostError) as e:
                    # The evaluator raised, or the finished result was lost with its node:
                    # the tile again; a dead actor shows up at its next task.
                    self._retry(tile, e)
                    idle.append(actor)
                    continue
                self.stats.evaluator_seconds += seconds
                on_result(tile, result)
                idle.append(actor)
            self._expire_starting()

    def _lost_actor(self, actor, sent: int, tile: Tile, error: BaseException) -> None:
        """A dead actor: count it, replace it, re-queue every item it held. Only the item it was
        computing (the one sent first) counts as an attempt; those queued behind it never started."""
        self.stats.actor_deaths += 1
        _kill(actor)  # ActorUnavailableError: it may still be alive somewhere
        self._idle[:] = [a for a in self._idle if a is not actor]  # its free slots go with it
        held = [(sent, tile)]
        for r in [r for r, (a, _) in self._running.items() if a is actor]:
            held.append((self._sent.pop(r), self._running.pop(r)[1]))
            self._orphans.add(r)
        self._start_actor()
        held.sort(key=lambda st: st[0])
        for _, t in reversed(held[1:]):
            self._queue.appendleft(t)
            self.stats.retries += 1
        self._retry(held[0][1], error)  # ahead of them: it was sent first

    def _started(self, ref) -> None:
        actor, _ = self._starting.pop(ref)
        try:
            self.stats.actors.append(ray.get(ref))
            self._idle.extend([actor] * self.in_flight)
            self._ever_ready = True
        except RayActorError as e:
            if e.actor_init_failed:  # the evaluator's constructor raised: it would everywhere
                raise ClusterError(f"an actor failed to build its evaluator: {_first_line(e)}") from None
            self.stats.actor_deaths += 1
            _kill(actor)
            if not self._ever_ready and not (self._starting or self._idle or self._running):
                raise ClusterError(f"the actors failed to start: {_first_line(e)}") from None
            if self._ever_ready and self._has_work() and self._restarts_left > 0:
                self._restarts_left -= 1
                self._start_actor()
        except RayTaskError as e:  # ready() itself raised (Ray 2.60 reports a failed constructor as above)
            raise ClusterError(f"an actor failed to build its evaluator: {_first_line(e)}") from None

    def _retry(self, tile: Tile, error: BaseException) -> None:
        n = self._attempts[tile.index] = self._attempts.get(tile.index, 0) + 1
        if n >= self.max_attempts:
            raise ClusterError(
                f"{tile.name} ({tile.extent}) failed {n} times "
                f"(cluster.max_attempts); last error: {_first_line(error)}"
            )
        self.stats.retries += 1
        self._queue.appendleft(tile)

    def _expire_starting(self) -> None:
        """Give up on actors that could not be placed within the timeout."""
        nowt = time.monotonic()
        for ref, (actor, t0) in list(self._starting.items()):
            if nowt - t0 > self.placement_timeout_s:
                self._starting.pop(ref)
                _kill(actor)
        if not (self._starting or self._idle or self._running or self._ever_ready):
            raise ClusterError(
                f"no actor could be placed within {self.placement_timeout_s:.0f} s: {self.describe_request()}"
            )

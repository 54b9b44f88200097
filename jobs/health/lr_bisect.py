"""`landscape lr-scan --bisect`: the breakthrough by bisection in log space, several rates per round.

Round 1 trains lo, hi and `bisect.probes` rates log-evenly between them; each
later round trains `probes` rates log-evenly inside the bracket [largest rate
not collapsing, smallest collapsing] of everything probed so far, which shrinks
(probes + 1)-fold per round, until it spans at most `bisect.tolerance` decades.

All rounds go through ONE `run_work` queue: the next round's rates are queued
the moment the last result of a round is in, so the actors (and their start-up
cost) are shared by every round; within a round the rates train at once. Rows
are stored in the order probed; a rate stored by an interrupted run is not
trained again (the rounds are deterministic, so a resumed bisection replays them).

Bisection assumes collapse is monotone in the rate. Near the transition it need
not be (a rate can collapse while a slightly larger one does not): the answer is
then *a* transition within the tolerance, not necessarily the lowest one a fine
scan would find.
"""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np

from cluster.driver import run_work
from cluster.session import ray_session
from landscape.errors import ResultError
from landscape.lr_search import LRRun, best_gain, interior, transition

from ..common.report import say
from ..specs import LRScanSpec
from .lr_scan import (
    ROW_ARRAYS,
    RateItem,
    _arrays,
    _meta,
    _request,
    _Rows,
    _work_left,
    _writer,
    build_lr_problem,
    default_output,
    gain_meta,
    on_result,
    range_item,
    report_end,
)

LR_DIM = [*ROW_ARRAYS, "lr", "diverged", "collapsed", "lr_done"]  # the arrays along the lr dimension


def capacity(spec: LRScanSpec) -> int:
    """The most rows a bisection can need: the arrays are made this long and trimmed at the end
    (resizing while running would leave Zarr's consolidated metadata, which xarray reads, behind)."""
    return 2 + spec.bisect.probes * spec.bisect.max_rounds


class Rounds:
    """The work items of every round, as one iterator the scheduler polls: it yields a round's rates,
    then nothing until `on_result` has seen the round's last result and queued the next round."""

    def __init__(self, store, spec: LRScanSpec, rows: _Rows):
        self.store, self.spec, self.rows = store, spec, rows
        g = store.group
        lrs, done = g["lr"][...], g["lr_done"][...].astype(bool)
        self.row = {float(lr): i for i, lr in enumerate(lrs) if np.isfinite(lr)}
        self.used = len(self.row)  # rows are assigned in order: the used ones are a prefix
        self.result = {float(lr): bool(c) for lr, c, d in zip(lrs, g["collapsed"][...], done) if d}
        self.pending: deque[RateItem] = deque()
        self.waiting: set[float] = set()
        self.rounds: list[dict] = []
        self.finished = False
        self.width: float | None = None
        self.t = transition([], [])
        r = spec.learning_rates
        self.start([float(r.lo), *interior(r.lo, r.hi, spec.bisect.probes), float(r.hi)])

    def __iter__(self):
        return self

    def __next__(self) -> RateItem:
        if self.pending:
            return self.pending.popleft()
        raise StopIteration  # for now: polled again after on_result queued the next round

    def start(self, lrs: list[float]) -> None:
        self.lrs, self.t0 = lrs, time.monotonic()
        g = self.store.group
        for lr in lrs:
            if lr not in self.row:
                self.row[lr] = self.used
                g["lr"][self.used] = lr
                self.used += 1
        items = [RateItem(self.row[lr], lr) for lr in lrs if lr not in self.result]
        if not items:  # stored by an earlier run: decide at once
            self.end()
            return
        self.waiting = {it.lr for it in items}
        self.pending.extend(items)

    def on_result(self, item: RateItem, result: dict, _stats) -> None:
        self.result[item.lr] = self.rows.write(item, result)
        self.waiting.discard(item.lr)
        if not self.waiting:
            self.end()

    def end(self) -> None:
        """A round is complete: say what it found, then queue the next one or finish."""
        b = self.spec.bisect
        self.t = t = transition(list(self.result), list(self.result.values()))
        self.width = math.log10(t.first_collapse / t.breakthrough) if t.breakthrough and t.first_collapse else None
        wall = time.monotonic() - self.t0
        k = len(self.rounds) + 1
        hit = [lr for lr in self.lrs if self.result[lr]]
        self.rounds.append({"round": k, "lrs": self.lrs, "collapsed": [self.result[lr] for lr in self.lrs],
                            "breakthrough": t.breakthrough, "first_collapse": t.first_collapse, "wall_seconds": wall})
        bracket = (f"bracket [{t.breakthrough:.4g}, {t.first_collapse:.4g}] = {self.width:.3f} decades"
                   if self.width is not None else t.describe())
        say(f"round {k}: {len(self.lrs)} rate(s) {', '.join(f'{lr:.4g}' for lr in self.lrs)} -> "
            f"collapse at {', '.join(f'{lr:.4g}' for lr in hit) or 'none'}; {bracket} ({wall:.1f} s)")
        if self.width is None or self.width <= b.tolerance or k >= b.max_rounds:
            self.finished = True
            return
        self.start(interior(t.breakthrough, t.first_collapse, b.probes))

    def trim(self) -> None:
        """Drop the rows never used (called last: the store's array handles keep the old shape)."""
        g = self.store.group
        for name in LR_DIM:
            g[name].resize((self.used, *g[name].shape[1:]))


def run_bisect(spec: LRScanSpec, *, out: str | None = None, address: str | None = None, actors: int | None = None,
               gpus_per_actor: float | None = None, overwrite: bool = False, plot: bool = True, fmt: str = "png") -> str:
    """Find the breakthrough; returns the result's path or URL."""
    url = str(out or default_output(spec, "bisect"))
    problem, notes = build_lr_problem(spec)  # every bad input fails here, before anything is written
    b, r = spec.bisect, spec.learning_rates
    span = math.log10(r.hi / r.lo)
    needed = max(1, math.ceil(math.log(span / b.tolerance) / math.log(b.probes + 1)))  # (probes+1)-fold per round
    say(f"bisection {spec.name!r}: [{r.lo:.3g}, {r.hi:.3g}] ({span:.2f} decades) to {b.tolerance:g} decades, "
        f"{b.probes} rate(s) per round: {min(needed, b.max_rounds)} round(s) -> {url}")
    for note in notes:
        say(f"note: {note}")
    with _writer(url, spec, "bisect", overwrite, gpus_per_actor) as w:
        if w.store is not None and w.store.meta.get("status") == "complete" and not _work_left(w.store, spec):
            say(f"{url} is already complete; its rounds:")  # the rounds replay from the stored rates
            store, rows = w.store, _Rows(w.store, spec, spec.name)
            rounds, request = Rounds(store, spec, rows), None
            wall = store.meta.get("bisect_wall_seconds", 0.0)
        else:
            with ray_session(address):
                request = _request(spec, actors, gpus_per_actor)  # fails before writing anything
                if w.store is None:
                    w.create(_arrays(spec, problem, np.zeros(capacity(spec))), _meta(spec, problem, "bisect", notes))
                else:
                    w.resume()
                store = w.store
                rows = _Rows(store, spec, spec.name)
                rounds = Rounds(store, spec, rows)
                t0, train_s = time.monotonic(), 0.0
                rt = range_item(spec, problem, store)
                if rt is not None:
                    rounds.pending.appendleft(rt)  # one more item of the same queue, first: the one long run
                if rounds.pending:
                    c = spec.cluster
                    stats = run_work(problem, LRRun, rounds, len(rounds.pending), lambda it: it.args,
                                     on_result(rows, rt, t0, rounds.on_result), request,
                                     max_attempts=c.max_attempts, placement_timeout_s=c.placement_timeout_s)
                    rows.deaths, rows.retries = stats.actor_deaths, stats.retries
                    train_s = stats.evaluator_seconds - rows.range_seconds
                if not rounds.finished:  # the queue ran dry with a round unfinished: never report a half answer
                    raise ResultError(f"{url}: the bisection stopped in round {len(rounds.rounds) + 1}; run the same command again")
                wall = time.monotonic() - t0
                store.update_meta(rounds=rounds.rounds, bisect_wall_seconds=wall, bisect_train_seconds=train_s,
                                  actors=request.actors, actor_deaths=rows.deaths, retries=rows.retries)
        g, n = store.group, rounds.used
        t, width = rounds.t, rounds.width
        converged = width is not None and width <= b.tolerance
        best = best_gain(g["lr"][:n], g["accuracy"][:n], g["diverged"][:n], g["collapsed"][:n],
                         samples=len(problem.probe_data()[0]))
        runs = int(g["lr_done"][:n].sum())
        rounds.trim()
        w.finish(breakthrough=t.breakthrough, first_collapse=t.first_collapse, converged=converged, **gain_meta(best))
    if width is None:
        say(f"bisection: {t.describe()} ({runs} runs, {wall:.1f} s)")
    else:
        state = f"within {b.tolerance:g} decades" if converged else f"not within {b.tolerance:g} decades after bisect.max_rounds = {b.max_rounds}"
        say(f"bisection: breakthrough {t.breakthrough:.4g} ({state}: collapse from {t.first_collapse:.4g}), "
            f"{runs} runs in {len(rounds.rounds)} round(s), {wall:.1f} s wall on {store.meta.get('actors')} actor(s)")
    say(f"bisection: {best.describe()}")
    report_end(store, url, spec, "bisect", plot, fmt, n)
    return url

"""`landscape lr-scan`: short trainings at many learning rates on the Ray actors, into a Zarr result.

Each learning rate is one work item of the one queue (`cluster.driver.run_work`):
an actor builds `LRRun(problem)` once and trains one rate per item, from the
same initial weights and batch order. A finished rate is written (whole chunks)
and then marked in `lr_done`, so a killed driver resumes with the rates left and
a killed actor's rate is redone elsewhere; the numbers do not depend on which
actor trained which rate. `--bisect` (jobs/health/lr_bisect.py) narrows the breakthrough
down round by round through the same queue. The range test is one more work item
of either queue, on the same actors.

Result (dims lr, epoch): `median_log10_grad` (the tracked weight matrix, on the
probe samples; epoch 0 = initialization), its 10th/90th percentiles, `loss`,
`accuracy`, `train_loss`, `grad_ratio` (median gradient / its value one epoch
before), `accuracy_gain`; per rate `diverged` (epoch of a non-finite loss, 0 =
none), `collapsed`, `lr_done`; the range test's `range_lr`, `range_loss`,
`range_smoothed_loss` (dim range_step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cluster.driver import run_work
from cluster.session import plan_actors, ray_session
from cluster.store import ArrayDef, ResultWriter
from landscape.data import subsample
from landscape.errors import ResultError, SpecError
from landscape.lr_search import (
    RUN_ARRAYS,
    LRProblem,
    LRRun,
    best_gain,
    collapsed,
    derived,
    transition,
)

from ..common.report import plot_and_say, say, versions
from ..specs import LRScanSpec
from ..specs.subset_rule import former_identities
from ..training.train import check_train
from .gradients import checked_model

ROW_ARRAYS = RUN_ARRAYS + ("grad_ratio", "accuracy_gain")
DESCRIPTIONS = {
    "median_log10_grad": "median of log10|grad| of the tracked parameter over the probe samples (epoch 0: initialization)",
    "p10_log10_grad": "10th percentile of log10|grad| of the tracked parameter",
    "p90_log10_grad": "90th percentile of log10|grad| of the tracked parameter",
    "loss": "mean loss over the probe samples after the epoch",
    "accuracy": "accuracy over the probe samples after the epoch",
    "train_loss": "mean training loss over the epoch's batches",
    "grad_ratio": "median |grad| of the tracked parameter divided by its value one epoch before",
    "accuracy_gain": "accuracy minus its value one epoch before",
}


@dataclass(frozen=True)
class RateItem:
    """One learning rate: a work item of the queue (row `index` of the result)."""

    index: int
    lr: float

    @property
    def name(self) -> str:  # the Ray task's name on the dashboard
        return f"lr-{self.index}"

    @property
    def extent(self) -> str:
        return f"learning rate {self.lr:.4g}"

    @property
    def args(self) -> tuple:  # LRRun.evaluate's
        return (self.lr,)


@dataclass(frozen=True)
class RangeItem:
    """The range test: one more item of the rates' queue, on the same actors."""

    args: tuple  # LRRun.evaluate's: (lo, (hi, steps, beta, diverge_factor))
    index: str = "range-test"
    name: str = "range-test"
    extent: str = "the range test"


def build_lr_problem(spec: LRScanSpec) -> tuple[LRProblem, list[str]]:
    """The problem every actor gets, checked: data fits the model, the tracked parameter exists."""
    inputs, targets, factory, notes = check_train(spec)
    model, wm = checked_model(factory, "landscape lr-scan")
    names = [n for n, _ in model.named_parameters()]
    track = spec.track or wm[0]
    if track not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise SpecError(f"track: {track!r} is not a parameter of the model; its parameters are {shown}")
    probe = None
    if spec.probe_samples is not None and spec.probe_samples < len(inputs):
        probe = subsample(inputs, targets, spec.probe_samples, spec.seed)
    problem = LRProblem(factory, inputs, targets, spec.loss, spec.epochs, spec.batch_size, spec.seed, spec.optimizer,
                        spec.momentum, spec.weight_decay, track, probe)
    if spec.range_test.enabled:
        _range_settings(spec, problem)  # lo < hi also where they come from learning_rates
    return problem, notes


def default_output(spec: LRScanSpec, method: str) -> str:
    return spec.output or f"results/{spec.name}-lr-{method}.zarr"


def _range_settings(spec: LRScanSpec, problem: LRProblem) -> tuple[float, float, int]:
    r = spec.range_test
    lo, hi = r.lo or spec.learning_rates.lo, r.hi or spec.learning_rates.hi
    if lo >= hi:
        raise SpecError(f"range_test: lo {lo:g} >= hi {hi:g} (with defaults from learning_rates); lo must be below hi")
    return lo, hi, r.steps or max(100, spec.epochs * problem.steps_per_epoch())  # at least 100: a coarser sweep says little


def _arrays(spec: LRScanSpec, problem: LRProblem, lrs: np.ndarray) -> list[ArrayDef]:
    n, e = len(lrs), spec.epochs + 1
    arrays = [ArrayDef(k, ("lr", "epoch"), (n, e), "float64", (1, e), np.nan, attrs={"description": DESCRIPTIONS[k]})
              for k in ROW_ARRAYS]
    arrays += [
        ArrayDef("lr", ("lr",), (n,), "float64", (1,), np.nan, attrs={"description": "learning rate"}),
        ArrayDef("epoch", ("epoch",), data=np.arange(e), dtype="int64", attrs={"description": "epochs trained (0: initialization)"}),
        ArrayDef("diverged", ("lr",), (n,), "int64", (1,), 0, attrs={"description": "epoch in which the loss became non-finite (0: never)"}),
        ArrayDef("collapsed", ("lr",), (n,), "uint8", (1,), 0,
                 attrs={"description": f"diverged, a grad_ratio below {spec.collapse_ratio:g}, or a gradient that vanished entirely"}),
        ArrayDef("lr_done", ("lr",), (n,), "uint8", (1,), 0, attrs={"description": "1 once the rate's run is stored"}),
    ]
    if spec.range_test.enabled:
        steps = _range_settings(spec, problem)[2]
        arrays += [ArrayDef("range_step", ("range_step",), data=np.arange(steps), dtype="int64")]
        arrays += [ArrayDef(k, ("range_step",), (steps,), "float64", (steps,), np.nan, attrs={"description": d}) for k, d in (
            ("range_lr", "learning rate of the range test's step"),
            ("range_loss", "mini-batch loss of the range test's step"),
            ("range_smoothed_loss", "bias-corrected moving average of range_loss"),
        )]
    return arrays


def _meta(spec: LRScanSpec, problem: LRProblem, method: str, notes: list[str]) -> dict:
    return {
        "name": spec.name,
        "spec": spec.model_dump(mode="json"),
        "method": method,
        "track": problem.track,
        "collapse_ratio": spec.collapse_ratio,
        "epochs": spec.epochs,
        "steps_per_epoch": problem.steps_per_epoch(),
        "data": {"samples": len(problem.inputs), "probe_samples": len(problem.probe_data()[0])},
        "notes": notes,
        "versions": versions(),
        "precision": "fp32",
    }


class _Rows:
    """Writes each finished rate's row (values first, then lr_done) and says how it went."""

    def __init__(self, store, spec: LRScanSpec, label: str):
        self.store, self.spec, self.label = store, spec, label
        self.count = self.deaths = self.retries = 0
        self.range_seconds = 0.0  # the range test's training, when it ran in the same queue

    def write(self, item: RateItem, result: dict) -> bool:
        g, i = self.store.group, item.index
        if self.store.lease is not None:
            self.store.lease.check()
        ratio, gain = derived(result["median_log10_grad"], result["accuracy"])
        values = {**{k: result[k] for k in RUN_ARRAYS}, "grad_ratio": ratio, "accuracy_gain": gain}
        for k, v in values.items():
            g[k][i] = v
        is_collapsed = collapsed(result["median_log10_grad"], result["diverged"], self.spec.collapse_ratio)
        g["lr"][i] = item.lr
        g["diverged"][i] = result["diverged"]
        g["collapsed"][i] = int(is_collapsed)
        g["lr_done"][i] = 1
        self.count += 1
        acc = result["accuracy"]
        what = (f"diverged in epoch {result['diverged']}" if result["diverged"] else
                f"min grad ratio {np.nanmin(ratio[1:]) if np.isfinite(ratio[1:]).any() else float('nan'):.3g}, "
                f"accuracy {acc[0]:.3f} -> {acc[-1]:.3f}")
        say(f"[{self.label}] lr {item.lr:.4g}: {what}{' (collapsed)' if is_collapsed else ''}")
        return is_collapsed


def _request(spec: LRScanSpec, actors: int | None, gpus_per_actor: float | None):
    c = spec.cluster
    gpus = gpus_per_actor if gpus_per_actor is not None else c.gpus_per_actor
    return plan_actors(actors or c.actors, gpus, c.cpus_per_actor)


def _train_rates(problem, items: list[RateItem], rows: _Rows, request, spec) -> tuple[float, float]:
    """Train `items` (and the range test, when it is due) on the actors, one queue; (wall seconds, training seconds
    of the rates summed over actors)."""
    rt = range_item(spec, problem, rows.store)
    if not items and rt is None:
        return 0.0, 0.0
    t0 = time.monotonic()
    queue = ([rt] if rt is not None else []) + items  # the one long run first: it overlaps the rates
    stats = run_work(problem, LRRun, queue, len(queue), lambda it: it.args, on_result(rows, rt, t0), request,
                     max_attempts=spec.cluster.max_attempts, placement_timeout_s=spec.cluster.placement_timeout_s)
    rows.deaths += stats.actor_deaths
    rows.retries += stats.retries
    return time.monotonic() - t0, stats.evaluator_seconds - rows.range_seconds


def range_item(spec: LRScanSpec, problem: LRProblem, store) -> RangeItem | None:
    """The range test's work item; None when it is off or stored already."""
    if not spec.range_test.enabled or store.meta.get("range_test", {}).get("done"):
        return None
    lo, hi, steps = _range_settings(spec, problem)
    r = spec.range_test
    return RangeItem((lo, (hi, steps, r.smoothing, r.diverge_factor)))


def on_result(rows: _Rows, rt: RangeItem | None, t0: float, rates=None):
    """What the queue does with each result: a rate's row (`rates`: another handler of rates), or the range test's."""
    rates = rates or (lambda it, result, _stats: rows.write(it, result))

    def handle(item, result, stats) -> None:
        if isinstance(item, RangeItem):
            rows.range_seconds = result["train_seconds"]
            _store_range_test(rows.store, item, result, time.monotonic() - t0)
        else:
            rates(item, result, stats)

    return handle


def _store_range_test(store, item: RangeItem, out: dict, wall: float) -> None:
    """The range test's arrays and its summary in the meta (done: a resumed run skips it)."""
    lo, (hi, steps, _, _) = item.args
    g = store.group
    g["range_lr"][...] = out["lr"]
    g["range_loss"][...] = out["loss"]
    g["range_smoothed_loss"][...] = out["smoothed_loss"]
    ran = int(np.isfinite(out["loss"]).sum() + (1 if out["diverged"] else 0))
    store.update_meta(range_test={
        "done": True, "lo": lo, "hi": hi, "steps": steps, "steps_run": min(ran, steps), "stopped_on_divergence": bool(out["diverged"]),
        "suggestion": out["suggestion"], "wall_seconds": wall, "train_seconds": out["train_seconds"],
    })


def _say_range(store) -> None:
    rt = store.meta.get("range_test")
    if not rt:
        return
    sug = f"{rt['suggestion']:.3g}" if rt.get("suggestion") else "none (the loss never fell)"
    stop = ", stopped on divergence" if rt["stopped_on_divergence"] else ""
    say(f"range test: steepest descent at lr {sug}; 1 run of {rt['steps_run']} steps{stop}, {rt['wall_seconds']:.1f} s wall "
        f"({rt['train_seconds']:.1f} s training)")


def _work_left(store, spec: LRScanSpec) -> bool:
    """Rates not stored yet, or a range test not run yet: something needs the actors."""
    if not store.group["lr_done"][...].all():
        return True
    return spec.range_test.enabled and not store.meta.get("range_test", {}).get("done")


def _writer(url: str, spec: LRScanSpec, method: str, overwrite: bool, gpus_per_actor: float | None = None) -> ResultWriter:
    from ..common.provenance import actor_device, provenance

    gpus = gpus_per_actor if gpus_per_actor is not None else spec.cluster.gpus_per_actor
    prov = provenance(data=[("data", spec.data)], device=actor_device(gpus), precision="fp32", spec=spec)
    return ResultWriter(url, identity=spec.identity(method), overwrite=overwrite, provenance=prov,
                        former=former_identities(lambda: spec.identity(method)),
                        command=f"landscape lr-scan {spec.name}{' --bisect' if method == 'bisect' else ''}", what="lr_scan")


def gain_meta(best) -> dict:
    """The result's record of the accuracy-gain summary (best_gain_lr None: nothing above the noise)."""
    return {"best_gain_lr": best.lr, "best_gain": best.gain, "best_gain_noise": best.noise}


def say_rates_in_order(store, n: int | None = None) -> None:
    """Every trained rate, by increasing learning rate (they finish in any order on the actors)."""
    g = store.group
    lrs, acc, done = g["lr"][:n], g["accuracy"][:n], g["lr_done"][:n].astype(bool)
    div, col = g["diverged"][:n], g["collapsed"][:n]
    say("rates in order:")
    for i in np.argsort(lrs):
        if not done[i]:
            continue
        what = f"diverged in epoch {int(div[i])}" if div[i] else f"accuracy {acc[i, 0]:.3f} -> {acc[i, -1]:.3f} ({acc[i, -1] - acc[i, 0]:+.3f})"
        say(f"  lr {lrs[i]:.4g}: {what}{' (collapsed)' if col[i] else ''}")


def report_end(store, url: str, spec: LRScanSpec, method: str, plot: bool, fmt: str, n: int | None = None) -> None:
    """The end of a scan or bisection: the rates in order, the range test's line, the result, its plots."""
    say_rates_in_order(store, n)
    _say_range(store)
    print(f"result: {url}")
    if plot:
        plot_and_say(url, f"{spec.name}-lr-{method}", fmt)


def run_lr_scan(spec: LRScanSpec, *, out: str | None = None, address: str | None = None, actors: int | None = None,
                gpus_per_actor: float | None = None, overwrite: bool = False, plot: bool = True, fmt: str = "png") -> str:
    """Train every rate of the scan (resuming the ones not stored), then the range test; returns the result's URL."""
    url = str(out or default_output(spec, "scan"))
    problem, notes = build_lr_problem(spec)  # every bad input fails here, before anything is written
    r = spec.learning_rates
    lrs = np.geomspace(r.lo, r.hi, r.num)
    for note in notes:
        say(f"note: {note}")
    with _writer(url, spec, "scan", overwrite, gpus_per_actor) as w:
        if w.store is not None and not _work_left(w.store, spec):
            say(f"{url} is already complete; nothing to train")
            store = w.store
        else:
            with ray_session(address):
                request = _request(spec, actors, gpus_per_actor)  # fails before writing anything
                if w.store is None:
                    w.create(_arrays(spec, problem, lrs), _meta(spec, problem, "scan", notes))
                    w.store.group["lr"][...] = lrs
                else:
                    w.resume()
                store = w.store
                done = store.group["lr_done"][...].astype(bool)
                items = [RateItem(i, float(lr)) for i, lr in enumerate(lrs) if not done[i]]
                if done.any() and items:
                    say(f"resuming {url}: {len(items)} of {len(lrs)} rates left to train")
                say(f"lr scan {spec.name!r}: {len(items)} rates x {spec.epochs} epoch(s) on {request.actors} actor(s) -> {url}")
                rows = _Rows(store, spec, spec.name)
                wall, train_s = _train_rates(problem, items, rows, request, spec)
                if items:
                    store.update_meta(scan_wall_seconds=wall, scan_train_seconds=train_s, actors=request.actors,
                                      actor_deaths=rows.deaths, retries=rows.retries)
        missing = int((~store.group["lr_done"][...].astype(bool)).sum())
        if missing:  # never call a result complete that is not
            raise ResultError(f"{url}: {missing} rate(s) are not stored after the run; run the same command again")
        g = store.group
        t = transition(g["lr"][...], g["collapsed"][...])
        best = best_gain(g["lr"][...], g["accuracy"][...], g["diverged"][...], g["collapsed"][...],
                         samples=len(problem.probe_data()[0]))
        w.finish(breakthrough=t.breakthrough, first_collapse=t.first_collapse, **gain_meta(best))
        meta = store.meta
    say(f"lr scan: {t.describe()} by the collapse_ratio {spec.collapse_ratio:g}; {best.describe()}")
    if meta.get("scan_wall_seconds") is not None:
        say(f"lr scan: {len(lrs)} runs in {meta['scan_wall_seconds']:.1f} s wall on {meta['actors']} actor(s) "
            f"({meta['scan_train_seconds']:.1f} s training)")
    report_end(store, url, spec, "scan", plot, fmt)
    return url

"""`landscape gradients`: train (or only look at initialization) and record gradient health per parameter.

The result is a Zarr group with arrays (step, parameter): the median and 10th/90th
percentiles of log10|grad| over non-zero entries, |grad| and the update ratio
|dw|/|w|; coordinates `step` (optimizer steps taken when the gradient was
measured) and `parameter` (the names, as `named_parameters` gives them).
Recording rides on the one training loop's hooks (landscape/gradients.py). The
training is one work item of the one queue (`cluster.driver.run_work`) on a Ray
actor (`landscape.gradient_run.GradientsRun`), local by default as for scans; a
killed actor's item is trained again elsewhere, and an interrupted run starts again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cluster.driver import run_work
from cluster.session import plan_actors, ray_session
from cluster.store import ArrayDef, ResultWriter
from landscape.errors import ResultError, SpecError
from landscape.gradient_run import GradientsProblem, GradientsRun
from landscape.gradients import STAT_INFO, STATS, weight_matrices

from ..common.report import plot_and_say, say, versions
from ..specs import GradientsSpec
from ..specs.subset_rule import former_identities
from ..training.train import check_train

CHUNK_ROWS = 512


def default_output(spec: GradientsSpec) -> str:
    return spec.output or f"results/{spec.name}-gradients.zarr"


def first_middle_last(names: list[str]) -> list[str]:
    """The first, middle and last of the weight matrices (fewer when there are fewer)."""
    picks = [names[0], names[len(names) // 2], names[-1]]
    return list(dict.fromkeys(picks))


def checked_model(factory, what: str):
    """The model, refused when it has no weight matrix whose gradient could be followed."""
    model = factory()
    names = weight_matrices(model)
    if not names:
        params = [n for n, _ in model.named_parameters()]
        held = f"its parameters are {', '.join(params[:4])}{', ...' if len(params) > 4 else ''}" if params else "it has no parameters"
        raise SpecError(
            f"model: {what} needs a weight matrix (a parameter with 2 or more dimensions) to track, and this model has none "
            f"({held}); use a model with Linear or convolution layers"
        )
    return model, names


def planned_steps(spec: GradientsSpec, steps_per_epoch: int) -> np.ndarray:
    """The optimizer-step count at which each row's gradient is measured."""
    if spec.record == "epoch":
        return np.arange(spec.epochs + 1, dtype=np.int64) * steps_per_epoch
    total = max(spec.epochs * steps_per_epoch, 1)  # epochs 0: the first gradient only
    return np.arange(0, total, spec.every, dtype=np.int64)


def _arrays(spec, names, model, steps, steps_per_epoch: int) -> list[ArrayDef]:
    rows, p = len(steps), len(names)
    chunk = (min(rows, CHUNK_ROWS), p)
    params = dict(model.named_parameters())
    wm = weight_matrices(model)
    arrays = [ArrayDef(s, ("step", "parameter"), (rows, p), "float64", chunk, np.nan, attrs={"description": STAT_INFO[s]})
              for s in STATS]
    arrays += [
        ArrayDef("step", ("step",), data=steps, dtype="int64", attrs={"description": "optimizer steps taken when the gradient was measured"}),
        ArrayDef("parameter", ("parameter",), data=np.asarray(names, dtype="T"), dtype="T"),
        ArrayDef("epoch", ("step",), data=steps // steps_per_epoch, dtype="int64",
                 attrs={"description": "epochs completed when the gradient was measured (0: during the first epoch, or at initialization)"}),
        ArrayDef("loss", ("step",), (rows,), "float64", (min(rows, CHUNK_ROWS),), np.nan,
                 attrs={"description": "mean loss of the samples whose gradient was measured"}),
        ArrayDef("lr", ("step",), (rows,), "float64", (min(rows, CHUNK_ROWS),), np.nan),
        ArrayDef("row_done", ("step",), (rows,), "uint8", (min(rows, CHUNK_ROWS),), 0,
                 attrs={"description": "1 once the row is stored"}),
        ArrayDef("numel", ("parameter",), data=np.array([params[n].numel() for n in names]), dtype="int64"),
        ArrayDef("weight_index", ("parameter",), data=np.array([wm.index(n) if n in wm else -1 for n in names]), dtype="int64",
                 attrs={"description": "k for the k-th weight matrix (2+ dimensions) from the input side, -1 otherwise"}),
    ]
    return arrays


@dataclass(frozen=True)
class TrainingItem:
    """The one training: a work item of the queue (its rows depend on every step before them: no split)."""

    index: int = 0
    name: str = "training"
    extent: str = "the training"


def _write_rows(store, steps: np.ndarray, out: dict) -> None:
    """The recorded rows (consecutive from step 0) into the result, values first, then row_done."""
    if store.lease is not None:
        store.lease.check()  # still ours: another writer never interleaves rows
    r = len(out["step"])
    if r == 0:
        return
    if not np.array_equal(out["step"], steps[:r]):
        raise ResultError(f"the training recorded steps {out['step'][:5].tolist()}... where {steps[:5].tolist()}... were planned")
    g = store.group
    for k, name in enumerate(STATS):
        g[name][:r] = out["stats"][:, :, k]
    g["loss"][:r] = out["loss"]
    g["lr"][:r] = out["lr"]
    g["row_done"][:r] = 1


def gradients_problem(spec: GradientsSpec, inputs, targets, factory) -> GradientsProblem:
    """What the actor trains: the spec's run, and the probe samples of record: epoch."""
    probe = None
    if spec.record == "epoch":
        from landscape.data import subsample

        probe = subsample(inputs, targets, spec.probe_samples, spec.seed)
    return GradientsProblem(factory, inputs, targets, probe, spec.record, spec.every, spec.epochs, spec.loss, spec.optimizer,
                            spec.lr, spec.momentum, spec.weight_decay, spec.batch_size, spec.seed, f"gradients {spec.name}")


def _train_on_actor(spec: GradientsSpec, problem: GradientsProblem, request) -> tuple[dict, object]:
    """The training as the one item of the queue; (its rows, the scheduler's stats)."""
    got: dict = {}

    def on_result(_item, result: dict, _stats) -> None:
        got.update(result)

    c = spec.cluster
    stats = run_work(problem, GradientsRun, [TrainingItem()], 1, lambda _item: (), on_result, request,
                     max_attempts=c.max_attempts, placement_timeout_s=c.placement_timeout_s, label=f"{spec.name}-gradients")
    return got, stats


def _writer(url: str, spec: GradientsSpec, overwrite: bool, gpus_per_actor: float | None = None) -> ResultWriter:
    from ..common.provenance import actor_device, provenance

    gpus = gpus_per_actor if gpus_per_actor is not None else spec.cluster.gpus_per_actor
    prov = provenance(data=[("data", spec.data)], device=actor_device(gpus), precision="fp32", spec=spec)
    return ResultWriter(url, identity=spec.identity(), overwrite=overwrite, command=f"landscape gradients {spec.name}",
                        what="gradients", resumable=False, provenance=prov,  # no resuming mid-training
                        former=former_identities(spec.identity))


def run_gradients(spec: GradientsSpec, *, out: str | None = None, overwrite: bool = False, plot: bool = True,
                  fmt: str = "png", address: str | None = None, actors: int | None = None,
                  gpus_per_actor: float | None = None) -> str:
    """Record the run's gradient statistics into a result (the training on a Ray actor); returns its path or URL."""
    url = str(out or default_output(spec))
    inputs, targets, factory, notes = check_train(spec)  # every bad input fails here, before anything is written
    for note in notes:
        say(f"note: {note}")
    model, wm = checked_model(factory, "landscape gradients")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    steps_per_epoch = -(-len(inputs) // spec.batch_size)
    steps = planned_steps(spec, steps_per_epoch)
    problem = gradients_problem(spec, inputs, targets, factory)
    with _writer(url, spec, overwrite, gpus_per_actor) as w:
        if w.store is not None:  # the same spec, complete
            say(f"{url} is already complete; nothing to record")
            w.finish()
        else:
            with ray_session(address):
                c = spec.cluster
                request = plan_actors(actors or c.actors, gpus_per_actor if gpus_per_actor is not None else c.gpus_per_actor,
                                      c.cpus_per_actor)  # fails before writing anything
                say(f"gradients {spec.name!r}: {len(names)} parameters ({len(wm)} weight matrices), {len(steps)} rows "
                    f"(record: {spec.record}), {spec.epochs} epoch(s) on an actor -> {url}")
                w.create(_arrays(spec, names, model, steps, steps_per_epoch), _meta(spec, names, wm, steps_per_epoch, len(inputs), notes))
                t0 = time.monotonic()
                result, stats = _train_on_actor(spec, problem, request)
            if result["epochs"]:  # each epoch was said live by the actor (Ray forwards its lines)
                epoch, loss, accuracy = result["epochs"][-1]
                say(f"[gradients {spec.name}] trained {epoch}/{spec.epochs} epoch(s): loss {loss:.4f} accuracy {accuracy:.3f} "
                    f"({time.monotonic() - t0:.1f} s on the actor)")
            _write_rows(w.store, steps, result)
            done = int(w.store.group["row_done"][...].sum())
            diverged_at = result["diverged_at"]
            if diverged_at is not None:
                say(f"the loss diverged (non-finite) at step {diverged_at}: training stopped; {done} of {len(steps)} rows recorded")
            w.finish(wall_seconds=time.monotonic() - t0, train_seconds=stats.evaluator_seconds, diverged_at_step=diverged_at,
                     rows_recorded=done, actor_deaths=stats.actor_deaths, retries=stats.retries)
            _summary(w.store.group, wm)
    print(f"result: {url}")
    if plot:
        plot_and_say(url, f"{spec.name}-gradients", fmt)
    return url


def _meta(spec: GradientsSpec, names, wm, steps_per_epoch: int, samples: int, notes) -> dict:
    return {
        "name": spec.name,
        "spec": spec.model_dump(mode="json"),
        "record": spec.record,
        "parameters": names,
        "weight_matrices": wm,
        "tracked": first_middle_last(wm),
        "steps_per_epoch": steps_per_epoch,
        "stat_info": STAT_INFO,
        "data": {"samples": samples},
        "notes": notes,
        "versions": versions(),
        "precision": "fp32",
    }


def _summary(g, wm: list[str]) -> None:
    """One line: the median log10|grad| of the first, middle and last weight matrices at the first row."""
    names = list(np.asarray(g["parameter"][...]))
    med = g["median_log10_grad"][0, :]
    parts = [f"{n} {med[names.index(n)]:.2f}" for n in first_middle_last(wm)]
    first, last = med[names.index(wm[0])], med[names.index(wm[-1])]
    say(f"median log10|grad| at step 0: {', '.join(parts)} (last minus first weight matrix: {last - first:+.2f} decades; the plot's dotted line is a least-squares fit over all of them)")

"""`landscape gradients`: train (or only look at initialization) and record gradient health per parameter.

The result is a Zarr group with arrays (step, parameter): the median and 10th/90th
percentiles of log10|grad| over non-zero entries, |grad| and the update ratio
|dw|/|w|; coordinates `step` (optimizer steps taken when the gradient was
measured) and `parameter` (the names, as `named_parameters` gives them).
Recording rides on the one training loop's hooks (landscape/gradients.py).
A run is one training, in this process: an interrupted run starts again.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from cluster.store import ArrayDef, ResultWriter
from landscape.errors import SpecError
from landscape.gradients import STAT_INFO, STATS, GradientRecorder, Row, probe_gradients, update_ratio, weight_matrices
from landscape.training import StopTraining, train

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


class _RowWriter:
    """Rows go to the result at each epoch's end (and at the end), marked done after their values; then they are
    dropped from memory (a long run records steps x parameters x 5 numbers)."""

    def __init__(self, store, steps: np.ndarray):
        self.store, self.index = store, {int(s): i for i, s in enumerate(steps)}

    def write(self, rows: list) -> None:
        if not rows:
            return
        if self.store.lease is not None:
            self.store.lease.check()  # still ours: another writer never interleaves rows
        g = self.store.group
        i0, i1 = self.index[rows[0].step], self.index[rows[-1].step] + 1  # recorded steps are consecutive rows
        stats = np.stack([r.stats for r in rows])  # (R, P, 5)
        for k, name in enumerate(STATS):
            g[name][i0:i1] = stats[:, :, k]
        g["loss"][i0:i1] = np.array([r.loss for r in rows])
        g["lr"][i0:i1] = np.array([r.lr for r in rows])
        g["row_done"][i0:i1] = 1
        rows.clear()  # after on_epoch: the last step's update ratio is already in its row


def _writer(url: str, spec: GradientsSpec, overwrite: bool) -> ResultWriter:
    return ResultWriter(url, identity=spec.identity(), overwrite=overwrite, command=f"landscape gradients {spec.name}",
                        what="gradients", resumable=False, former=former_identities(spec.identity))  # no resuming mid-training


def run_gradients(spec: GradientsSpec, *, out: str | None = None, overwrite: bool = False, plot: bool = True,
                  fmt: str = "png") -> str:
    """Record the run's gradient statistics into a result; returns its path or URL."""
    url = str(out or default_output(spec))
    inputs, targets, factory, notes = check_train(spec)  # every bad input fails here, before anything is written
    for note in notes:
        say(f"note: {note}")
    model, wm = checked_model(factory, "landscape gradients")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    steps_per_epoch = -(-len(inputs) // spec.batch_size)
    steps = planned_steps(spec, steps_per_epoch)
    probe = None
    if spec.record == "epoch":
        from landscape.data import subsample

        probe = subsample(inputs, targets, spec.probe_samples, spec.seed)
    with _writer(url, spec, overwrite) as w:
        if w.store is not None:  # the same spec, complete
            say(f"{url} is already complete; nothing to record")
            w.finish()
        else:
            say(f"gradients {spec.name!r}: {len(names)} parameters ({len(wm)} weight matrices), {len(steps)} rows "
                f"(record: {spec.record}), {spec.epochs} epoch(s) -> {url}")
            w.create(_arrays(spec, names, model, steps, steps_per_epoch), _meta(spec, names, wm, steps_per_epoch, len(inputs), notes))
            t0 = time.monotonic()
            diverged_at = _record(spec, model, inputs, targets, probe, _RowWriter(w.store, steps), steps_per_epoch)
            done = int(w.store.group["row_done"][...].sum())
            if diverged_at is not None:
                say(f"the loss diverged (non-finite) at step {diverged_at}: training stopped; {done} of {len(steps)} rows recorded")
            w.finish(wall_seconds=time.monotonic() - t0, diverged_at_step=diverged_at, rows_recorded=done)
            _summary(w.store.group, wm)
    print(f"result: {url}")
    if plot:
        plot_and_say(url, f"{spec.name}-gradients", fmt)
    return url


def _record(spec, model, inputs, targets, probe, rows: _RowWriter, steps_per_epoch: int) -> int | None:
    """Train with recording hooks; the step at which the loss diverged, or None."""
    state = {"diverged": None}
    hooks: dict = {}
    if spec.record == "step":
        rec = GradientRecorder(model, every=spec.every, stop_after_first=spec.epochs == 0)
        hooks["objective"] = rec.objective(spec.loss)
        hooks["on_backward"] = rec.on_backward
    else:
        rec = _EpochProbe(model, *probe, spec.loss, steps_per_epoch, spec.lr)
        rec.measure(0)

    def on_step(step: int, metrics: dict) -> None:
        if spec.record == "step":
            rec.on_step(step, metrics)
        if not math.isfinite(metrics["loss"]):
            state["diverged"] = step
            raise StopTraining

    def on_epoch(epoch: int, model, metrics: dict) -> None:
        if spec.record == "epoch":
            rec.measure(epoch)
        rows.write(rec.rows)
        say(f"[gradients {spec.name}] epoch {epoch}/{spec.epochs} loss {metrics['train_loss']:.4f} "
            f"accuracy {metrics['train_accuracy']:.3f}")

    if spec.epochs > 0 or spec.record == "step":
        train(model, inputs, targets, loss=spec.loss, epochs=max(spec.epochs, 1), lr=spec.lr, momentum=spec.momentum,
              weight_decay=spec.weight_decay, batch_size=spec.batch_size, seed=spec.seed, optimizer=spec.optimizer,
              on_step=on_step, on_epoch=on_epoch, **hooks)
    for r in rec.rows:
        if math.isnan(r.lr):  # epochs 0: no step took a rate, the spec's would have been used
            r.lr = spec.lr
    rows.write(rec.rows)
    return state["diverged"]


class _EpochProbe:
    """record: epoch: the probe gradient at initialization and after each epoch; the epoch's net update ratio."""

    def __init__(self, model, x, y, loss, steps_per_epoch: int, lr: float):
        self.model, self.x, self.y, self.loss = model, x, y, loss
        self.spe, self.lr = steps_per_epoch, lr
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.rows: list = []
        self.before: list[torch.Tensor] | None = None

    def measure(self, epoch: int) -> None:
        pr = probe_gradients(self.model, self.x, self.y, self.loss)
        mask = [p.requires_grad for p in self.model.parameters()]
        stats = np.full((len(self.params), len(STATS)), np.nan)  # (P, 5)
        stats[:, :4] = pr.stats[np.array(mask)]
        if self.before is not None:
            stats[:, 4] = [update_ratio(b, p) for b, p in zip(self.before, self.params)]
        self.before = [p.detach().clone() for p in self.params]
        self.rows.append(Row(epoch * self.spe, stats, loss=pr.loss, lr=self.lr))


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

"""Error bars and sequential evaluation, measured side by side in one process.

(1) `--overhead`: the cost of the standard errors. The same evaluator runs the
    same grid points with the metric as it was (loss and correct sums only) and
    with the sum of squares added (loss_se, accuracy_se), alternating repeats;
    median evaluations/s of each.
(2) the table: per model, a filter-normalized random plane around a briefly
    trained model is scanned on all the data (the full scan) and with
    `tolerance` 1e-2, 3e-3, 1e-3 (sequential evaluation); per tolerance: wall
    time, evaluations/s and its ratio to the full scan in the same run, the
    fraction of the data used (median, max), and |sequential - full| / SE
    (SE: the sequential point's own standard error) at every point (max, 99th
    percentile, fraction <= 3).

No Ray, no Zarr: the evaluator in-process, as an actor runs it.

    python benchmarks/sequential.py --overhead --out benchmarks/results/x.jsonl
    python benchmarks/sequential.py --case resnet20 --n 2000 --grid 4 --out ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landscape import data as datasets  # noqa: E402
from landscape.evaluator import Evaluator  # noqa: E402
from landscape.factories import ModelFactory  # noqa: E402
from landscape.metrics import LossAccuracy, loss_terms  # noqa: E402
from landscape.params import StateLayout  # noqa: E402
from landscape.plan import EvalOptions  # noqa: E402
from landscape.problem import ScanProblem  # noqa: E402
from landscape.sequential import Sequential  # noqa: E402
from landscape.slices import random_slice  # noqa: E402

CASES = {  # kind, options, data, input shape, training epochs, grid half-width
    "mlp": ("mlp", {"widths": [64, 64]}, "digits", (1, 8, 8), 30, 1.0),
    "cnn": ("cnn", {}, "synthetic", (1, 28, 28), 1, 1.0),  # a random linear teacher: the CNN barely learns it
    "cnn-digits": ("cnn", {}, "digits", (1, 8, 8), 15, 1.0),  # the same CNN on 8x8 digits: a trained basin
    "resnet20": ("resnet20", {}, "synthetic", (3, 32, 32), 1, 0.5),
}


class SumsOnly(LossAccuracy):
    """The metric before standard errors: loss and correct sums (loss_terms), nothing else."""

    names = ("loss", "accuracy")
    accumulators = 2

    def accumulate(self, acc, out, target, start, stop) -> None:
        l, c = loss_terms(out, target, self.loss)
        acc[0] += l
        acc[1] += c

    def finish(self, acc, evaluator):
        return {"loss": acc[0] / evaluator.terms_per_point, "accuracy": acc[1] / evaluator.n}


def problem(case: str, n: int, seed: int = 0):
    kind, options, data, shape, epochs, _ = CASES[case]
    if data == "digits":
        x, y = datasets.digits()
    else:
        x, y = datasets.synthetic(n, shape, 10, seed)
    x, y = x[:n], y[:n]
    factory = ModelFactory(kind, shape, 10, options, seed=seed)
    model = factory()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):  # briefly trained: a basin with low loss at the center, walls around it
        for idx in torch.randperm(len(x), generator=g).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=seed)
    return factory, sl, x, y


def grid(case: str, num: int) -> np.ndarray:
    w = CASES[case][5]
    xs = np.linspace(-w, w, num)
    yy, xx = np.meshgrid(xs * 0.8, xs, indexing="ij")  # non-square extent
    return np.stack([xx.ravel(), yy.ravel()], 1)


CPU_TIME = False  # --cpu-time: seconds of this process's CPU time, not wall time (a shared machine)


def timed(ev: Evaluator, coords: np.ndarray) -> tuple[dict, float]:
    ev.evaluate(coords[:1])  # warm-up (first-call allocations)
    clock = time.process_time if CPU_TIME else time.perf_counter
    t0 = clock()
    out = ev.evaluate(coords)
    return out, clock() - t0


def overhead(case: str, n: int, num: int, repeats: int) -> list[dict]:
    factory, sl, x, y = problem(case, n)
    coords = grid(case, num)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions()), device="cpu")
    with_se = ev.output_metrics
    without = [SumsOnly()]
    without[0].bind(ev)
    rates = {"sums only": [], "sums + squares (SE)": []}
    for _ in range(repeats):  # alternate, so both see the same load
        for label, metrics in (("sums only", without), ("sums + squares (SE)", with_se)):
            ev.output_metrics = metrics
            _, s = timed(ev, coords)
            rates[label].append(len(coords) / s)
    base = statistics.median(rates["sums only"])
    return [{"part": "overhead", "case": case, "n": len(x), "points": len(coords), "mode": k,
             "evals_per_s_median": statistics.median(v), "ratio": statistics.median(v) / base, "runs": v}
            for k, v in rates.items()]


def table(case: str, n: int, num: int, tolerances: list[float], min_samples: int, step: int) -> list[dict]:
    factory, sl, x, y = problem(case, n)
    coords = grid(case, num)
    full, t_full = timed(Evaluator(ScanProblem(factory, sl, x, y), device="cpu"), coords)
    rows = [{"part": "table", "case": case, "n": len(x), "points": len(coords), "tolerance": None, "wall_s": t_full,
             "evals_per_s": len(coords) / t_full, "x_full": 1.0, "loss_median": float(np.median(full["loss"])),
             "loss_min": float(full["loss"].min()), "rel_se_full_median": float(np.median(full["loss_se"] / full["loss"]))}]
    for tol in tolerances:
        rule = Sequential(tol, min_samples, step, seed=0)
        seq, t = timed(Evaluator(ScanProblem(factory, sl, x, y, sequential=rule), device="cpu"), coords)
        z = np.abs(seq["loss"].astype(np.float64) - full["loss"]) / seq["loss_se"]
        z = np.where(seq["samples"] >= len(x), 0.0, z)  # all the data: the full value itself
        frac = seq["samples"] / len(x)
        rows.append({"part": "table", "case": case, "n": len(x), "points": len(coords), "tolerance": tol,
                     "min_samples": min_samples, "step": step, "wall_s": t, "evals_per_s": len(coords) / t,
                     "x_full": t_full / t, "fraction_median": float(np.median(frac)), "fraction_max": float(frac.max()),
                     "z_max": float(z.max()), "z_p99": float(np.percentile(z, 99)), "within_3se": float((z <= 3).mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=list(CASES), default="mlp")
    ap.add_argument("--n", type=int, default=2000, help="samples (digits: at most 1,797)")
    ap.add_argument("--grid", type=int, default=5, help="points per axis")
    ap.add_argument("--overhead", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tolerances", type=float, nargs="+", default=[1e-2, 3e-3, 1e-3])
    ap.add_argument("--min-samples", type=int, default=200)
    ap.add_argument("--step", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="1: on a shared machine more threads only fight")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the case's)")
    ap.add_argument("--cpu-time", action="store_true", help="time by process CPU time (one thread): fair on a loaded machine")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    global CPU_TIME
    CPU_TIME = a.cpu_time
    if a.epochs is not None:
        c = CASES[a.case]
        CASES[a.case] = (*c[:4], a.epochs, c[5])
    torch.set_num_threads(a.threads)
    rows = overhead(a.case, a.n, a.grid, a.repeats) if a.overhead else table(
        a.case, a.n, a.grid, a.tolerances, a.min_samples, a.step)
    stamp = {"date": dt.date.today().isoformat(), "cpu": platform.processor() or platform.machine(),
             "capability": torch.backends.cpu.get_cpu_capability(), "threads": a.threads, "precision": "fp32",
             "clock": "process CPU time" if a.cpu_time else "wall", "epochs": CASES[a.case][4]}
    with open(a.out, "a") as f:
        for r in rows:
            f.write(json.dumps({**stamp, **r}) + "\n")
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k != "runs"}))


if __name__ == "__main__":
    main()

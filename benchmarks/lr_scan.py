"""Learning-rate search speed: a 16-rate scan on 1 and on 2 CPU actors, the bisection, the range test.

Everything runs through the real jobs (`run_lr_scan`, `run_bisect`) on an
embedded local Ray with 2 CPUs, fp32, 1 thread per actor, on a deep tanh net on
digits. Prints a Markdown table: wall time per method (actor start included),
training seconds summed over actors, the parallel efficiency of 2 actors
(wall(1) / (2 wall(2))) and the wall time against the ideal ceil(L / A) x one
training (the mean measured training of one rate).

    python benchmarks/lr_scan.py                # depth 48, width 64, 3 epochs: ~2 min
    python benchmarks/lr_scan.py --depth 24 --epochs 2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from cluster.session import ray_session  # noqa: E402
from cluster.store import ResultStore  # noqa: E402
from jobs.health.lr_bisect import run_bisect  # noqa: E402
from jobs.health.lr_scan import run_lr_scan  # noqa: E402
from jobs.specs import LRScanSpec  # noqa: E402


def spec(args, **over) -> LRScanSpec:
    d = {
        "name": "bench-lr",
        "model": {"kind": "deep_mlp", "options": {"depth": args.depth, "width": args.width, "activation": "tanh", "init_gain": 1.8}},
        "data": {"kind": "digits"},
        "learning_rates": {"lo": 1e-4, "hi": 10.0, "num": args.rates},
        "epochs": args.epochs,
        "batch_size": 64,
        "range_test": {"enabled": False},
        "bisect": {"tolerance": args.tolerance, "probes": args.probes},
    }
    d.update(over)
    return LRScanSpec.model_validate(d)


def quiet(fn, *a, **kw):
    """Run a job with its progress lines captured (kept for the log file)."""
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(io.StringIO()):
        t0 = time.monotonic()
        out = fn(*a, **kw)
        wall = time.monotonic() - t0
    return out, wall, buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=48)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rates", type=int, default=16)
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--probes", type=int, default=3)
    ap.add_argument("--log", help="write the jobs' progress lines here")
    args = ap.parse_args()
    log = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, ray_session(None, num_cpus=2):
        one, wall_cmd1, e1 = quiet(run_lr_scan, spec(args), out=f"{tmp}/one.zarr", actors=1, plot=False)
        two, wall_cmd2, e2 = quiet(run_lr_scan, spec(args, range_test={"enabled": True}), out=f"{tmp}/two.zarr", actors=2, plot=False)
        bis, wall_cmdb, eb = quiet(run_bisect, spec(args), out=f"{tmp}/bis.zarr", actors=2, plot=False)
        log += [e1, e2, eb]
        m1, m2, mb = (ResultStore.open(u).meta for u in (one, two, bis))
        g1, g2 = (ResultStore.open(u).group for u in (one, two))
        identical = all(np.array_equal(g1[k][...], g2[k][...], equal_nan=True)
                        for k in ("median_log10_grad", "accuracy", "collapsed", "diverged"))
    per_run = m1["scan_train_seconds"] / args.rates  # one rate's training, measured on 1 actor
    w1, w2 = m1["scan_wall_seconds"], m2["scan_wall_seconds"]
    rt = m2["range_test"]
    sizes = [len(r["lrs"]) for r in mb["rounds"]]
    # (method, work, wall, training summed, runs, trainings in a row on the busiest actor)
    rows = [
        ("scan, 1 actor", f"{args.rates} runs", w1, m1["scan_train_seconds"], args.rates, args.rates),
        ("scan, 2 actors", f"{args.rates} runs", w2, m2["scan_train_seconds"], args.rates, math.ceil(args.rates / 2)),
        (f"bisection, 2 actors, {args.probes} rates/round, to {args.tolerance:g} decades", f"{sum(sizes)} runs in {len(sizes)} rounds",
         mb["bisect_wall_seconds"], mb["bisect_train_seconds"], sum(sizes), sum(math.ceil(k / 2) for k in sizes)),
        ("range test, 1 actor", f"1 run, {rt['steps_run']} steps", rt["wall_seconds"], rt["train_seconds"], 1, 1),
    ]
    print(f"# learning-rate search: {dt.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs shared (load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end), "
          f"torch {torch.__version__}, fp32, 1 thread per actor")
    print(f"model deep_mlp depth {args.depth} width {args.width} tanh init_gain 1.8, digits (1,797 samples), batch 64, "
          f"{args.epochs} epochs per rate, SGD momentum 0.9, rates 1e-4..10")
    print()
    print("| method | work | wall s | training s (summed over actors) | one run here s | ideal s = trainings in a row x one run | wall / ideal |")
    print("|---|---|---|---|---|---|---|")
    for name, work, wall, train, runs, in_row in rows:
        one = train / runs
        print(f"| {name} | {work} | {wall:.1f} | {train:.1f} | {one:.2f} | {in_row} x {one:.2f} = {in_row * one:.1f} | {wall / (in_row * one):.2f} |")
    print()
    print(f"- parallel efficiency of 2 actors, wall(1) / (2 wall(2)) = {w1 / (2 * w2):.2f} (speed-up {w1 / w2:.2f}x); one run took "
          f"{m2['scan_train_seconds'] / args.rates / per_run:.2f}x as long with 2 actors running as with 1")
    g3 = lambda v: f"{v:.3g}" if v is not None else "none"  # noqa: E731
    print(f"- 1 and 2 actors bit-identical: {identical}; breakthrough: scan {g3(m1.get('breakthrough'))} (collapse from "
          f"{g3(m1.get('first_collapse'))}), bisection {g3(mb.get('breakthrough'))} (collapse from {g3(mb.get('first_collapse'))}); "
          f"largest accuracy gain at {g3(m1.get('best_gain_lr'))}; range test suggests {g3(rt.get('suggestion'))}")
    print(f"- whole commands (Ray already up): {wall_cmd1:.1f} s, {wall_cmd2:.1f} s (with the range test), {wall_cmdb:.1f} s")
    if args.log:
        Path(args.log).write_text("\n".join(log))


if __name__ == "__main__":
    main()

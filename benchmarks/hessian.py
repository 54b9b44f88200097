"""Curvature speed: Hessian-vector products per second beside a PyHessian-style loop, and a ratio map.

(a) H v products per second on the same model, data and vectors, in one process:
    - pyhessian-style: for each product, loop over the data in mini-batches of 128
      (fp32): forward, loss.backward(create_graph=True), torch.autograd.grad of the
      gradient against v, accumulated weighted by batch size (PyHessian's
      dataloader_hv_product);
    - ours: landscape.hessian.HessianOperator as the evaluator builds it (full batch
      in the evaluator's data chunks, the gradient graph kept across products:
      "kept"), and the same without keeping it ("rebuilt per product");
    - ours, 8 vectors per pass (is_grads_batched), as the trace and the density run on GPU;
    - torch.func jvp(grad) over the whole batch (forward-over-reverse; measured, not used).
    Timed in interleaved rounds (every mode once per round), median of the rounds;
    the max relative difference of each mode's H v from the pyhessian-style one.
(b) With --map: the 51x51 |min/max| map of the digits MLP (jobs/examples/digits_hessian_ratio.yaml,
    Lanczos <= 20 steps per point) through `landscape run` on 2 CPU actors: wall time.

    python benchmarks/hessian.py --threads 1            # (a) only
    python benchmarks/hessian.py --threads 1 --map      # (a) and (b); trains the digits MLP if needed
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
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from landscape import data as datasets  # noqa: E402
from landscape.factories import ModelFactory  # noqa: E402
from landscape.hessian import operator_at, point_evaluator  # noqa: E402
from landscape.params import StateLayout  # noqa: E402
from landscape.plan import EvalOptions  # noqa: E402

CASES = {
    "digits MLP 64-64": ("mlp", {"widths": [64, 64]}),
    "digits CNN 16-32": ("cnn", {}),
}


class PyHessianStyle:
    """PyHessian's dataloader_hv_product: per mini-batch forward, create_graph backward, grad against v."""

    def __init__(self, model, inputs, targets, batch: int = 128):
        self.model, self.batch = model.eval(), batch
        self.data = [(inputs[s : s + batch], targets[s : s + batch]) for s in range(0, len(inputs), batch)]
        self.params = [p for p in model.parameters() if p.requires_grad]

    def matvec(self, v: list[torch.Tensor]) -> list[torch.Tensor]:
        total = [torch.zeros_like(p) for p in self.params]
        seen = 0
        for x, y in self.data:
            self.model.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward(create_graph=True)
            grads = [p.grad for p in self.params]
            self.model.zero_grad()
            hv = torch.autograd.grad(grads, self.params, grad_outputs=v, only_inputs=True, retain_graph=False)
            total = [t + h * float(len(x)) for t, h in zip(total, hv)]
            seen += len(x)
        return [t / seen for t in total]


def hvp_rows(rounds: int, seconds: float) -> list[dict]:
    x, y = datasets.digits()
    rows = []
    for label, (kind, options) in CASES.items():
        factory = ModelFactory(kind, tuple(x.shape[1:]), 10, options, seed=0)
        model = factory()
        layout = StateLayout.of(model)
        ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, y, "cross_entropy", EvalOptions(), "cpu")
        kept = operator_at(ev, factory(), [0.0], retain=True)
        rebuilt = operator_at(ev, factory(), [0.0], retain=False)
        ref = PyHessianStyle(factory(), x, y)
        ref.model.load_state_dict(model.state_dict())
        g = torch.Generator().manual_seed(0)
        v = torch.randn(8, kept.size, generator=g)
        shapes = [p.shape for p in ref.params]

        def split(u):
            return [t.view(s) for t, s in zip(torch.split(u, [int(np.prod(s)) for s in shapes]), shapes)]

        want = torch.cat([h.reshape(-1) for h in ref.matvec(split(v[0]))])
        jvp_model = factory().eval()
        names = [n for n, _ in jvp_model.named_parameters()]
        flat0 = kept.flat.detach()

        def full_loss(w):  # forward-over-reverse on the same loss, all data in one pass
            parts = dict(zip(names, split(w)))
            return F.cross_entropy(torch.func.functional_call(jvp_model, parts, (x,)), y)

        def jvp_grad():
            return torch.func.jvp(torch.func.grad(full_loss), (flat0,), (v[0],))[1]

        modes = {
            "pyhessian-style loop (batches of 128)": (lambda: ref.matvec(split(v[0])), 1),
            "ours, graph kept": (lambda: kept.matvec(v[:1]), 1),
            "ours, graph rebuilt per product": (lambda: rebuilt.matvec(v[:1]), 1),
            "ours, graph kept, 8 vectors per pass": (lambda: kept.matvec(v), 8),
            "torch.func jvp(grad), full batch (not used)": (jvp_grad, 1),
        }
        dev = {
            "pyhessian-style loop (batches of 128)": 0.0,
            "ours, graph kept": float(((kept.matvec(v[:1])[0] - want).abs().max() / want.abs().max())),
            "ours, graph rebuilt per product": float(((rebuilt.matvec(v[:1])[0] - want).abs().max() / want.abs().max())),
            "ours, graph kept, 8 vectors per pass": float(((kept.matvec(v)[0] - want).abs().max() / want.abs().max())),
            "torch.func jvp(grad), full batch (not used)": float(((jvp_grad() - want).abs().max() / want.abs().max())),
        }
        rates: dict[str, list[float]] = {m: [] for m in modes}
        for fn, _ in modes.values():  # warm-up
            fn()
        for _ in range(rounds):
            for m, (fn, per_call) in modes.items():
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    fn()
                    n += per_call
                rates[m].append(n / (time.perf_counter() - t0))
        base = statistics.median(rates["pyhessian-style loop (batches of 128)"])
        for m in modes:
            med = statistics.median(rates[m])
            rows.append({"model": f"{label} (N={len(x):,}, P={kept.size:,})", "mode": m, "hvp_per_s": med,
                         "ratio": med / base, "max_rel_dev": dev[m], "chunk": kept.chunks[0][1],
                         "rounds": [round(r, 2) for r in rates[m]]})
        print(f"  {label}: done", file=sys.stderr, flush=True)
    return rows


def ratio_map() -> dict:
    """The 51x51 ratio map through `landscape run` on 2 CPU actors, into results/ (recomputed), plotted after the timing."""
    import shutil
    import subprocess

    import zarr

    exe = [sys.executable, "-m", "jobs.cli"]
    if not (REPO / "runs/digits-mlp/epoch_020.pt").exists():
        subprocess.run(exe + ["train", "jobs/examples/train_digits_mlp.yaml"], cwd=REPO, check=True)
    out = REPO / "results" / "bench-digits-hessian-ratio.zarr"
    shutil.rmtree(out, ignore_errors=True)  # this script's own output: a finished one would not be recomputed
    t0 = time.perf_counter()
    subprocess.run(exe + ["run", "jobs/examples/digits_hessian_ratio.yaml", "--out", str(out), "--actors", "2", "--no-plot"],
                   cwd=REPO, check=True)
    wall = time.perf_counter() - t0
    subprocess.run(exe + ["plot", str(out)], cwd=REPO, check=True)
    g = zarr.open_group(str(out), mode="r")
    meta = dict(g.attrs["landscape"])
    opts = meta["metric_options"]["hessian"]
    res = g["hessian_residual"][...]
    ratio = g["hessian_ratio"][...]
    return {
        "points": int(res.size), "wall_s_command": wall, "wall_s_scan": meta["wall_seconds"],
        "evals_per_s": meta["evals_per_second"], "iterations": opts["iterations"], "tol": opts["tol"],
        "converged_fraction": float((res <= opts["tol"]).mean()), "median_residual": float(np.median(res)),
        "ratio_range": [float(ratio.min()), float(ratio.max())], "result": str(out.relative_to(REPO)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = what one CPU actor uses)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="per mode and round")
    ap.add_argument("--map", action="store_true", help="also the 51x51 ratio map on 2 CPU actors")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    head = {"date": dt.date.today().isoformat(), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
            "threads": args.threads, "precision": "fp32", "device": "cpu"}
    rows = hvp_rows(args.rounds, args.seconds)
    print(f"CPU, {args.threads} thread(s), fp32, torch {torch.__version__}, {head['date']}; median of {args.rounds} interleaved rounds\n")
    print("| model | mode | H v / s | x pyhessian-style | max rel. dev. of H v |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['mode']} | {r['hvp_per_s']:,.1f} | {r['ratio']:.2f} | {r['max_rel_dev']:.1e} |")
    result = {**head, "hvp": rows}
    if args.map:
        m = ratio_map()
        result["map"] = m
        print(f"\n51x51 ratio map, 2 CPU actors: {m['points']:,} points, scan {m['wall_s_scan']:.1f} s "
              f"({m['evals_per_s']:.1f} points/s), whole command {m['wall_s_command']:.1f} s; Lanczos <= {m['iterations']} "
              f"steps, tol {m['tol']:g}: {100 * m['converged_fraction']:.0f}% of points converged, median residual "
              f"{m['median_residual']:.2g}; ratio {m['ratio_range'][0]:.3g} .. {m['ratio_range'][1]:.3g}")
    out = REPO / "benchmarks" / "results" / f"hessian-cpu-{head['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nraw: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()

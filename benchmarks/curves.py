"""Mode-connectivity speed, measured side by side in one run (prints markdown tables and ratios).

1. BatchNorm on a curve: evaluations/s of a curve scan in `eval` mode (running
   statistics ride on the coefficients) and in `recompute` mode (statistics
   re-estimated at every point from the data, update_bn style, then eval), on a
   CIFAR-style ResNet-20 with BatchNorm.
2. Curve training: epochs/s of the project's training loop (`landscape.training.train`
   with `CurveObjective`) beside a plain PyTorch loop of the same objective (one
   t ~ U[0, 1] per mini-batch, phi_theta(t) through functional_call, SGD on theta),
   same model, data, seed and batches; plus the train-curve job's per-epoch cost
   (the loop and the loss at t = 0.5 with BatchNorm re-estimated). The two loops'
   final thetas are compared (they compute the same thing).

Modes are timed in interleaved rounds (each mode once per round) and the median
is reported, because this machine is shared. CPU, fp32.

    python benchmarks/curves.py [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landscape.curves import CurveObjective, curve_slice, init_linear, loss_at  # noqa: E402
from landscape.data import digits, synthetic  # noqa: E402
from landscape.evaluator import Evaluator  # noqa: E402
from landscape.factories import ModelFactory  # noqa: E402
from landscape.metrics import loss_terms  # noqa: E402
from landscape.params import StateLayout  # noqa: E402
from landscape.plan import EvalOptions  # noqa: E402
from landscape.problem import ScanProblem  # noqa: E402
from landscape.training import train  # noqa: E402


def bn_models(factory, x, n=3):
    """Three differently initialized ResNets whose running statistics saw different data (w1, theta, w2)."""
    states = []
    for s in range(n):
        m = ModelFactory(factory.kind, factory.input_shape, factory.num_classes, factory.options, seed=s)().train()
        with torch.no_grad():
            m(x[:256] * (1 + s))
        states.append(m.state_dict())
    return states


def bench_batchnorm(rounds: int, points: int) -> list[tuple]:
    x, y = synthetic(1024, (3, 16, 16), 10, seed=0, task="classification")
    factory = ModelFactory("resnet20", (3, 16, 16), 10, {"width": 8})
    layout = StateLayout.of(factory())
    sl = curve_slice(layout, "bezier", *[layout.flatten(s) for s in bn_models(factory, x)])
    sl.companions = {}
    t = np.linspace(0.05, 0.95, points)[:, None]
    evs = {
        "eval": Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(batchnorm="eval")), device="cpu"),
        "recompute (all 1024 samples)": Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(batchnorm="recompute")), device="cpu"),
        "recompute (batchnorm_samples 256)": Evaluator(
            ScanProblem(factory, sl, x, y, options=EvalOptions(batchnorm="recompute"), bn_inputs=x[:256]), device="cpu"),
    }
    for ev in evs.values():
        ev.evaluate(t[:1])  # warm-up
    times = {k: [] for k in evs}
    for _ in range(rounds):
        for k, ev in evs.items():
            t0 = time.perf_counter()
            ev.evaluate(t)
            times[k].append(time.perf_counter() - t0)
    base = points / statistics.median(times["eval"])
    return [(k, points / statistics.median(v), points / statistics.median(v) / base) for k, v in times.items()]


def plain_curve_loop(model, w1, w2, x, y, epochs, lr, momentum, batch, seed, metrics=False):
    """The same objective without the project's loop: what a user would write by hand.

    metrics=True adds what the project's loop does per batch besides training: the
    loss sum and correct count of the batch (loss_terms), to attribute the difference.
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    names = [n for n, _ in model.named_parameters()]
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), batch):
            idx = order[s : s + batch]
            t = float(torch.rand((), generator=g))
            c1, ct, c2 = (1 - t) ** 2, 2 * t * (1 - t), t**2
            params = dict(model.named_parameters())
            weights = {n: c1 * w1[n] + ct * params[n] + c2 * w2[n] for n in names}
            out = functional_call(model, weights, (x[idx],))
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if metrics:
                [float(v) for v in loss_terms(out.detach()[None], y[idx], "cross_entropy")]
    return model


def bench_training(rounds: int, epochs: int) -> tuple[list[tuple], float]:
    x, y = digits()
    factory = ModelFactory("mlp", (64,), 10, {"widths": [64, 64]})
    ends = []
    for s in (0, 1):
        m = ModelFactory("mlp", (64,), 10, {"widths": [64, 64]}, seed=s)()
        train(m, x, y, epochs=3, lr=0.05, batch_size=64, seed=s)
        ends.append({k: v.detach().clone() for k, v in m.state_dict().items()})
    w1, w2 = ends
    layout = StateLayout.of(factory())
    kw = dict(epochs=epochs, lr=0.05, momentum=0.9, batch_size=64, seed=0)

    def ours():
        m = factory()
        init_linear(m, w1, w2)
        return train(m, x, y, objective=CurveObjective("bezier", w1, w2), **kw)

    def plain():
        m = factory()
        init_linear(m, w1, w2)
        return plain_curve_loop(m, w1, w2, x, y, kw["epochs"], kw["lr"], kw["momentum"], kw["batch_size"], kw["seed"])

    def plain_metrics():
        m = factory()
        init_linear(m, w1, w2)
        return plain_curve_loop(m, w1, w2, x, y, kw["epochs"], kw["lr"], kw["momentum"], kw["batch_size"], kw["seed"], True)

    def job():  # the train-curve job per epoch: the loop, then the loss at t = 0.5
        m = factory()
        init_linear(m, w1, w2)

        def mid(epoch, model, metrics):
            loss_at("bezier", 0.5, factory, layout.flatten(w1), layout.flatten(model.state_dict()), layout.flatten(w2), x, y)

        return train(m, x, y, objective=CurveObjective("bezier", w1, w2), on_epoch=mid, **kw)

    modes = {"plain PyTorch loop": plain, "plain loop + per-batch loss/accuracy sums": plain_metrics,
             "landscape train + CurveObjective": ours, "train-curve job (+ loss at t=0.5 per epoch)": job}
    times = {k: [] for k in modes}
    out = {}
    for _ in range(rounds):
        for k, fn in modes.items():
            t0 = time.perf_counter()
            out[k] = fn()
            times[k].append(time.perf_counter() - t0)
    a, b = out["plain PyTorch loop"].state_dict(), out["landscape train + CurveObjective"].state_dict()
    dev = max(float(((a[k] - b[k]).abs().max() / b[k].abs().max())) for k in a)
    base = epochs / statistics.median(times["plain PyTorch loop"])
    rows = [(k, epochs / statistics.median(v), epochs / statistics.median(v) / base) for k, v in times.items()]
    return rows, dev


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--points", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"CPU ({platform.processor() or platform.machine()}), {a.threads} thread(s), fp32, torch {torch.__version__}, "
          f"{dt.date.today()}, median of {a.rounds} interleaved rounds\n")
    print("| BatchNorm on a Bezier curve, ResNet-20 (width 8), 1,024 images 3x16x16 | evals/s | x eval |")
    print("|---|---|---|")
    for name, rate, ratio in bench_batchnorm(a.rounds, a.points):
        print(f"| {name} | {rate:,.1f} | {ratio:.2f} |")
    rows, dev = bench_training(a.rounds, a.epochs)
    print("\n| curve training, digits MLP 64-64, 1,797 samples, batch 64 | epochs/s | x plain loop |")
    print("|---|---|---|")
    for name, rate, ratio in rows:
        print(f"| {name} | {rate:,.2f} | {ratio:.2f} |")
    print(f"\nmax relative deviation of the final theta, ours vs the plain loop: {dev:.1e}")


if __name__ == "__main__":
    main()

"""The precise per-sample cross-entropy (log1p form) beside the previous one (top + log(sum) - picked), side by side.

Interleaved A/B rounds in one process (the machine may be shared): the evaluator's evaluations/s on the digits
MLP 64-64 (all 1,797 samples, fp32, CPU, one thread) with each loss, and the loss kernel alone on (K, C, n) logits.

    python benchmarks/ce_precision.py [--rounds 7] [--jsonl OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landscape import data as datasets  # noqa: E402
from landscape import metrics  # noqa: E402
from landscape.evaluator import Evaluator  # noqa: E402
from landscape.factories import ModelFactory  # noqa: E402
from landscape.params import StateLayout  # noqa: E402
from landscape.problem import ScanProblem  # noqa: E402
from landscape.slices import random_slice  # noqa: E402


def previous_terms(logits, top, picked, index, dim):
    """The previous formula: logsumexp as top + log(sum exp(z - top)), minus the target's logit."""
    return ((logits - top).exp_().sum(dim).log_() + top.squeeze(dim)) - picked.squeeze(dim)


def rate(fn, seconds=0.5):
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--jsonl")
    args = p.parse_args()
    torch.set_num_threads(1)
    x, y = datasets.digits()
    factory = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [64, 64]}, seed=0)
    layout = StateLayout.of(factory())
    sl = random_slice(layout, layout.flatten(factory().state_dict()), 2, seed=0)
    ev = Evaluator(ScanProblem(factory, sl, x, y), device="cpu")
    coords = np.random.default_rng(0).uniform(-1, 1, (64, 2))
    k, c, n = 8, 10, 1797
    logits = torch.randn(k, n, c).transpose(1, 2).contiguous().transpose(1, 2)  # class-major, as the head gives
    kernels = {"previous": previous_terms, "precise": metrics._cross_entropy_terms}
    rows = {(what, name): [] for what in ("evaluator evals/s", "loss kernel calls/s") for name in kernels}
    for _ in range(args.rounds):
        for name, fn in kernels.items():
            metrics._cross_entropy_terms = fn
            rows[("evaluator evals/s", name)].append(64 * rate(lambda: ev.evaluate(coords)))
            rows[("loss kernel calls/s", name)].append(rate(lambda: metrics._cross_entropy_cpu(logits, y)))
    metrics._cross_entropy_terms = kernels["precise"]
    out = []
    for (what, name), vals in rows.items():
        out.append({"what": what, "loss": name, "median": statistics.median(vals), "rounds": vals})
        print(f"{what:22s} {name:9s} median {statistics.median(vals):10.1f}  rounds {[round(v) for v in vals]}")
    for what in ("evaluator evals/s", "loss kernel calls/s"):
        ratio = statistics.median(rows[(what, "precise")]) / statistics.median(rows[(what, "previous")])
        print(f"{what}: precise / previous = {ratio:.3f}")
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            for r in out:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()

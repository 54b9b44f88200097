"""Sequential evaluation: each grid point takes data step by step until its loss is known to a tolerance.

The data are put once in a seeded, stratified order (every prefix holds the
classes in about their overall proportions) and cut into steps of `step`
samples. A pass runs every live point of a work item on the same step, adds to
its sums (the same accumulators a full pass keeps, sum of squares included) and
drops the points whose relative standard error of the loss is at most
`tolerance`, once they have seen `min_samples`. A point's values therefore depend
only on the point, the order and the rule: the same bits whatever the tile, the
actor or the resume. What a point used is stored in its `samples` array.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SAMPLES = "samples"  # the metric array of samples used per point


@dataclass(frozen=True)
class Sequential:
    """Stop adding data to a point once loss_se <= tolerance * |loss| (after min_samples)."""

    tolerance: float
    min_samples: int = 1000
    step: int = 250  # samples added per pass (a point stops only between steps)
    seed: int = 0  # of the order of the data


def stratified_order(targets: torch.Tensor, seed: int) -> torch.Tensor:
    """(N,) a seeded permutation whose every prefix holds each class in about its proportion of the data.

    Sample r of class c (in a seeded shuffle of that class) gets the key (r + u) / n_c,
    u uniform in [0, 1): sorting the keys interleaves the classes evenly.
    Float targets (regression) get a plain seeded permutation.
    """
    g = torch.Generator().manual_seed(seed)
    n = len(targets)
    if targets.is_floating_point() or targets.dim() != 1:
        return torch.randperm(n, generator=g)
    keys = torch.empty(n, dtype=torch.float64)
    jitter = torch.rand(n, generator=g, dtype=torch.float64)
    for c in torch.unique(targets).tolist():
        members = torch.nonzero(targets == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        keys[members] = (torch.arange(len(members), dtype=torch.float64) + jitter[members]) / len(members)
    return torch.sort(keys, stable=True).indices


def steps(n: int, step: int) -> list[tuple[int, int]]:
    """[(start, stop)] of the steps over n ordered samples."""
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def chunks_by_step(n: int, data_chunk: int, rule: "Sequential | None") -> tuple[list[tuple[int, int]], list[range]]:
    """Memory-sized chunks [(start, stop)] over n samples, each within one step; and per step, its chunks' indices."""
    chunks, by_step = [], []
    for a, b in steps(n, rule.step) if rule is not None else [(0, n)]:
        by_step.append(range(len(chunks), len(chunks) + len(range(a, b, data_chunk))))
        chunks += [(s, min(s + data_chunk, b)) for s in range(a, b, data_chunk)]
    return chunks, by_step


def finished(loss: torch.Tensor, loss_se: torch.Tensor, seen: torch.Tensor, rule: Sequential, n: int) -> torch.Tensor:
    """(M,) bool: the point is done (all the data seen, or known to the tolerance after min_samples)."""
    known = (loss_se <= rule.tolerance * loss.abs()) & (seen >= min(rule.min_samples, n))  # NaN: never known
    return known | (seen >= n)


@torch.no_grad()
def evaluate_sequentially(ev, coefs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every output metric at coefficients (M, D) on the device, with `samples`: (M,) float64 tensors.

    `ev` is the Evaluator (its data in the sequential order, its chunks grouped by step).
    """
    rule: Sequential = ev.sequential
    m, k = len(coefs), ev.plan.points_per_pass
    n_acc = sum(om.accumulators for om in ev.output_metrics)
    sums = [torch.zeros(m, dtype=torch.float64, device=ev.device) for _ in range(n_acc)]
    seen = torch.zeros(m, dtype=torch.float64, device=ev.device)
    offsets, i = [], 0
    for om in ev.output_metrics:
        offsets.append(i)
        i += om.accumulators
    j = next(j for j, om in enumerate(ev.output_metrics) if "loss_se" in om.names)  # its loss and loss_se decide
    judge, first = ev.output_metrics[j], offsets[j]
    # One point per pass (CPU): a point at a time, loaded once, step after step; K per pass: all the points
    # together, each pass on one step. Same values either way: a point's sums never mix with another's.
    groups = torch.arange(m, device=ev.device).split(1 if k == 1 else m)
    for live in groups:
        for s, (chunks, (start, stop)) in enumerate(zip(ev.step_chunks, steps(ev.n, rule.step))):
            if len(live) == 0:
                break
            if k == 1:  # the point accumulates straight into its sums; after its first step it is loaded already
                i = int(live[0])
                ev._sums(coefs[i : i + 1], into=[a[i : i + 1] for a in sums], chunks=chunks, loaded=s > 0)
            else:  # whole groups of K: the last live point repeats; its copies' sums are dropped
                padded = torch.cat([live, live[-1:].repeat((-len(live)) % k)])
                for g in range(0, len(padded), k):
                    idx, valid = padded[g : g + k], min(k, len(live) - g)
                    part = [torch.zeros(k, dtype=torch.float64, device=ev.device) for _ in range(n_acc)]
                    ev._sums(coefs[idx], into=part, chunks=chunks)
                    for total, p in zip(sums, part):
                        total[idx[:valid]] += p[:valid]
            seen[live] = float(stop)  # a group's live points have all taken the same steps
            if stop < min(rule.min_samples, ev.n):
                continue  # none may stop yet: no need to look
            ev.samples_seen = seen[live]
            now = judge.finish([a[live] for a in sums[first : first + judge.accumulators]], ev)
            live = live[~finished(now["loss"], now["loss_se"], seen[live], rule, ev.n)]
    ev.samples_seen = seen
    results = ev.finish_metrics(sums)
    ev.samples_seen = ev.n
    results[SAMPLES] = seen
    return results

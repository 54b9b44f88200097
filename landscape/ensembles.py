"""Ensembles along a path: each grid point together with the slice's point at coordinate 0.

Garipov et al. ensemble w1 with phi(t) along a curve: the ensemble's prediction
is the mean of the two members' softmax probabilities. The member at coordinate
0 is w1 for curves, curve planes and plane_through, `a` for line_between and the
center of random slices. Its log-probabilities are computed once per evaluator
(`bind`), by the evaluator's own one-point pass (same BatchNorm handling), and
each grid point's outputs are combined with them chunk by chunk.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import SpecError
from .metrics import OutputMetric


class EnsembleWithFirst(OutputMetric):
    """ensemble_accuracy and ensemble_nll of {point at coordinate 0, grid point}, mean of probabilities."""

    names = ("ensemble_accuracy", "ensemble_nll")
    accumulators = 2

    def bind(self, evaluator) -> None:
        if evaluator.loss != "cross_entropy":
            raise SpecError("metrics: ensemble averages class probabilities; it needs loss: cross_entropy")
        first = evaluator.coef_map(np.zeros((1, evaluator.dims)))[0]  # (D,)
        self.ref_logp = evaluator.outputs_at(first).log_softmax(-1)  # (N, C)

    def accumulate(self, acc, out, target, start, stop) -> None:
        logp = out.log_softmax(-1)  # (K, n, C)
        mixed = torch.logaddexp(logp, self.ref_logp[start:stop]) - math.log(2.0)  # log of the mean probability
        k = out.shape[0]
        picked = mixed.gather(-1, target.view(1, -1, 1).expand(k, -1, 1)).squeeze(-1)  # (K, n)
        acc[0] += (mixed.argmax(-1) == target).sum(1).to(torch.float64)
        acc[1] -= picked.sum(1).to(torch.float64)

    def finish(self, acc, evaluator) -> dict[str, torch.Tensor]:
        n = evaluator.samples_seen
        return {"ensemble_accuracy": acc[0] / n, "ensemble_nll": acc[1] / n}

"""Cross-entropy keeps fp32's relative precision per sample down to tiny losses (log-scale plots live there).

The reference is float64 logsumexp - logit[target] on the same fp32 logits. The logits sit near 12 (as a trained
model's do), where adding the largest logit back rounds a loss of 1e-3 to about 1e-6 absolute."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape import metrics
from landscape.metrics import loss_terms

LOSSES = [1.0, 0.3, 1e-1, 1e-2, 1.3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 1e-6]


def logits_with_losses(losses, classes=10, offset=12.0, seed=0):
    """(len(losses), classes) fp32 logits whose cross-entropy at target 0 is each loss; the others spread below."""
    g = torch.Generator().manual_seed(seed)
    others = torch.rand(len(losses), classes - 1, generator=g, dtype=torch.float64) * 2  # spread, then shifted below
    rows = []
    for loss, o in zip(losses, others):
        # loss = log(1 + sum exp(o - m)) -> m = log(sum exp(o)) - log(expm1(loss))
        m = torch.logsumexp(o, 0) - np.log(np.expm1(loss))
        rows.append(torch.cat([m.view(1), o]) + offset)
    return torch.stack(rows).float(), torch.zeros(len(losses), dtype=torch.long)


def float64_reference(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = z.double()
    return torch.logsumexp(z, -1) - z.gather(-1, y.view(-1, 1))[:, 0]


def per_sample(fn, z, y):
    """Each sample as its own grid point (K = n, one sample each): (K, 1) per-sample losses."""
    return fn(z[:, None, :], y[:1])[0][:, 0].double()


@pytest.mark.parametrize("fn", [metrics._cross_entropy_cpu, metrics._cross_entropy_any], ids=["cpu-class-major", "any-device"])
def test_per_sample_cross_entropy_matches_float64_from_1_down_to_1e6(fn):
    z, y = logits_with_losses(LOSSES)
    want = float64_reference(z, y)
    assert want.numpy() == pytest.approx(LOSSES, rel=1e-3)  # the construction hit the losses it aimed at
    rel = ((per_sample(fn, z, y) - want).abs() / want).numpy()
    assert rel.max() <= 1e-5, dict(zip(LOSSES, rel))  # the issue asks this down to 1e-4; it holds down to 1e-6
    assert (per_sample(fn, z, y) > 0).all()  # no loss rounds to 0


def test_the_old_formula_would_fail_this_test():
    """logsumexp as top + log(sum exp(z - top)), minus the target's logit: what this test guards against."""
    z, y = logits_with_losses(LOSSES)
    top = z.amax(-1, keepdim=True)
    old = ((z - top).exp().sum(-1).log() + top[:, 0] - z[:, 0]).double()
    want = float64_reference(z, y)
    assert ((old - want).abs() / want).max() > 1e-3


def test_ties_nan_and_a_wrong_maximum_keep_the_old_meaning():
    z = torch.tensor([[3.0, 3.0, 1.0], [5.0, 0.0, 0.0], [0.0, 7.0, 7.0], [float("nan"), 1.0, 0.0]])
    y = torch.tensor([0, 1, 2, 1])
    want = float64_reference(z[:3], y[:3])
    for fn in (metrics._cross_entropy_cpu, metrics._cross_entropy_any):
        got = torch.stack([fn(z[i : i + 1, None, :], y[i : i + 1])[0][0, 0] for i in range(4)])
        torch.testing.assert_close(got[:3].double(), want, rtol=1e-6, atol=0)
        assert torch.isnan(got[3])


def test_a_chunk_of_many_samples_sums_their_precise_losses():
    z, y = logits_with_losses(LOSSES * 30, seed=1)
    want = float64_reference(z, y).sum()
    for out in (z[None], z[None].transpose(1, 2).contiguous().transpose(1, 2)):
        total, correct = loss_terms(out, y, "cross_entropy")
        assert float(total[0]) == pytest.approx(float(want), rel=1e-6)
        assert float(correct[0]) == float((z.argmax(-1) == y).sum())

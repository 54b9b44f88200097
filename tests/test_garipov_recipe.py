"""Garipov et al.'s curve-training recipe, checked against a hand-written loop from their paper and README:
the loss at phi(t) plus 0.5 * wd * ||phi(t)||^2, SGD with momentum and no weight decay of its own, and the
learning rate set once per epoch e from e / epochs (flat to half, linear to 1% at 90%, then 1%)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from jobs.common.build import load_data, model_factory
from jobs.curves.train import lr_schedule, run_train_curve
from jobs.specs import CurveTrainSpec, DigitsData
from jobs.specs.parts import ModelSpec

from .conftest import CURVE_DATA, CURVE_MODEL, curve_spec_dict


def their_lr(base: float, epoch: int, epochs: int) -> float:
    """Their schedule, epoch 1..epochs, written from the paper's description."""
    a = epoch / epochs
    if a <= 0.5:
        return base
    if a <= 0.9:
        return base * (1.0 - (a - 0.5) / 0.4 * 0.99)
    return base * 0.01


def test_the_garipov_schedule_is_set_per_epoch_and_the_per_step_one_is_kept_under_its_own_name():
    per_epoch = lr_schedule("garipov", 0.1, epochs=4, steps_per_epoch=3)
    assert [per_epoch(s) for s in range(12)] == pytest.approx([their_lr(0.1, s // 3 + 1, 4) for s in range(12)], rel=1e-12)
    assert per_epoch(0) == 0.1 and per_epoch(11) == pytest.approx(0.001)
    per_step = lr_schedule("garipov_per_step", 0.1, epochs=4, steps_per_epoch=3)
    assert per_step(7) == pytest.approx(0.1 * (1 - 0.99 * (7 / 12 - 0.5) / 0.4))  # mid-epoch change
    assert per_step(7) != pytest.approx(per_epoch(7))


def reference_curve(w1: dict, w2: dict, names: list[str], model, x, y, *, epochs, batch, lr, momentum, wd, seed):
    """Their loop by hand: theta starts at (w1 + w2)/2; one t ~ U[0, 1] per batch (drawn from the seeded generator
    after the epoch's shuffle, as our loop documents); loss + 0.5 wd ||phi(t)||^2; SGD momentum, no weight decay."""
    theta = {k: ((w1[k].double() + w2[k].double()) / 2).float().requires_grad_() for k in names}
    buf: dict = {}
    g = torch.Generator().manual_seed(seed)
    thetas = []
    for epoch in range(1, epochs + 1):
        rate = their_lr(lr, epoch, epochs)
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            t = float(torch.rand((), generator=g))
            w = {k: (1 - t) ** 2 * w1[k] + 2 * t * (1 - t) * theta[k] + t**2 * w2[k] for k in names}
            loss = F.cross_entropy(functional_call(model, w, (x[idx],)), y[idx])
            loss = loss + 0.5 * wd * sum((v**2).sum() for v in w.values())
            grads = torch.autograd.grad(loss, [theta[k] for k in names])
            with torch.no_grad():
                for k, gr in zip(names, grads):
                    buf[k] = gr.clone() if k not in buf else momentum * buf[k] + gr
                    theta[k] -= rate * buf[k]
        thetas.append({k: v.detach().clone() for k, v in theta.items()})
    return thetas


def test_curve_steps_with_their_regularizer_and_schedule_match_their_loop(digits_minima, tmp_path):
    epochs, batch, lr, wd = 2, 256, 0.05, 0.01  # 600 samples: 3 steps an epoch, the second epoch at 1% of lr
    d = curve_spec_dict(digits_minima, epochs=epochs, batch_size=batch, lr=lr, weight_decay=wd, lr_schedule="garipov")
    out = run_train_curve(CurveTrainSpec.model_validate(d), out=str(tmp_path / "garipov"))
    x, y = load_data(DigitsData.model_validate(CURVE_DATA))
    factory = model_factory(ModelSpec.model_validate(CURVE_MODEL), x, y)
    model = factory()
    names = [k for k, _ in model.named_parameters()]
    w1, w2 = (torch.load(p, weights_only=True) for p in digits_minima)
    want = reference_curve(w1, w2, names, model, x, y, epochs=epochs, batch=batch, lr=lr, momentum=0.9, wd=wd, seed=0)
    for epoch in (1, 2):
        theta = torch.load(out / f"epoch_{epoch:03d}.pt", weights_only=True)["theta"]
        for k in names:
            torch.testing.assert_close(theta[k], want[epoch - 1][k], rtol=0, atol=1e-6)

    # the optimizer's weight decay instead (the other option) is a different curve: the test can tell them apart
    d["regularizer"] = "optimizer"
    other = run_train_curve(CurveTrainSpec.model_validate(d), out=str(tmp_path / "optimizer"))
    theta = torch.load(other / "epoch_001.pt", weights_only=True)["theta"]
    assert max(float((theta[k] - want[0][k]).abs().max()) for k in names) > 1e-4

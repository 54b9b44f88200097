"""batchnorm: recompute re-estimates BatchNorm statistics at every grid point, as update_bn does."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.slices import line_between, random_slice

from .independent import reference_loss, state_at


def _bn_problem(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0].mean(dim=(1, 2)) > 0).long()
    factory = ModelFactory("resnet20", (3, 8, 8), 3, {"width": 4}, seed=seed)
    return factory, x, y


def update_bn(model: nn.Module, inputs: torch.Tensor, batch: int) -> None:
    """The mode-connectivity code's update_bn, written again: reset, then a momentum per batch of b / (seen + b)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
    model.train()
    seen = 0
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            xb = inputs[i : i + batch]
            for m in bns:
                m.momentum = len(xb) / (seen + len(xb))
            model(xb)
            seen += len(xb)
    model.eval()


def test_recompute_equals_an_independent_update_bn_loop_at_random_points():
    factory, x, y = _bn_problem()
    model = factory()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=5, normalization="filter")
    options = EvalOptions(batchnorm="recompute", batchnorm_batch=64, data_chunk=50)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=options), device="cpu")
    assert ev.recompute_bn and ev.plan.points_per_pass == 1 and not ev.plan.shortcut
    rng = np.random.default_rng(1)
    coords = rng.uniform(-1, 1, size=(4, 2))
    got = ev.evaluate(coords)
    plain = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(data_chunk=50)), device="cpu").evaluate(coords)
    origin, dirs = layout.unflatten(sl.origin), [layout.unflatten(d) for d in sl.directions]
    for i, c in enumerate(coords):
        ref = factory()
        ref.load_state_dict({**ref.state_dict(), **state_at(ref, origin, dirs, c)})
        update_bn(ref, x, 64)
        want_loss, want_acc = reference_loss(ref, ref.state_dict(), x, y)
        assert got["loss"][i] == pytest.approx(want_loss, rel=1e-5), i
        assert got["accuracy"][i] == pytest.approx(want_acc, abs=1e-6), i
        assert abs(plain["loss"][i] - want_loss) > 1e-4  # the running statistics it replaced did matter


def test_recompute_keeps_line_between_finite_past_the_endpoints():
    # Interpolating running variances past the endpoints makes them negative: NaN in eval mode.
    factory, x, y = _bn_problem()
    a, b = factory(), ModelFactory("resnet20", (3, 8, 8), 3, {"width": 4}, seed=1)()
    for m, scale in [(a, 0.2), (b, 5.0)]:  # running variances far apart
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_var.fill_(scale)
    layout = StateLayout.of(a)
    sl = line_between(layout, layout.flatten(a.state_dict()), layout.flatten(b.state_dict()))
    coords = np.array([[-0.5], [0.5], [1.5]])
    eval_mode = Evaluator(ScanProblem(factory, sl, x, y), device="cpu").evaluate(coords)["loss"]
    recompute = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(batchnorm="recompute")), device="cpu").evaluate(coords)["loss"]
    assert np.isnan(eval_mode[0]) and np.isfinite(recompute).all(), (eval_mode, recompute)  # 0.2 - 0.5 * 4.8 < 0


def test_recompute_on_a_curve_equals_an_independent_update_bn_loop():
    """A point of a curve has no running statistics of its own: re-estimated at phi(t), as update_bn does."""
    from landscape.curves import curve_slice

    factory, x, y = _bn_problem()
    models = [ModelFactory("resnet20", (3, 8, 8), 3, {"width": 4}, seed=s)() for s in (0, 1, 2)]
    for m, scale in zip(models, (0.5, 1.0, 3.0)):  # endpoints and bend with very different statistics
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_var.fill_(scale)
    layout = StateLayout.of(models[0])
    states = [m.state_dict() for m in models]
    sl = curve_slice(layout, "bezier", *[layout.flatten(s) for s in states])
    sl.companions = {}
    options = EvalOptions(batchnorm="recompute", batchnorm_batch=64, data_chunk=50)
    t = np.random.default_rng(4).uniform(0, 1, size=3)
    got = Evaluator(ScanProblem(factory, sl, x, y, options=options), device="cpu").evaluate(t[:, None])
    for i, ti in enumerate(t):
        c = ((1 - ti) ** 2, 2 * ti * (1 - ti), ti**2)
        ref = factory()
        ref.load_state_dict({**ref.state_dict(), **state_at(ref, {k: 0 * v if v.is_floating_point() else v for k, v in states[0].items()},
                                                            states, c)})
        update_bn(ref, x, 64)
        want_loss, want_acc = reference_loss(ref, ref.state_dict(), x, y)
        assert got["loss"][i] == pytest.approx(want_loss, rel=1e-5), ti
        assert got["accuracy"][i] == pytest.approx(want_acc, abs=1e-6), ti

"""Mode-connecting curves: the geometry, the planes through them, the training objective, ensembles along them.

Every number is checked against an independent computation written here: the
curve's weights entry by entry in float64 from its formula, plain PyTorch
forward passes with load_state_dict, softmax averaged by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jobs.common.build import load_data, model_factory
from jobs.curves.slices import load_curve
from jobs.specs import DigitsData
from jobs.specs.parts import ModelSpec
from landscape.coefmaps import MAPS, BezierMap, ChordMap, PolychainMap, from_json
from landscape.curves import CurveObjective, curve_plane, curve_slice, curve_xy, phi
from landscape.evaluator import Evaluator
from landscape.params import StateLayout
from landscape.problem import ScanProblem
from landscape.training import train

from .conftest import CURVE_DATA, CURVE_MODEL
from .independent import reference_loss
from .test_slices import BNNet, _three_models


def formula(kind: str, t: float, w1: dict, theta: dict, w2: dict) -> dict:
    """phi(t) entry by entry in float64, straight from the definition (independent of the flat layout and maps)."""
    out = {}
    for k, a in w1.items():
        if not a.is_floating_point():
            out[k] = a
            continue
        a, b, c = a.double(), theta[k].double(), w2[k].double()
        if kind == "bezier":
            v = (1 - t) ** 2 * a + 2 * t * (1 - t) * b + t**2 * c
        elif t < 0.5:
            v = a + 2 * t * (b - a)
        else:
            v = b + (2 * t - 1) * (c - b)
        out[k] = v.float()
    return out


@pytest.fixture(scope="module")
def bn_curve():
    w1, theta, w2 = _three_models()
    layout = StateLayout.of(BNNet())
    return layout, (w1, theta, w2), [layout.flatten(s) for s in (w1, theta, w2)]


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
def test_phi_reproduces_the_endpoints_exactly_and_follows_the_formula(bn_curve, kind):
    layout, states, (w1, theta, w2) = bn_curve
    assert torch.equal(phi(kind, 0.0, w1, theta, w2), w1)  # bit for bit, buffers too
    assert torch.equal(phi(kind, 1.0, w1, theta, w2), w2)
    for t in (0.5, 0.13, 0.77):
        want = layout.flatten(formula(kind, t, *states))
        torch.testing.assert_close(phi(kind, t, w1, theta, w2), want, rtol=1e-6, atol=1e-6)
    if kind == "bezier":
        torch.testing.assert_close(phi(kind, 0.5, w1, theta, w2), 0.25 * w1 + 0.5 * theta + 0.25 * w2, rtol=1e-6, atol=1e-7)
    else:  # through its vertex at t = 0.5, linear on each half
        assert torch.equal(phi(kind, 0.5, w1, theta, w2), theta)
        for lo, hi in ((0.0, 0.5), (0.5, 1.0)):
            a, b = phi(kind, lo, w1, theta, w2), phi(kind, hi, w1, theta, w2)
            for s in (0.25, 0.6):
                torch.testing.assert_close(phi(kind, lo + s * (hi - lo), w1, theta, w2), a + s * (b - a), rtol=1e-6, atol=1e-6)


def test_coefficient_maps_are_named_rebuilt_and_sum_to_one():
    t = np.array([[0.0], [0.2], [0.5], [0.9], [1.0]])
    for cls in (BezierMap, PolychainMap, ChordMap):
        m = cls()
        assert MAPS[m.kind] is cls and from_json(m.to_json(), 3) == m
        c = m(t)
        assert c.shape == (5, 3) and np.allclose(c.sum(1), 1.0)  # affine combinations of (w1, theta, w2)
        assert np.array_equal(c[0], [1, 0, 0]) and np.array_equal(c[-1], [0, 0, 1])
    assert np.allclose(BezierMap()(t)[2], [0.25, 0.5, 0.25]) and np.array_equal(PolychainMap()(t)[2], [0, 1, 0])


def test_the_curve_slice_scans_the_curve_and_the_straight_line_at_the_same_t(bn_curve):
    layout, states, vecs = bn_curve
    sl = curve_slice(layout, "bezier", *vecs)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 6, generator=g), torch.randint(0, 3, (50,), generator=g)
    t = np.array([0.0, 0.3, 1.0])
    r = Evaluator(ScanProblem(BNNet, sl, x, y), device="cpu").evaluate(t[:, None])
    assert set(r) == {"loss", "loss_se", "accuracy", "accuracy_se", "line_loss", "line_loss_se", "line_accuracy", "line_accuracy_se"}
    model = BNNet()
    for i, ti in enumerate(t):
        line = {k: (v.double() + ti * (states[2][k].double() - v.double())).float() if v.is_floating_point() else v
                for k, v in states[0].items()}
        assert r["loss"][i] == pytest.approx(reference_loss(model, formula("bezier", ti, *states), x, y)[0], rel=1e-5)
        assert r["line_loss"][i] == pytest.approx(reference_loss(model, line, x, y)[0], rel=1e-5)
    assert r["loss"][0] == r["line_loss"][0] and r["loss"][2] == r["line_loss"][2]  # both are w1, w2 there


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
def test_curve_plane_holds_the_curve_and_its_loss_equals_a_direct_evaluation(bn_curve, kind):
    layout, states, (w1, theta, w2) = bn_curve
    sl = curve_plane(layout, kind, w1, theta, w2)
    assert sl.kind == "curve_plane" and [m["label"] for m in sl.checkpoints] == ["w1", "w2", "θ (bend)"]
    mask = layout.param_mask()
    # w1, w2 and theta land on their recorded coordinates (origin w1, e1 along w2 - w1).
    for vec, m in zip((w1, w2, theta), sl.checkpoints):
        torch.testing.assert_close(sl.point((m["x"], m["y"])), vec, rtol=1e-5, atol=1e-6)
    assert sl.checkpoints[1]["y"] == 0 and sl.checkpoints[1]["x"] == pytest.approx((w2 - w1)[mask].double().norm().item(), rel=1e-6)
    e = sl.directions.double()  # (2, P), buffers ride along
    pts = sl.info["curve"]["points"]
    t = np.array([0.1, 0.35, 0.5, 0.8])
    xy = curve_xy(kind, pts, t=t)  # the drawn curve's coordinates
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
    got = Evaluator(ScanProblem(BNNet, sl, x, y), device="cpu").evaluate(xy)["loss"]
    for i, ti in enumerate(t):
        p = layout.flatten(formula(kind, ti, *states)).double() - w1.double()  # the curve point, from w1
        coords = torch.linalg.lstsq(e[:, mask].T, p[mask][:, None]).solution[:, 0]
        off_plane = (p[mask] - coords @ e[:, mask]).norm() / p[mask].norm()
        assert off_plane <= 1e-6, (ti, off_plane.item())
        np.testing.assert_allclose(coords.numpy(), xy[i], rtol=1e-6, atol=1e-6 * float(np.abs(xy).max()))
        assert got[i] == pytest.approx(reference_loss(BNNet(), formula(kind, ti, *states), x, y)[0], rel=1e-5), ti


def test_a_straight_bend_spans_no_plane(bn_curve):
    from landscape.errors import SpecError

    layout, _, (w1, _, w2) = bn_curve
    with pytest.raises(SpecError, match="spans no plane"):
        curve_plane(layout, "bezier", w1, (w1 + w2) / 2, w2)


def test_the_objective_trains_theta_only_with_the_loss_at_phi_t():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    w1 = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    w2 = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    keep1, keep2 = ({k: v.clone() for k, v in w.items()} for w in (w1, w2))
    obj = CurveObjective("bezier", w1, w2)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    g = torch.Generator().manual_seed(3)
    loss, out = obj(model, x, y, g)
    t = obj.last_t
    assert t == float(torch.rand((), generator=torch.Generator().manual_seed(3)))  # from the loop's generator
    ref = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    ref.load_state_dict(formula("bezier", t, w1, model.state_dict(), w2))
    assert loss.item() == pytest.approx(F.cross_entropy(ref(x), y).item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert not any(v.requires_grad for v in [*w1.values(), *w2.values()])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, x, y, epochs=2, batch_size=8, lr=0.1, objective=obj)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # theta moved
    assert all(torch.equal(keep1[k], w1[k]) and torch.equal(keep2[k], w2[k]) for k in w1)  # endpoints fixed


def test_curve_training_between_two_minima_lowers_the_highest_loss_below_the_straight_lines(digits_curve):
    """Garipov et al.'s claim on a small scale: the trained curve's barrier is well below the line's."""
    x, y = load_data(DigitsData.model_validate(CURVE_DATA))
    factory = model_factory(ModelSpec.model_validate(CURVE_MODEL), x, y)
    c = load_curve(digits_curve / "epoch_005.pt", factory)
    states = [c.layout.unflatten(v) for v in (c.w1, c.theta, c.w2)]
    model = factory()
    curve, line = [], []
    for t in np.linspace(0, 1, 21):
        curve.append(reference_loss(model, formula("bezier", t, *states), x, y)[0])
        line.append(reference_loss(model, formula("bezier", t, states[0], {k: (states[0][k] + states[2][k]) / 2
                                                                        for k in states[0]}, states[2]), x, y)[0])
    top_curve, top_line = max(curve), max(line)
    assert top_curve < 0.75 * top_line, f"highest training loss along the curve {top_curve:.4f}, along the line {top_line:.4f}"
    assert max(curve[0], curve[-1]) < 0.2  # the endpoints are minima


def test_ensemble_at_t0_is_w1_and_elsewhere_the_mean_of_probabilities(digits_curve):
    x, y = load_data(DigitsData.model_validate(CURVE_DATA))
    factory = model_factory(ModelSpec.model_validate(CURVE_MODEL), x, y)
    c = load_curve(digits_curve / "epoch_005.pt", factory)
    sl = curve_slice(c.layout, c.kind, c.w1, c.theta, c.w2)
    ev = Evaluator(ScanProblem(factory, sl, x, y, metrics=("loss", "accuracy", "ensemble")), device="cpu")
    t = np.array([0.0, 0.27, 0.61])
    r = ev.evaluate(t[:, None])
    assert r["ensemble_accuracy"][0] == r["accuracy"][0]  # w1 with itself
    assert r["ensemble_nll"][0] == pytest.approx(r["loss"][0], rel=1e-6)
    states = [c.layout.unflatten(v) for v in (c.w1, c.theta, c.w2)]
    model = factory().eval()
    with torch.no_grad():
        model.load_state_dict(states[0])
        p1 = model(x).softmax(-1)
        mid = {k: (states[0][k] + states[2][k]) / 2 for k in states[0]}
        for i, ti in enumerate(t):
            for prefix, bend in (("", states[1]), ("line_", mid)):  # the curve, and the line (a Bezier with a straight bend)
                model.load_state_dict(formula("bezier", ti, states[0], bend, states[2]))
                p = (p1 + model(x).softmax(-1)) / 2
                acc = (p.argmax(1) == y).double().mean().item()
                nll = -p.gather(1, y[:, None]).log().mean().item()
                assert r[f"{prefix}ensemble_accuracy"][i] == pytest.approx(acc, abs=1e-6), (prefix, ti)
                assert r[f"{prefix}ensemble_nll"][i] == pytest.approx(nll, rel=1e-5), (prefix, ti)


def _curve_evaluations(digits_curve, device: str, **options):
    from landscape.plan import EvalOptions

    x, y = load_data(DigitsData.model_validate(CURVE_DATA))
    factory = model_factory(ModelSpec.model_validate(CURVE_MODEL), x, y)
    c = load_curve(digits_curve / "epoch_005.pt", factory)
    sl = curve_slice(c.layout, c.kind, c.w1, c.theta, c.w2)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(**options), metrics=("loss", "accuracy", "ensemble")),
                   device=device)
    return ev, ev.evaluate(np.linspace(0, 1, 7)[:, None])


def test_several_points_per_pass_give_the_same_curve_line_and_ensembles(digits_curve):
    """The vmap path (K points per pass, the GPU default for MLPs) with the companion line and the ensemble metric."""
    ev1, one = _curve_evaluations(digits_curve, "cpu", points_per_pass=1)
    ev4, four = _curve_evaluations(digits_curve, "cpu", points_per_pass=4)
    assert ev4.plan.points_per_pass == 4 and ev1.plan.points_per_pass == 1
    for k in one:
        np.testing.assert_allclose(four[k], one[k], rtol=2e-5, atol=1e-6, err_msg=k)


@pytest.mark.gpu
def test_curve_scan_on_cuda_equals_the_cpu(digits_curve):
    """CUDA graphs, K points per pass, the shortcut and the ensemble's reference inside the graph (not run without CUDA)."""
    _, cpu = _curve_evaluations(digits_curve, "cpu")
    ev, gpu = _curve_evaluations(digits_curve, "cuda")
    assert ev.plan.cuda_graphs
    for k in cpu:
        np.testing.assert_allclose(gpu[k], cpu[k], rtol=1e-4, atol=1e-5, err_msg=k)

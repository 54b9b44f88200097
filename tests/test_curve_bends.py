"""Curves of several bends and curves with trained endpoints (Garipov et al.'s num_bends, fix_start, fix_end), against
hand-written closed forms from their paper and a plain-PyTorch loop of their recipe: the loss at phi(t) plus
0.5 * wd * ||phi(t)||^2, SGD with momentum, the bends started on the straight line at i / (k + 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from jobs.common.build import load_data, model_factory
from jobs.curves.slices import load_curve
from jobs.curves.train import run_train_curve
from jobs.specs import CurveTrainSpec, DigitsData
from jobs.specs.parts import ModelSpec
from landscape.checkpoints import file_sha256
from landscape.coefmaps import BezierMap
from landscape.curve_stats import segment_lengths
from landscape.curves import curve_slice, phi
from landscape.evaluator import Evaluator
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem

from .conftest import CURVE_DATA, CURVE_MODEL, curve_spec_dict
from .independent import reference_loss
from .test_garipov_recipe import their_lr


# -- the paper's closed forms, written out per number of bends ------------------------------------------------------


def bezier_by_hand(k: int, t: float) -> list[float]:
    """Bernstein coefficients of the control points (w1, theta_1 .. theta_k, w2), degree k + 1, written out."""
    s = 1 - t
    return {1: [s**2, 2 * t * s, t**2],
            2: [s**3, 3 * t * s**2, 3 * t**2 * s, t**3],
            3: [s**4, 4 * t * s**3, 6 * t**2 * s**2, 4 * t**3 * s, t**4]}[k]


def polychain_by_hand(k: int, t: float) -> list[float]:
    """The chain w1 -> theta_1 -> .. -> w2 with its vertices at t = i / (k + 1): linear on each piece."""
    if k == 2:
        if t <= 1 / 3:
            return [1 - 3 * t, 3 * t, 0, 0]
        if t <= 2 / 3:
            return [0, 2 - 3 * t, 3 * t - 1, 0]
        return [0, 0, 3 - 3 * t, 3 * t - 2]
    if k == 3:
        if t <= 1 / 4:
            return [1 - 4 * t, 4 * t, 0, 0, 0]
        if t <= 1 / 2:
            return [0, 2 - 4 * t, 4 * t - 1, 0, 0]
        if t <= 3 / 4:
            return [0, 0, 3 - 4 * t, 4 * t - 2, 0]
        return [0, 0, 0, 4 - 4 * t, 4 * t - 3]
    raise ValueError(k)


BY_HAND = {"bezier": bezier_by_hand, "polychain": polychain_by_hand}
TS = [0.0, 0.1, 0.25, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 0.9, 1.0]


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
@pytest.mark.parametrize("k", [2, 3])
def test_phi_of_several_bends_is_the_papers_closed_form(kind, k):
    g = torch.Generator().manual_seed(k)
    pts = torch.randn(k + 2, 50, generator=g)  # w1, theta_1 .. theta_k, w2
    for t in TS:
        want = sum(c * pts[j].double() for j, c in enumerate(BY_HAND[kind](k, t)))
        got = phi(kind, t, pts[0], pts[1:-1], pts[-1])
        torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-6)
    assert torch.equal(phi(kind, 0.0, pts[0], pts[1:-1], pts[-1]), pts[0])  # the endpoints bit for bit
    assert torch.equal(phi(kind, 1.0, pts[0], pts[1:-1], pts[-1]), pts[-1])
    if kind == "polychain":  # the chain's vertices bit for bit
        for i in range(1, k + 1):
            assert torch.equal(phi(kind, i / (k + 1), pts[0], pts[1:-1], pts[-1]), pts[i])


def test_one_bend_keeps_the_coefficients_of_before_bit_for_bit():
    t = np.random.default_rng(0).random(1000)
    before = np.stack([(1 - t) ** 2, 2 * t * (1 - t), t**2], axis=1)
    assert np.array_equal(BezierMap()(t[:, None]), before)
    assert BezierMap().to_json() == {"kind": "bezier"} and BezierMap(bends=3).to_json() == {"kind": "bezier", "bends": 3}


# -- training: their recipe by hand -----------------------------------------------------------------------------------


def their_loop(w1, w2, model, x, y, coefs, k, *, fix_start=True, fix_end=True, epochs, batch, lr, wd, schedule,
               momentum=0.9, seed=0):
    """Their curve training written from the paper: bend i starts at (1 - i/(k+1)) w1 + i/(k+1) w2; one t ~ U[0, 1]
    per batch (drawn from the seeded generator after the epoch's shuffle, as our loop documents); loss at phi(t) plus
    0.5 wd ||phi(t)||^2; plain SGD with momentum over every trained point. Returns the points after each epoch and
    the gradients of the first step."""
    names = [n for n, _ in model.named_parameters()]
    a = [i / (k + 1) for i in range(k + 2)]
    pts = [{n: ((1 - ai) * w1[n].double() + ai * w2[n].double()).float() for n in names} for ai in a]
    pts[0], pts[-1] = {n: w1[n].clone() for n in names}, {n: w2[n].clone() for n in names}
    train = [j for j in range(k + 2) if not ((j == 0 and fix_start) or (j == k + 1 and fix_end))]
    leaves = [pts[j][n].requires_grad_() for j in train for n in names]
    buf: dict = {}
    g = torch.Generator().manual_seed(seed)
    history, first = [], None
    for epoch in range(1, epochs + 1):
        rate = their_lr(lr, epoch, epochs) if schedule == "garipov" else lr
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            t = float(torch.rand((), generator=g))
            c = coefs(k, t)
            w = {n: sum(c[j] * pts[j][n] for j in range(k + 2)) for n in names}
            loss = F.cross_entropy(functional_call(model, w, (x[idx],)), y[idx]) + 0.5 * wd * sum((v**2).sum() for v in w.values())
            grads = torch.autograd.grad(loss, leaves)
            first = first or [gr.clone() for gr in grads]
            with torch.no_grad():
                for i, (p, gr) in enumerate(zip(leaves, grads)):
                    buf[i] = gr.clone() if i not in buf else momentum * buf[i] + gr
                    p -= rate * buf[i]
        history.append([{n: v.detach().clone() for n, v in p.items()} for p in pts])
    return history, first


@pytest.fixture(scope="module")
def digits(digits_minima):
    x, y = load_data(DigitsData.model_validate(CURVE_DATA))
    factory = model_factory(ModelSpec.model_validate(CURVE_MODEL), x, y)
    w1, w2 = (torch.load(p, weights_only=True) for p in digits_minima)
    return x, y, factory, w1, w2


TWO_BENDS = dict(epochs=2, batch_size=300, lr=0.05, weight_decay=0.01, lr_schedule="garipov",
                 curve={"kind": "bezier", "num_bends": 2})


@pytest.fixture(scope="module")
def two_bends(digits_minima, tmp_path_factory):
    return run_train_curve(CurveTrainSpec.model_validate(curve_spec_dict(digits_minima, **TWO_BENDS)),
                           out=str(tmp_path_factory.mktemp("bends") / "two"))


def test_two_bends_train_as_their_loop(two_bends, digits):
    x, y, factory, w1, w2 = digits
    want, _ = their_loop(w1, w2, factory(), x, y, bezier_by_hand, 2, epochs=2, batch=300, lr=0.05, wd=0.01, schedule="garipov")
    for epoch in (1, 2):
        record = torch.load(two_bends / f"epoch_{epoch:03d}.pt", weights_only=True)
        assert record["landscape_curve"] == 2 and record["trained_endpoints"] == [None, None] and len(record["theta"]) == 2
        for i, theta in enumerate(record["theta"], 1):
            for n in want[0][0]:
                torch.testing.assert_close(theta[n], want[epoch - 1][i][n], rtol=0, atol=1e-6)
    assert not list(two_bends.glob("w*_trained.pt"))  # nothing trained but the bends


def test_the_loss_along_two_bends_is_a_plain_loop_at_phi_t(two_bends, digits):
    x, y, factory, w1, w2 = digits
    c = load_curve(two_bends / "epoch_002.pt", factory)
    assert c.theta.shape[0] == 2
    sl = curve_slice(c.layout, c.kind, c.w1, c.theta, c.w2)
    r = Evaluator(ScanProblem(factory, sl, x, y, "cross_entropy", EvalOptions())).evaluate(np.array(TS)[:, None])
    thetas = torch.load(two_bends / "epoch_002.pt", weights_only=True)["theta"]
    pts = [w1, *thetas, w2]
    for i, t in enumerate(TS):
        cf = bezier_by_hand(2, t)
        state = {n: sum(cf[j] * pts[j][n].double() for j in range(4)).float() for n in w1}
        loss, acc = reference_loss(factory(), state, x, y)
        assert r["loss"][i] == pytest.approx(loss, rel=1e-5) and r["accuracy"][i] == pytest.approx(acc)
        line = {n: ((1 - t) * w1[n].double() + t * w2[n].double()).float() for n in w1}  # the companion straight line
        assert r["line_loss"][i] == pytest.approx(reference_loss(factory(), line, x, y)[0], rel=1e-5)
    # eval_curve's length: the polyline through the points at TS, by hand from the cubic's coefficients
    at = [torch.cat([sum(c * pts[j][n].double() for j, c in enumerate(bezier_by_hand(2, t))).reshape(-1) for n in w1])
          for t in TS]
    dl = segment_lengths(np.array(TS), sl.coef_map, sl.directions, c.layout.param_mask())
    assert dl.sum() == pytest.approx(sum(float((at[i] - at[i - 1]).norm()) for i in range(1, len(TS))), rel=1e-5)


def test_trained_endpoints_move_with_their_gradient_and_every_reader_uses_them(digits_minima, digits, tmp_path):
    x, y, factory, w1, w2 = digits
    before = [file_sha256(p) for p in digits_minima]
    d = curve_spec_dict(digits_minima, epochs=1, batch_size=600, lr=0.05, weight_decay=0.01, seed=7,  # t = 0.685: both ends move
                        curve={"kind": "bezier", "fix_start": False, "fix_end": False})
    out = run_train_curve(CurveTrainSpec.model_validate(d), out=str(tmp_path / "free"))
    want, grads = their_loop(w1, w2, factory(), x, y, bezier_by_hand, 1, fix_start=False, fix_end=False, epochs=1,
                             batch=600, lr=0.05, wd=0.01, schedule="constant", seed=7)
    record = torch.load(out / "epoch_001.pt", weights_only=True)
    names = list(want[0][0])
    got = [record["trained_endpoints"][0], record["theta"][0], record["trained_endpoints"][1]]
    for j in range(3):
        for n in names:
            torch.testing.assert_close(got[j][n], want[0][j][n], rtol=0, atol=1e-6)
    # one step from the checkpoints: (w - w') / lr is the hand gradient of each endpoint (leaves: w1, theta, w2)
    per = len(names)
    for j, (w, gr) in enumerate(((w1, grads[:per]), (w2, grads[2 * per:]))):
        end = record["trained_endpoints"][j]
        for n, g in zip(names, gr):
            torch.testing.assert_close((w[n] - end[n]) / 0.05, g, rtol=1e-4, atol=2e-6)  # fp32 spacing / lr
        assert max(float((end[n] - w[n]).abs().max()) for n in names) > 1e-4  # it moved
    # the inputs untouched; the last trained endpoints written beside; a scan of the curve starts and ends there
    assert [file_sha256(p) for p in digits_minima] == before
    for j, name in enumerate(("w1_trained.pt", "w2_trained.pt")):
        saved = torch.load(out / name, weights_only=True)
        assert all(torch.equal(saved[n], record["trained_endpoints"][j][n]) for n in names)
    assert set(json.loads((out / "curve.json").read_text())["files"]) >= {"w1_trained.pt", "w2_trained.pt"}
    c = load_curve(out / "epoch_001.pt", factory)
    assert [e.get("trained") for e in c.info["endpoints"]] == [True, True]
    sl = curve_slice(c.layout, c.kind, c.w1, c.theta, c.w2)
    assert torch.equal(sl.point([0.0]), c.layout.flatten(record["trained_endpoints"][0]))
    assert torch.equal(sl.point([1.0]), c.layout.flatten(record["trained_endpoints"][1]))


def test_an_interrupted_two_bend_run_with_a_trained_end_resumes_bit_for_bit(digits_minima, tmp_path, capsys):
    d = curve_spec_dict(digits_minima, epochs=3, batch_size=200, lr=0.05, weight_decay=1e-3, lr_schedule="garipov",
                        curve={"kind": "polychain", "num_bends": 2, "fix_end": False, "init": "random"})
    spec = CurveTrainSpec.model_validate(d)
    whole = run_train_curve(spec, out=str(tmp_path / "whole"))
    cut = run_train_curve(spec, out=str(tmp_path / "cut"))
    (cut / "epoch_003.pt").unlink()  # killed during epoch 3
    (cut / "w2_trained.pt").unlink()
    record = json.loads((cut / "curve.json").read_text())
    (cut / "curve.json").write_text(json.dumps({k: record[k] for k in ("identity", "files")} | {"finished": False}))
    capsys.readouterr()
    run_train_curve(spec, out=str(cut))
    assert "resuming after epoch 2" in capsys.readouterr().err
    a, b = (torch.load(p / "epoch_003.pt", weights_only=True) for p in (whole, cut))
    assert a["trained_endpoints"][0] is None and b["trained_endpoints"][0] is None
    for x, y in [*zip(a["theta"], b["theta"]), (a["trained_endpoints"][1], b["trained_endpoints"][1])]:
        assert all(torch.equal(x[n], y[n]) for n in x)
    assert (whole / "w2_trained.pt").read_bytes() == (cut / "w2_trained.pt").read_bytes()
    # the two random bends start apart (seeds model.seed and model.seed + 1), so they end apart
    assert max(float((a["theta"][0][n] - a["theta"][1][n]).abs().max()) for n in a["theta"][0]) > 0.1


def test_defaults_keep_the_identity_of_before():
    from jobs.curves.train import identity
    from jobs.specs.subset_rule import earlier_rule

    ends = [{"path": "a", "sha256": "x"}, {"path": "b", "sha256": "y"}]

    def of(curve):
        with earlier_rule():  # the pin predates the subset rule too (this spec's data sets `subset`)
            return identity(CurveTrainSpec.model_validate(curve_spec_dict(("a", "b"), curve=curve)), ends)

    before = "991fb23d7c3091b9"  # this spec's identity before num_bends, fix_start and fix_end existed
    assert of({"kind": "bezier"}) == before
    assert of({"kind": "bezier", "num_bends": 1, "fix_start": True, "fix_end": True}) == before
    assert len({before, of({"kind": "bezier", "num_bends": 2}), of({"kind": "bezier", "fix_start": False}),
                of({"kind": "bezier", "fix_end": False})}) == 4

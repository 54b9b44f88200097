"""Garipov et al.'s eval_curve summary of a curve scan, against a hand computation from their definitions:
dl_i = |w(t_i) - w(t_{i-1})| over the layers' weights and biases, int = sum (v_{i-1} + v_i)/2 dl_i / sum dl_i."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from jobs.scan.run import curve_summary_lines, record_curve_summary
from landscape.curve_stats import curve_summary, segment_lengths
from landscape.curves import curve_slice
from landscape.params import StateLayout

from .test_slices import BNNet, _three_models


def by_hand(kind, t, states, names):
    """Weights at each t from the formula, per named parameter, float64; their consecutive distances."""
    def at(ti):
        c = ((1 - ti) ** 2, 2 * ti * (1 - ti), ti**2) if kind == "bezier" else None
        return torch.cat([sum(ci * s[k].double() for ci, s in zip(c, states)).reshape(-1) for k in names])
    w = [at(ti) for ti in t]
    return np.array([0.0] + [float((w[i] - w[i - 1]).norm()) for i in range(1, len(w))])


def test_lengths_and_integrals_match_their_definitions():
    states = _three_models()
    model = BNNet()
    names = [k for k, _ in model.named_parameters()]  # BatchNorm's running statistics are not curve weights
    layout = StateLayout.of(model)
    sl = curve_slice(layout, "bezier", *[layout.flatten(s) for s in states])
    t = np.linspace(0, 1, 13)
    dl = segment_lengths(t, sl.coef_map, sl.directions, layout.param_mask())
    np.testing.assert_allclose(dl, by_hand("bezier", t, states, names), rtol=1e-9, atol=1e-12)
    loss = np.cos(3 * t) + 2
    acc = 0.5 + 0.4 * t
    s = curve_summary(t, {"loss": loss, "accuracy": acc}, dl)
    want_int = np.sum(0.5 * (loss[:-1] + loss[1:]) * dl[1:]) / dl[1:].sum()
    assert s["length"] == pytest.approx(dl.sum()) and s["points"] == 13
    assert s["quantities"]["loss"] == pytest.approx({"min": loss.min(), "max": loss.max(), "mean": loss.mean(), "integral": want_int})
    err = 100 * (1 - acc)
    assert s["quantities"]["error"]["max"] == pytest.approx(err.max())
    assert s["quantities"]["error"]["integral"] == pytest.approx(np.sum(0.5 * (err[:-1] + err[1:]) * dl[1:]) / dl[1:].sum())


def test_a_straight_curve_has_the_endpoints_distance_as_its_length():
    w1, _, w2 = _three_models()
    layout = StateLayout.of(BNNet())
    a, b = layout.flatten(w1), layout.flatten(w2)
    sl = curve_slice(layout, "bezier", a, (a + b) / 2, b)
    dl = segment_lengths(np.linspace(0, 1, 7), sl.coef_map, sl.directions, layout.param_mask())
    mask = layout.param_mask()
    assert dl.sum() == pytest.approx(float((b - a)[mask].double().norm()), rel=1e-6)


def test_a_curve_scan_records_and_says_its_summary(capsys):
    states = _three_models()
    layout = StateLayout.of(BNNet())
    sl = curve_slice(layout, "polychain", *[layout.flatten(s) for s in states])
    t = np.linspace(0, 1, 5)
    group = {"x": t, "loss": np.array([0.1, 0.5, 0.3, 0.6, 0.2]), "accuracy": np.array([1.0, 0.8, 0.9, 0.7, 1.0]),
             "line_loss": np.ones(5), "line_accuracy": np.ones(5)}
    meta = {"metrics": ["loss", "accuracy", "line_loss", "line_accuracy"]}
    store = SimpleNamespace(group=group, meta=meta, update_meta=lambda **kw: meta.update(kw))
    record_curve_summary(store, SimpleNamespace(slice=sl))
    s = meta["curve_summary"]
    assert set(s["quantities"]) == {"loss", "error"} and s["quantities"]["error"]["max"] == pytest.approx(30.0)
    err = capsys.readouterr().err
    assert err.splitlines()[:3] == curve_summary_lines(s) and "eval_curve" in err

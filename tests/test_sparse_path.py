"""A path slice's grid point adds only the two checkpoints its coefficients name, with the same numbers."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.coefmaps import Polyline
from landscape.evaluator import Evaluator
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.slices import points_on_slice, support_of
from landscape.trajectory import path_slice

from .independent import reference_loss


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 7), nn.Tanh(), nn.Linear(7, 3))


N = 12  # checkpoints on the path


def _path():
    layout = StateLayout.of(_net())
    g = torch.Generator().manual_seed(1)
    vecs = torch.randn(N, layout.size, generator=g)
    return layout, vecs, path_slice(layout, lambda i, out: out.copy_(vecs[i]), N, [f"c{i}" for i in range(N)])


def test_sparse_sum_equals_the_dense_one():
    _, vecs, sl = _path()
    t = np.array([[0.0], [3.0], [4.25], [10.9], [-0.5], [11.0]])  # on checkpoints, between, beyond the ends
    coefs = sl.coef_map(t)  # (6, N)
    for row in coefs:
        support = support_of(row[None])
        assert len(support) <= 2
        c = torch.from_numpy(row[None]).float()
        dense = points_on_slice(sl.origin, sl.directions, c)
        assert torch.equal(points_on_slice(sl.origin, sl.directions, c, support=support), dense)
        out = torch.empty_like(dense)  # in place, as the evaluator loads a point
        assert torch.equal(points_on_slice(sl.origin, sl.directions, c, out=out, support=support), dense)
    assert support_of(np.zeros((2, 3))) == []
    out = torch.empty(1, vecs.shape[1])
    assert torch.equal(points_on_slice(sl.origin, sl.directions, torch.zeros(1, N), out=out, support=[]), sl.origin[None])


def test_the_evaluator_adds_two_checkpoints_per_point(monkeypatch):
    layout, vecs, sl = _path()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(50, 6, generator=g), torch.randint(0, 3, (50,), generator=g)
    ev = Evaluator(ScanProblem(_net, sl, x, y, options=EvalOptions(shortcut=False, compile=False)), device="cpu")
    calls = []
    real = torch.addcmul
    monkeypatch.setattr(torch, "addcmul", lambda *a, **k: calls.append(1) or real(*a, **k))
    t = np.array([[0.5], [6.0], [7.75]])
    got = ev.evaluate(t)["loss"]
    assert len(calls) <= 2 * len(t)  # not N per point
    for i, ti in enumerate(t[:, 0]):
        k, s = min(int(ti), N - 2), ti - min(int(ti), N - 2)
        w = (1 - s) * vecs[k].double() + s * vecs[k + 1].double()  # float64, independent of the evaluator
        model = _net()
        state = {n: v.float() for n, v in layout.unflatten(w).items()}
        assert got[i] == pytest.approx(reference_loss(model, state, x, y)[0], rel=1e-5)
    assert Polyline(N)(np.array([[6.0]]))[0, 6] == 1.0

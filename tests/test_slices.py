import pytest
import torch
from torch import nn

from landscape.errors import SpecError
from landscape.evaluator import Evaluator
from landscape.params import StateLayout
from landscape.problem import ScanProblem
from landscape.slices import line_between, plane_through

from .independent import reference_loss


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def _three_models():
    """Three different BatchNorm models (different weights *and* running stats)."""
    states = []
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        torch.manual_seed(seed)
        m = BNNet()
        m.train()
        m(x * (seed + 1))  # move the running statistics
        states.append({k: v.clone() for k, v in m.state_dict().items()})
    return states


def test_plane_through_three_checkpoints_is_orthonormal_and_hits_them():
    states = _three_models()
    layout = StateLayout.of(BNNet())
    vecs = [layout.flatten(s) for s in states]
    sl = plane_through(layout, *vecs)
    mask = layout.param_mask()
    e1, e2 = sl.directions.double()[:, mask]
    assert e1.norm().item() == pytest.approx(1, abs=1e-6)
    assert e2.norm().item() == pytest.approx(1, abs=1e-6)
    assert torch.dot(e1, e2).item() == pytest.approx(0, abs=1e-6)
    (l1, p1), (l2, p2), (l3, p3) = [(m["label"], (m["x"], m["y"])) for m in sl.checkpoints]
    assert p1 == (0, 0) and p2[1] == 0
    assert p2[0] == pytest.approx((vecs[1] - vecs[0])[mask].double().norm().item(), rel=1e-6)
    for vec, mark in zip(vecs, sl.checkpoints):
        rebuilt = sl.point((mark["x"], mark["y"]))
        torch.testing.assert_close(rebuilt, vec, rtol=1e-5, atol=1e-5)  # buffers too


def test_loss_at_the_checkpoints_equals_a_direct_evaluation():
    states = _three_models()
    model = BNNet()
    layout = StateLayout.of(model)
    sl = plane_through(layout, *[layout.flatten(s) for s in states])
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 6, generator=g), torch.randint(0, 3, (50,), generator=g)
    ev = Evaluator(ScanProblem(BNNet, sl, x, y), device="cpu")
    coords = [[m["x"], m["y"]] for m in sl.checkpoints]
    got = ev.evaluate(coords)
    for k, state in enumerate(states):
        want, acc = reference_loss(BNNet(), state, x, y)
        assert got["loss"][k] == pytest.approx(want, rel=1e-5)
        assert got["accuracy"][k] == pytest.approx(acc)


def test_line_between_ends_and_midpoint():
    a, b, _ = _three_models()
    layout = StateLayout.of(BNNet())
    va, vb = layout.flatten(a), layout.flatten(b)
    sl = line_between(layout, va, vb)
    torch.testing.assert_close(sl.point([0.0]), va)
    torch.testing.assert_close(sl.point([1.0]), vb)
    torch.testing.assert_close(sl.point([0.5]), (va + vb) / 2)
    torch.testing.assert_close(sl.point([-0.5]), va - 0.5 * (vb - va))


def test_degenerate_planes_are_refused():
    a, b, _ = _three_models()
    layout = StateLayout.of(BNNet())
    va, vb = layout.flatten(a), layout.flatten(b)
    with pytest.raises(SpecError, match="identical"):
        plane_through(layout, va, va, vb)
    with pytest.raises(SpecError, match="one line"):
        plane_through(layout, va, vb, va + 2 * (vb - va))

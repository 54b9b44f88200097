"""Evaluator.set_slice: another basis on the same evaluator gives what a new evaluator on that basis gives
(first-layer shortcut, vmap, BatchNorm recompute, compiled conv nets), and animation frames reuse one evaluator."""

import numpy as np
import pytest
import torch

from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory
from landscape.frames import FrameEvaluator, FrameSeries
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.slices import random_slice

from .independent import reference_loss, state_at


def _problem(kind, options, seed):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(90, 1, 8, 8, generator=g), torch.randint(0, 4, (90,), generator=g)
    opts = {"mlp": {"widths": [12]}, "cnn": {"channels": [3, 4]}, "resnet20": {"width": 2}}[kind]
    factory = ModelFactory(kind, (1, 8, 8), 4, opts, seed=1)
    layout = StateLayout.of(factory())
    sl = random_slice(layout, layout.flatten(factory().state_dict()), 2, seed=seed)
    return ScanProblem(factory, sl, x, y, options=options)


CASES = {
    "mlp-shortcut": ("mlp", EvalOptions(shortcut=True, data_chunk=40)),
    "mlp-vmap": ("mlp", EvalOptions(shortcut=False, points_per_pass=3, data_chunk=40)),
    "cnn-shortcut": ("cnn", EvalOptions(shortcut=True, data_chunk=50, compile=False)),
    "cnn-compiled": ("cnn", EvalOptions(compile=True)),
    "resnet-bn-recompute": ("resnet20", EvalOptions(batchnorm="recompute", batchnorm_batch=30)),
}
COORDS = np.array([[0.0, 0.0], [0.4, -0.2], [-0.7, 0.9], [1.1, 0.3]])


@pytest.mark.parametrize("case", CASES)
def test_set_slice_gives_what_a_new_evaluator_gives(case):
    kind, options = CASES[case]
    a, b = _problem(kind, options, seed=3), _problem(kind, options, seed=11)
    kept = [t.clone() for t in (a.slice.origin, a.slice.directions, b.slice.origin, b.slice.directions)]
    ev = Evaluator(a, device="cpu")
    first = ev.evaluate(COORDS)
    ev.set_slice(b.slice)
    got = ev.evaluate(COORDS)
    want = Evaluator(b, device="cpu").evaluate(COORDS)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
    ev.set_slice(a.slice)  # and back: the first slice's numbers again, neither slice written into
    np.testing.assert_allclose(ev.evaluate(COORDS)["loss"], first["loss"], rtol=1e-5, atol=1e-6)
    for before, now in zip(kept, (a.slice.origin, a.slice.directions, b.slice.origin, b.slice.directions)):
        assert torch.equal(before, now)
    assert not np.allclose(got["loss"][1:], first["loss"][1:])  # the basis did change (the origin is shared)
    if kind == "mlp":  # and against a plain PyTorch loop, independent of the evaluator
        model = b.model_factory()
        origin, dirs = b.slice.layout.unflatten(b.slice.origin), [b.slice.layout.unflatten(d) for d in b.slice.directions]
        for i, c in enumerate(COORDS):
            loss, _ = reference_loss(model, {**model.state_dict(), **state_at(model, origin, dirs, tuple(c))}, b.inputs, b.targets)
            assert got["loss"][i] == pytest.approx(loss, rel=1e-5)


def test_set_slice_refuses_another_shape():
    ev = Evaluator(_problem("mlp", EvalOptions(), 3), device="cpu")
    with pytest.raises(ValueError, match="set_slice"):
        ev.set_slice(_problem("cnn", EvalOptions(), 3).slice)


def test_frames_share_one_evaluator():
    problem = _problem("cnn", EvalOptions(compile=False), 3)
    dirs = torch.stack([_problem("cnn", EvalOptions(), s).slice.directions for s in (3, 5, 8)])  # (F, D, P)
    fe = FrameEvaluator(FrameSeries(problem, dirs), device="cpu")
    first = fe.evaluator
    for f in (1, 2, 0, 2):  # frame 0 again after others: its own basis, untouched by the switches
        got = fe.evaluate(f, COORDS)
        want = Evaluator(FrameSeries(problem, dirs.clone()).problem_of(f), device="cpu").evaluate(COORDS)
        np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
    assert fe.evaluator is first and fe.switches == 5

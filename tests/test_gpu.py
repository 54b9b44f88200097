"""The evaluator on CUDA (skipped without it): same numbers as the CPU reference loop."""

import numpy as np
import pytest
import torch

from landscape.data import synthetic
from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.slices import random_slice

from .independent import reference_loss, state_at

pytestmark = pytest.mark.gpu


def _problem(kind: str, shape: tuple, n: int = 300, options: dict | None = None):
    x, y = synthetic(n, shape, 10, seed=1)
    factory = ModelFactory(kind, shape, 10, dict(options or {}), seed=0)
    model = factory()
    if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        model.train()
        with torch.no_grad():
            model(x[:64])  # non-trivial running statistics
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=3)
    return factory, model, sl, x, y


def _reference(model, sl, x, y, coords):
    layout = sl.layout
    origin, dirs = layout.unflatten(sl.origin), [layout.unflatten(d) for d in sl.directions]
    full = model.state_dict()
    return np.array([reference_loss(model, {**full, **state_at(model, origin, dirs, c)}, x, y)[0] for c in coords])


COORDS = np.array([[0.0, 0.0], [0.4, -0.3], [-0.7, 0.9], [1.0, 0.25], [-0.2, -0.6]])


@pytest.mark.parametrize(
    "options",
    [
        EvalOptions(),  # defaults on CUDA: CUDA graph, shortcut, K = 1 for convs
        EvalOptions(cuda_graphs=False, shortcut=False),
        EvalOptions(points_per_pass=4),
    ],
    ids=["graph-shortcut", "eager-plain", "vmap-k4"],
)
def test_fp32_on_cuda_matches_the_cpu_reference(options):
    factory, model, sl, x, y = _problem("resnet20", (3, 16, 16), options={"width": 8})
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=options), device="cuda")
    got = ev.evaluate(COORDS)["loss"]
    np.testing.assert_allclose(got, _reference(model, sl, x, y, COORDS), rtol=1e-5)


def test_mlp_default_batches_points_and_matches_reference():
    factory, model, sl, x, y = _problem("mlp", (1, 8, 8), options={"widths": [32, 32]})
    ev = Evaluator(ScanProblem(factory, sl, x, y), device="cuda")
    assert ev.plan.points_per_pass > 1 and ev.plan.cuda_graphs
    got = ev.evaluate(COORDS)["loss"]
    np.testing.assert_allclose(got, _reference(model, sl, x, y, COORDS), rtol=1e-5)


def test_graph_replay_gives_the_bits_of_eager_mode_whatever_the_tile():
    factory, model, sl, x, y = _problem("cnn", (1, 28, 28))
    coords = np.random.default_rng(0).uniform(-1, 1, (11, 2))
    graph = Evaluator(ScanProblem(factory, sl, x, y), device="cuda")
    eager = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(cuda_graphs=False)), device="cuda")
    whole = graph.evaluate(coords)["loss"]
    assert np.array_equal(whole, eager.evaluate(coords)["loss"])
    assert np.array_equal(whole, np.concatenate([graph.evaluate(coords[i : i + 4])["loss"] for i in range(0, 11, 4)]))


@pytest.mark.parametrize("precision,rtol", [("tf32", 5e-3), ("bf16", 3e-2)])
def test_reduced_precision_stays_near_fp32(precision, rtol):
    factory, model, sl, x, y = _problem("resnet20", (3, 16, 16), options={"width": 8})
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(precision=precision)), device="cuda")
    got = ev.evaluate(COORDS)["loss"]
    np.testing.assert_allclose(got, _reference(model, sl, x, y, COORDS), rtol=rtol)
    assert ev.describe()["precision"] == precision

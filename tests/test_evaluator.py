import numpy as np
import pytest
import torch

from landscape.errors import DataError
from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem, check_fit
from landscape.slices import random_slice

from .independent import reference_loss, state_at


def _digits_problem(subset=300):
    from jobs.common.build import load_data
    from jobs.specs import DigitsData

    x, y = load_data(DigitsData(kind="digits", subset=subset))
    factory = ModelFactory("mlp", tuple(x.shape[1:]), 10, {"widths": [16, 16]}, seed=1)
    model = factory()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=7)
    return factory, sl, x, y


# Every evaluation mode must give the reference's numbers: one point per pass with
# and without the first-layer shortcut, and K points per pass through vmap.
MODES = {
    "plain": EvalOptions(shortcut=False, data_chunk=100),
    "shortcut": EvalOptions(shortcut=True, data_chunk=100),
    "vmap-k4": EvalOptions(shortcut=False, points_per_pass=4, data_chunk=100),
    "vmap-k4-shortcut": EvalOptions(shortcut=True, points_per_pass=4, data_chunk=100),
}


@pytest.mark.parametrize("mode", MODES)
def test_grid_matches_an_independent_plain_pytorch_loop_on_a_non_square_asymmetric_grid(mode):
    factory, sl, x, y = _digits_problem()
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=MODES[mode]), device="cpu")
    assert ev.plan.shortcut == MODES[mode].shortcut
    assert ev.plan.points_per_pass == (MODES[mode].points_per_pass or 1)
    xs, ys = np.linspace(-1.0, 0.5, 13), np.linspace(-0.3, 1.7, 5)  # 5 rows x 13 cols
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    grid = ev.evaluate(np.stack([xx.ravel(), yy.ravel()], 1))["loss"].reshape(5, 13)
    model = factory()
    layout = sl.layout
    origin = layout.unflatten(sl.origin)
    dirs = [layout.unflatten(d) for d in sl.directions]
    rng = np.random.default_rng(0)
    for i, j in zip(rng.integers(0, 5, 8), rng.integers(0, 13, 8)):
        state = {**model.state_dict(), **state_at(model, origin, dirs, (xs[j], ys[i]))}
        want, _ = reference_loss(model, state, x, y)
        assert grid[i, j] == pytest.approx(want, rel=1e-5), (i, j)
    # Orientation: the loss surface is not symmetric, so a transposed grid would fail above.
    assert not np.allclose(grid[:, ::-1], grid)


def test_linear_model_mse_is_the_exact_quadratic_on_any_plane():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g)
    t = torch.randn(40, 3, generator=g)
    factory = ModelFactory("linear", (5,), 3, seed=2)
    model = factory()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=4, normalization="none", ignore="none")
    ev = Evaluator(ScanProblem(factory, sl, x, t, loss="mse"), device="cpu")
    xs, ys = np.linspace(-2, 1, 7), np.linspace(-0.5, 3, 4)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    got = ev.evaluate(np.stack([xx.ravel(), yy.ravel()], 1))
    # Closed form in float64: residual r(a, b) = r0 + a*o1 + b*o2, loss = mean(r^2).
    X, T = x.double().numpy(), t.double().numpy()
    def out(vec):
        p = layout.unflatten(vec.double())
        return X @ p["linear.weight"].numpy().T + p["linear.bias"].numpy()
    r0, o1, o2 = out(sl.origin) - T, out(sl.directions[0]), out(sl.directions[1])
    want = ((r0 + xx.ravel()[:, None, None] * o1 + yy.ravel()[:, None, None] * o2) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(got["loss"], want, rtol=1e-5)
    assert np.isnan(got["accuracy"]).all()  # regression: no accuracy


@pytest.mark.parametrize("k", [1, 4])
def test_results_do_not_depend_on_how_points_are_batched(k):
    factory, sl, x, y = _digits_problem(subset=100)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(points_per_pass=k)), device="cpu")
    coords = np.random.default_rng(1).uniform(-1, 1, (10, 2))
    whole = ev.evaluate(coords)["loss"]
    pieces = np.concatenate([ev.evaluate(coords[i : i + 3])["loss"] for i in range(0, 10, 3)])
    assert np.array_equal(whole, pieces)


def test_diverged_points_stay_inf_or_nan():
    factory, sl, x, y = _digits_problem(subset=50)
    ev = Evaluator(ScanProblem(factory, sl, x, y), device="cpu")
    loss = ev.evaluate(np.array([[1e30, 1e30]]))["loss"]
    assert not np.isfinite(loss).all()


def test_data_that_does_not_fit_the_model_is_a_clear_error():
    factory, sl, x, y = _digits_problem(subset=20)
    with pytest.raises(DataError, match="does not fit the model"):
        check_fit(ScanProblem(factory, sl, torch.randn(20, 3, 5, 5), y))
    with pytest.raises(DataError, match="classes"):
        check_fit(ScanProblem(factory, sl, x, y + 10))


@pytest.mark.parametrize("k", [1, 2])
def test_resnet_with_batchnorm_matches_the_reference_loop(k):
    from landscape.data import synthetic

    x, y = synthetic(12, (3, 8, 8), 10, seed=1)
    factory = ModelFactory("resnet20", (3, 8, 8), 10, {"width": 4}, seed=0)
    model = factory()
    model.train()
    model(torch.randn(16, 3, 8, 8))  # non-trivial running statistics
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=2)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(data_chunk=5, points_per_pass=k)), device="cpu")
    assert ev.plan.shortcut and ev.plan.channels_last == (k == 1)  # conv first layer; image inputs, NCHW under vmap
    coords = np.array([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.7]])
    got = ev.evaluate(coords)["loss"]
    origin, dirs = layout.unflatten(sl.origin), [layout.unflatten(d) for d in sl.directions]
    full = model.state_dict()
    for k, c in enumerate(coords):
        want, _ = reference_loss(factory(), {**full, **state_at(model, origin, dirs, c)}, x, y)
        assert got[k] == pytest.approx(want, rel=1e-5)


def test_out_of_memory_halves_the_points_per_pass_and_goes_on(monkeypatch):
    factory, sl, x, y = _digits_problem(subset=100)
    coords = np.random.default_rng(2).uniform(-1, 1, (6, 2))
    want = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(points_per_pass=2)), device="cpu").evaluate(coords)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(points_per_pass=8)), device="cpu")
    real = Evaluator._sums

    def oom_above_two(self, coefs, into=None):
        if len(coefs) > 2:  # as if the device could hold two points per pass
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, coefs, into)

    monkeypatch.setattr(Evaluator, "_sums", oom_above_two)
    got = ev.evaluate(coords)
    assert ev.plan.points_per_pass == 2
    np.testing.assert_array_equal(got["loss"], want["loss"])


def test_a_failed_compile_falls_back_to_eager_with_the_same_numbers(monkeypatch):
    factory, sl, x, y = _digits_problem(subset=120)
    coords = np.random.default_rng(4).uniform(-1, 1, (5, 2))
    want = Evaluator(ScanProblem(factory, sl, x, y), device="cpu").evaluate(coords)

    def broken_compile(model, **kwargs):
        def run(*args):
            raise RuntimeError("InductorError: no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(compile=True)), device="cpu")
    assert ev.plan.compile
    got = ev.evaluate(coords)
    assert not ev.plan.compile and "torch.compile failed (RuntimeError: InductorError: no C++ compiler" in ev.plan.compile_fallback
    np.testing.assert_array_equal(got["loss"], want["loss"])
    assert ev.describe()["compile_fallback"] == ev.plan.compile_fallback  # recorded in the result's evaluator plans


def test_many_evaluators_in_one_process_all_run_compiled(monkeypatch):
    # Dynamo keeps one cache per forward function: evaluators whose data differ in shape (or whose
    # first layer is swapped, or whose dtype differs) each recompile it; past dynamo's default
    # recompile_limit (8) it would silently run the rest eagerly.
    compiled = []
    real_compile = torch.compile

    def counting(gm, example_inputs):
        compiled.append(1)
        return gm.forward  # no Inductor: only whether dynamo compiled is counted

    monkeypatch.setattr(torch, "compile", lambda model, **kw: real_compile(model, backend=counting, dynamic=False))
    torch._dynamo.reset()
    try:
        for i in range(12):
            factory, sl, x, y = _digits_problem(subset=30 + i)  # a new data shape each time
            ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(compile=True, shortcut=False)), device="cpu")
            before = len(compiled)
            ev.evaluate(np.zeros((1, 2)))
            assert len(compiled) > before, f"evaluator {i + 1} ran its model uncompiled"
    finally:
        torch._dynamo.reset()


def test_cpu_plans_compile_conv_nets_for_large_scans_only():
    from landscape.plan import make_plan

    def plan(conv, points):
        return make_plan(EvalOptions(expected_points=points), torch.device("cpu"), 100, 1024, None, conv, True)

    assert plan(True, 10_000).compile and not plan(True, 999).compile and not plan(False, 10_000).compile

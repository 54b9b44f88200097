"""Curvature math against independent computations: dense Hessians, closed forms, plain autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory
from landscape.hessian import HessianOperator, operator_at, point_evaluator
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.slices import random_slice
from landscape.slq import spectral_density
from landscape.spectrum import eigenpairs, hutchinson_trace

from .hessian_reference import dense_hessian


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # conftest's, for every test here
    yield


def tiny_problem(seed=0, n=60):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    factory = ModelFactory("mlp", (5,), 3, {"widths": [6]}, seed=1)  # 57 parameters
    model = factory()
    with torch.no_grad():  # larger weights: a clearly indefinite Hessian
        for p in model.parameters():
            p.mul_(2.0)
    return factory, model, x, y


def tiny_operator(chunk=25, retain=None):
    factory, model, x, y = tiny_problem()
    layout = StateLayout.of(model)
    ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, y, "cross_entropy",
                         EvalOptions(data_chunk=chunk), "cpu")
    op = operator_at(ev, factory().eval(), [0.0], retain=retain)
    return op, dense_hessian(factory(), model.state_dict(), x, y)


@pytest.mark.parametrize("retain", [True, False])
def test_top_k_and_smallest_eigenpairs_match_the_dense_hessian(retain):
    op, h = tiny_operator(chunk=25, retain=retain)  # 60 samples in uneven chunks 25, 25, 10
    assert op.retain == retain and len(op.chunks) == 3 and op.size == h.shape[0] == 57
    w, v = np.linalg.eigh(h)
    assert w[0] < -0.01 * w[-1]  # indefinite: the smallest eigenvalue is a real test
    e = eigenpairs(op, 4, 100, 1e-5, seed=0)
    assert e.converged and e.steps < 57  # stopped on its tolerance, before the space was exhausted
    np.testing.assert_allclose(e.values, w[::-1][:4], rtol=1e-4)
    assert e.smallest == pytest.approx(w[0], rel=1e-4)
    for i in range(4):  # eigenvectors up to sign
        assert abs(float(np.dot(e.vectors[i].double().numpy(), v[:, -1 - i]))) > 1 - 1e-4
    assert abs(float(np.dot(e.smallest_vector.double().numpy(), v[:, 0]))) > 1 - 1e-4
    # The reported residuals bound the true ones (|H y - lambda y| with the dense H).
    for i in range(4):
        y = e.vectors[i].double().numpy()
        assert np.linalg.norm(h @ y - e.values[i] * y) <= 10 * e.residuals[i] + 1e-6


def test_trace_is_within_its_reported_error_and_the_error_is_honest():
    op, h = tiny_operator()
    t = hutchinson_trace(op, 240, seed=1, batch=16)
    assert len(t.samples) == 240
    assert abs(t.mean - np.trace(h)) <= 3 * t.stderr
    # Rademacher: Var(v^T H v) = 2 (|H|_F^2 - sum_i H_ii^2); the reported error estimates its root over n.
    theory = np.sqrt(2 * ((h**2).sum() - (np.diag(h) ** 2).sum()) / 240)
    assert t.stderr == pytest.approx(theory, rel=0.25)
    # Each sample is v^T H v for its probe: redo the first with the dense Hessian.
    g = torch.Generator().manual_seed(1)
    v0 = (torch.randint(0, 2, (16, op.size), generator=g).double() * 2 - 1)[0].numpy()
    assert t.samples[0] == pytest.approx(v0 @ h @ v0, rel=1e-5)


def test_density_integrates_to_one_and_its_quadrature_is_exact_when_lanczos_spans_the_space():
    op, h = tiny_operator()
    d = spectral_density(op, runs=3, iterations=200, seed=2, sigma_rel=0.01, points=2000)
    assert d.nodes.shape == (3, 57)  # iterations capped at the 57 parameters
    assert np.trapezoid(d.values, d.grid) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(d.weights.sum(1), 1.0, rtol=1e-9)
    w = np.linalg.eigvalsh(h)
    for r in range(3):  # the nodes are the spectrum; sum w_i theta_i = v^T H v / v^T v for each start v
        assert np.max(np.abs(np.sort(d.nodes[r]) - w)) <= 1e-4 * np.abs(w).max()
    g = torch.Generator().manual_seed(2)
    v = (torch.randint(0, 2, (3, op.size), generator=g).double() * 2 - 1).numpy()
    for r in range(3):
        assert (d.weights[r] * d.nodes[r]).sum() == pytest.approx(v[r] @ h @ v[r] / op.size, rel=1e-4)


class DenseOperator:
    """A symmetric matrix as an operator (for the Lanczos tests)."""

    def __init__(self, a: np.ndarray):
        self.a = torch.tensor(a, dtype=torch.float32)
        self.size, self.device, self.finite_point, self.products = len(a), torch.device("cpu"), True, 0

    def matvec(self, v):
        self.products += len(v)
        return v @ self.a  # (B, P); symmetric


def test_lanczos_finds_repeated_eigenvalues_by_restarting_and_never_exceeds_the_size():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    lam = np.array([5.0, 5.0, 5.0, 2.0, 1.0, 1.0, 0.5, 0.0, 0.0, -0.3, -1.0, -1.0])
    op = DenseOperator(q @ np.diag(lam) @ q.T)
    e = eigenpairs(op, 3, 50, 1e-6, seed=0)
    assert op.products == 12 + 4  # capped at the size (a single Krylov space holds 7 distinct values only), then one
    # product per reported pair (3 and the smallest) measures its residual
    np.testing.assert_allclose(e.values, [5.0, 5.0, 5.0], rtol=1e-5)
    assert e.smallest == pytest.approx(-1.0, rel=1e-5)
    assert torch.allclose(e.vectors @ e.vectors.T, torch.eye(3), atol=1e-5)  # three different vectors


def test_linear_model_mse_map_is_constant_over_the_plane_and_equals_the_closed_form():
    g = torch.Generator().manual_seed(0)
    n, f, c = 40, 5, 3
    x = torch.randn(n, f, generator=g) + 0.5
    t = torch.randn(n, c, generator=g)
    factory = ModelFactory("linear", (f,), c, seed=2)
    model = factory()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=4, normalization="none", ignore="none")
    problem = ScanProblem(factory, sl, x, t, loss="mse", metrics=("loss", "accuracy", "hessian"),
                          metric_options={"hessian": {"iterations": 30, "tol": 1e-6}}, options=EvalOptions(data_chunk=15))
    ev = Evaluator(problem, device="cpu")
    xs, ys = np.linspace(-2, 1, 5), np.linspace(-0.5, 3, 3)  # 3 rows x 5 columns
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    got = ev.evaluate(np.stack([xx.ravel(), yy.ravel()], 1))
    # loss = 1/(N C) sum (W x + b - t)^2: per output the Hessian block is 2/(N C) [x 1]^T [x 1].
    xt = np.concatenate([x.double().numpy(), np.ones((n, 1))], 1)
    w = np.linalg.eigvalsh(2 / (n * c) * xt.T @ xt)
    assert np.ptp(got["loss"]) > 1  # the loss does change over the plane ...
    np.testing.assert_allclose(got["hessian_max"], w[-1], rtol=1e-4)  # ... its curvature does not
    np.testing.assert_allclose(got["hessian_min"], w[0], rtol=1e-4)
    np.testing.assert_allclose(got["hessian_ratio"], w[0] / w[-1], rtol=2e-4)
    assert (got["hessian_residual"] <= 1e-6).all()


def test_batchnorm_is_in_eval_mode_and_buffers_are_not_differentiated():
    from landscape.data import synthetic

    x, y = synthetic(10, (3, 6, 6), 4, seed=1)
    factory = ModelFactory("import", (3, 6, 6), 4, factory="tests.hessian_reference:bn_net")
    model = factory()
    model.train()
    model(torch.randn(16, 3, 6, 6))  # non-trivial running statistics
    model.eval()
    layout = StateLayout.of(model)
    ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, y, "cross_entropy", EvalOptions(data_chunk=4), "cpu")
    op = operator_at(ev, factory(), [0.0])
    assert op.size == sum(p.numel() for p in model.parameters()) < layout.size  # parameters only
    v = torch.randn(op.size, generator=torch.Generator().manual_seed(0))
    ref_model = factory().double()
    ref_model.load_state_dict(model.state_dict())
    ref_model.eval()  # BatchNorm with the running statistics, as a scan evaluates it
    names = [n for n, _ in ref_model.named_parameters()]
    shapes = [p.shape for _, p in ref_model.named_parameters()]

    def f(w):
        parts = torch.split(w, [int(np.prod(s)) for s in shapes])
        out = torch.func.functional_call(ref_model, {n: p.view(s) for n, p, s in zip(names, parts, shapes)}, (x.double(),))
        return F.cross_entropy(out, y)

    flat = torch.cat([p.detach().reshape(-1) for p in ref_model.parameters()])
    _, want = torch.autograd.functional.hvp(f, flat, v.double())
    got = op.matvec(v[None])[0].double()
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * want.abs().max())


def test_a_nan_hessian_vector_product_is_recorded_as_nan_not_raised():
    from tests.user_factories import make_data

    x, y = make_data(30)
    factory = ModelFactory("import", (4,), 3, factory="tests.hessian_reference:sqrt_shift")
    model = factory()
    layout = StateLayout.of(model)
    ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, y, "cross_entropy", None, "cpu")
    op = operator_at(ev, factory(), [0.0])
    assert op.finite_point  # the weights are fine; the second derivatives are not
    e = eigenpairs(op, 2, 20, 1e-4)
    assert np.isnan(e.values).all() and np.isnan(e.smallest) and e.vectors is None and not e.converged
    assert np.isnan(hutchinson_trace(op, 8).mean)
    assert np.isnan(spectral_density(op, 2, 5).values).all()
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=0, ignore="biasbn")  # `a` stays 0
    got = Evaluator(ScanProblem(factory, sl, x, y, metrics=("loss", "accuracy", "hessian")), device="cpu").evaluate(
        np.array([[0.0, 0.0], [0.1, -0.2]]))
    assert np.isfinite(got["loss"]).all()
    for name in ("hessian_max", "hessian_min", "hessian_ratio"):
        assert np.isnan(got[name]).all(), name


def test_overflowing_weights_give_nan_without_any_product():
    factory, model, x, y = tiny_problem()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=0)
    ev = Evaluator(ScanProblem(factory, sl, x, y, metrics=("loss", "accuracy", "hessian")), device="cpu")
    got = ev.evaluate(np.array([[1e38, 1e38], [0.0, 0.0]]))
    assert np.isnan(got["hessian_max"][0]) and np.isfinite(got["hessian_max"][1])


def test_the_hessian_operator_is_the_scans_loss():
    """Its loss, summed over chunks, is the evaluator's loss at the point (same normalization, mse too)."""
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(33, 5, generator=g), torch.randn(33, 2, generator=g)
    factory = ModelFactory("mlp", (5,), 2, {"widths": [4]}, seed=0)
    model = factory()
    layout = StateLayout.of(model)
    for targets, loss in ((t, "mse"), (torch.randint(0, 2, (33,), generator=g), "cross_entropy"), (torch.randint(0, 2, (33,), generator=g), "mse")):
        ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, targets, loss, EvalOptions(data_chunk=10), "cpu")
        op = operator_at(ev, factory(), [0.0])
        total = sum(float(op.chunk_loss(op.flat.detach(), s, e)) for s, e in op.chunks)
        assert total == pytest.approx(float(ev.evaluate(np.zeros((1, 1)))["loss"][0]), rel=1e-6), loss


def test_operator_without_curvature_is_zero():
    """A loss linear in the parameters has H = 0: products are zeros, not an autograd error."""
    x = torch.randn(8, 3)
    model = torch.nn.Linear(3, 1, bias=False)

    class Identity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = model

        def forward(self, z):
            return torch.cat([self.lin(z), torch.zeros(len(z), 1)], 1)

    m = Identity()
    op = HessianOperator(m, {"lin.weight": model.weight.detach()}, {}, x, torch.randn(8, 2), "mse", 16, 8)
    # mse is quadratic in the weight: H = 2/16 sum x x^T (only the first output moves)
    want = 2 / 16 * x.T @ x
    v = torch.randn(1, 3)
    assert torch.allclose(op.matvec(v)[0], v[0] @ want, rtol=1e-5)


def test_kept_graphs_that_run_out_of_memory_fall_back_to_rebuilding_them(monkeypatch):
    factory, model, x, y = tiny_problem()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=0)
    problem = ScanProblem(factory, sl, x, y, metrics=("loss", "accuracy", "hessian"), metric_options={"hessian": {"iterations": 30}})
    coords = np.array([[0.0, 0.0], [0.3, -0.1]])
    want = Evaluator(problem, device="cpu").evaluate(coords)
    real = HessianOperator.matvec

    def no_room_for_kept_graphs(self, v):
        if self.retain:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, v)

    monkeypatch.setattr(HessianOperator, "matvec", no_room_for_kept_graphs)
    ev = Evaluator(problem, device="cpu")
    got = ev.evaluate(coords)
    for name in ("hessian_max", "hessian_min"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5)
    assert ev.point_metrics[0]._retain is False


def test_trace_and_density_do_not_depend_on_how_many_vectors_share_a_pass():
    op, _ = tiny_operator()
    one, many = hutchinson_trace(op, 24, seed=5, batch=1), hutchinson_trace(op, 24, seed=5, batch=8)
    np.testing.assert_allclose(one.samples, many.samples, rtol=1e-5)
    d1, d3 = spectral_density(op, 3, 20, seed=6, batch=1), spectral_density(op, 3, 20, seed=6, batch=3)
    np.testing.assert_allclose(d1.nodes, d3.nodes, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d1.values, d3.values, rtol=1e-3, atol=1e-6 * d1.values.max())

"""Sharpness numbers: epsilon-sharpness and adaptive sharpness of quadratics against their closed forms, and
`landscape sharpness` on the tiny MLP against dense Hessians and a plain PyTorch loss."""

import numpy as np
import pytest
import torch
import yaml

from cluster.store import ResultStore
from jobs.common.build import load_data
from jobs.cli import main
from jobs.specs import DigitsData
from landscape.factories import ModelFactory
from landscape.sharpness import adaptive_sharpness, epsilon_sharpness, keskar_radius

from .conftest import TINY_DATA, TINY_MODEL
from .hessian_reference import dense_hessian
from .independent import reference_loss


def quadratic(a: torch.Tensor, c: torch.Tensor):
    """f(x) = 0.5 (x - c)^T A (x - c) + 1 in float64, with its gradient."""

    def f(x):
        d = x.double() - c
        return float(0.5 * d @ a @ d + 1.0), (a @ d).to(x.dtype)

    return f


def test_epsilon_sharpness_of_a_separable_quadratic_is_its_closed_form():
    """Convex and separable: the maximum over the box is the corner along the gradient's signs,
    sum |g_i| r_i + a_i r_i^2 / 2 with r_i = eps (|x_i| + 1)."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, generator=g, dtype=torch.float64) * 3 + 0.1
    c = torch.randn(50, generator=g, dtype=torch.float64)
    x = (c + torch.randn(50, generator=g, dtype=torch.float64)).double()
    f = quadratic(torch.diag(a), c)
    for eps in (1e-3, 5e-4, 0.05):
        phi, ascent = epsilon_sharpness(f, x, eps, steps=10)
        fx, grad = f(x)
        r = eps * (x.abs() + 1)
        rise = float((grad.abs() * r + 0.5 * a * r * r).sum())
        assert phi == pytest.approx(100 * rise / (1 + fx), rel=1e-9)
        assert ascent.best - fx == pytest.approx(rise, rel=1e-9)
        assert bool((ascent.offset.abs() <= r * (1 + 1e-12)).all())


def test_epsilon_sharpness_at_the_minimum_and_with_a_mask():
    """At the minimum (zero gradient) every corner of the box of a separable quadratic is a maximum: a_i r_i^2 / 2."""
    a = torch.tensor([1.0, 2.0, 4.0, 0.5], dtype=torch.float64)
    c = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    f = quadratic(torch.diag(a), c)
    r = keskar_radius(c, 0.1)
    phi, _ = epsilon_sharpness(f, c.clone(), 0.1, steps=5)
    assert phi == pytest.approx(100 * float((0.5 * a * r * r).sum()) / 2.0, rel=1e-9)
    mask = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    phi, ascent = epsilon_sharpness(f, c.clone(), 0.1, steps=5, mask=mask)
    assert phi == pytest.approx(100 * float((0.5 * a * r * r * mask).sum()) / 2.0, rel=1e-9)
    assert ascent.offset[0] == 0 and ascent.offset[2] == 0


def test_adaptive_sharpness_at_a_minimum_is_the_top_eigenvalue_of_T_A_T():
    """max over ||z / (|x| + eta)|| <= rho of 0.5 z^T A z = 0.5 rho^2 lambda_max(T A T), T = diag(|x| + eta)."""
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(0.1, 5.0, 30, dtype=torch.float64)) @ q.T
    c = torch.randn(30, generator=g, dtype=torch.float64)
    f = quadratic(a, c)
    t = torch.diag(c.abs() + 0.01)
    want = 0.5 * 0.2**2 * float(torch.linalg.eigvalsh(t @ a @ t)[-1])
    got, ascent = adaptive_sharpness(f, c.clone(), rho=0.2, eta=0.01, steps=200)
    assert got == pytest.approx(want, rel=1e-4)
    assert float((ascent.offset / (c.abs() + 0.01)).norm()) <= 0.2 * (1 + 1e-9)
    # away from the minimum, the first step is ASAM's: z = rho T^2 g / ||T g||, and the value is at least its rise
    x = c + 0.3
    fx, grad = f(x)
    tt = x.abs() + 0.01
    z = 0.2 * tt * (tt * grad) / (tt * grad).norm()
    got, _ = adaptive_sharpness(f, x, rho=0.2, eta=0.01, steps=50)
    assert got >= f(x + z)[0] - fx - 1e-12


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def test_sharpness_command_on_the_tiny_mlp(tiny_run, tmp_path, capsys):
    ckpt = tiny_run / "epoch_003.pt"
    d = {"name": "tiny-sharp", "model": TINY_MODEL, "data": TINY_DATA, "at": {"checkpoint": str(ckpt)},
         "epsilon": 5e-4, "ascent": {"steps": 5}, "eigen": {"iterations": 300, "tol": 1e-6}, "trace": {"samples": 64}}
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(d))
    out = tmp_path / "s.zarr"
    assert main(["sharpness", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epsilon-sharpness (Keskar et al., epsilon 0.0005)" in printed and "adaptive sharpness" in printed
    store = ResultStore.open(str(out))
    meta = store.meta
    assert meta["job"] == "sharpness" and meta["status"] == "complete"
    x, y = load_data(DigitsData(kind="digits", subset=240, seed=0))
    state = torch.load(ckpt, weights_only=True)
    h = dense_hessian(ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})(), state, x, y)
    assert meta["top_eigenvalue"] == pytest.approx(np.linalg.eigvalsh(h)[-1], rel=1e-4)
    assert abs(meta["trace"] - np.trace(h)) <= 4 * meta["trace_stderr"]
    model = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()
    base, _ = reference_loss(model, state, x, y)
    assert meta["point_loss"] == pytest.approx(base, rel=1e-5)
    # step 0 of the box ascent is the corner along the gradient's signs: check it with plain PyTorch
    model.load_state_dict(state)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    corner = {n: (p + 5e-4 * (p.abs() + 1) * torch.sign(g)).detach() for (n, p), g in zip(model.named_parameters(), grads)}
    first, _ = reference_loss(ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})(), corner, x, y)
    losses = store.group["epsilon_ascent_loss"][...]
    assert losses[0] == pytest.approx(first, rel=1e-5) and len(losses) == 6
    assert meta["epsilon_max_loss"] == pytest.approx(losses.max()) and meta["epsilon_max_loss"] > base
    assert meta["epsilon_sharpness"] == pytest.approx(100 * (meta["epsilon_max_loss"] - base) / (1 + base), rel=1e-4)
    assert meta["adaptive_sharpness"] > 0
    # restricted to a block: the eigenvalue is the block's
    d["params"] = ["net.2.*"]
    spec.write_text(yaml.safe_dump(d))
    assert main(["sharpness", str(spec), "--out", str(tmp_path / "b.zarr")]) == 0
    meta = ResultStore.open(str(tmp_path / "b.zarr")).meta
    keep = np.r_[np.zeros(780, bool), np.ones(130, bool)]
    assert meta["parameters"] == 130
    assert meta["top_eigenvalue"] == pytest.approx(np.linalg.eigvalsh(h[np.ix_(keep, keep)])[-1], rel=1e-4)


def test_validate_tells_a_sharpness_spec_apart(tiny_run, tmp_path, capsys):
    d = {"name": "v", "model": TINY_MODEL, "data": TINY_DATA, "at": {"checkpoint": str(tiny_run / "epoch_003.pt")}}
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(d))
    assert main(["validate", str(spec)]) == 0
    assert "valid sharpness spec 'v'" in capsys.readouterr().out
    spec.write_text(yaml.safe_dump({**d, "params": ["nope.*"]}))
    assert main(["validate", str(spec)]) == 2
    assert "params: 'nope.*' matches no parameter" in capsys.readouterr().err

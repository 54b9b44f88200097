"""Curvature maps that say where they are not converged, on a model whose dense Hessian is known at every point.

Reference: the float64 dense Hessian (torch.autograd.functional.hessian) at each grid point, its eigenvalues by
numpy; Li et al.'s `weights` convention is its sub-matrix over the entries of tensors of dimension > 1."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import zarr  # noqa: E402

from jobs import plot  # noqa: E402
from landscape.evaluator import Evaluator  # noqa: E402
from landscape.hessian import operator_at, point_evaluator, unconverged, unconverged_summary  # noqa: E402
from landscape.blocks import RestrictedOperator  # noqa: E402
from landscape.param_select import select  # noqa: E402
from landscape.params import StateLayout  # noqa: E402
from landscape.plan import EvalOptions  # noqa: E402
from landscape.problem import ScanProblem  # noqa: E402
from landscape.slices import random_slice  # noqa: E402
from landscape.spectrum import eigenpairs  # noqa: E402

from .hessian_reference import dense_hessian  # noqa: E402
from .independent import state_at  # noqa: E402
from .test_hessian import tiny_problem  # noqa: E402

XS, YS = np.linspace(-0.6, 0.3, 4), np.linspace(-0.2, 0.5, 3)  # 3 rows x 4 columns, asymmetric
TOL = 1e-3


def curvature_map(iterations: int):
    factory, model, x, y = tiny_problem()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=4, normalization="filter")
    problem = ScanProblem(factory, sl, x, y, metrics=("loss", "accuracy", "hessian"),
                          metric_options={"hessian": {"iterations": iterations, "tol": TOL}}, options=EvalOptions(data_chunk=25))
    coords = np.array([[a, b] for b in YS for a in XS])  # row-major: row i <-> y[i]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster on a shared machine
    try:
        got = Evaluator(problem, device="cpu").evaluate(coords)
    finally:
        torch.set_num_threads(threads)
    origin, dirs = layout.unflatten(sl.origin), [layout.unflatten(d) for d in sl.directions]
    dense = [np.linalg.eigvalsh(dense_hessian(factory(), state_at(model, origin, dirs, c), x, y)) for c in coords]
    return {k: v.reshape(len(YS), len(XS)) for k, v in got.items()}, np.array(dense).reshape(len(YS), len(XS), -1)


@pytest.fixture(scope="module")
def capped_map():
    return curvature_map(iterations=12)  # too few steps for most points, enough for some


def test_converged_points_are_accurate_relative_to_their_own_eigenvalues():
    got, w = curvature_map(iterations=57)  # the cap is the operator's size: every point can converge
    assert not unconverged(got["hessian_residual"], TOL).any()
    np.testing.assert_allclose(got["hessian_max"], w[..., -1], rtol=2 * TOL)
    np.testing.assert_allclose(got["hessian_min"], w[..., 0], rtol=2 * TOL)  # relative to lambda_min itself
    np.testing.assert_allclose(got["hessian_ratio"], np.abs(w[..., 0] / w[..., -1]), rtol=4 * TOL)


def test_unconverged_points_are_the_ones_whose_values_may_be_off_and_are_counted(capped_map):
    got, w = capped_map
    bad = unconverged(got["hessian_residual"], TOL)
    assert 0 < bad.sum() < bad.size, got["hessian_residual"]  # a mixed map: the test below means something
    err_min = np.abs(got["hessian_min"] - w[..., 0]) / np.abs(w[..., 0])
    assert (err_min[~bad] <= 2 * TOL).all()  # converged: within its tolerance of the dense answer
    # the residual bounds each reported value's distance to some eigenvalue: never smaller than the truth allows
    for i, j in zip(*np.nonzero(bad)):
        nearest = np.abs(w[i, j] - got["hessian_min"][i, j]).min()
        assert nearest <= got["hessian_residual"][i, j] * abs(got["hessian_min"][i, j]) * 1.01 + 1e-6
    line = unconverged_summary(got["hessian_residual"], TOL)
    assert f"{int(bad.sum())} of {bad.size} computed point(s) did not converge" in line


def write_map(path, got):
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    names = ["loss", "accuracy", "hessian_max", "hessian_min", "hessian_ratio", "hessian_residual"]
    for name in names:
        a = g.create_array(name, shape=got[name].shape, dtype="float32", chunks=(3, 4), dimension_names=("y", "x"),
                           fill_value=np.nan)
        a[...] = got[name]
    g.create_array("x", shape=XS.shape, dtype="float64", chunks=(4,), dimension_names=("x",))[...] = XS
    g.create_array("y", shape=YS.shape, dtype="float64", chunks=(3,), dimension_names=("y",))[...] = YS
    g.attrs["landscape"] = {"name": "curv", "dims": 2, "status": "complete", "loss_kind": "cross_entropy",
                            "slice_kind": "random_plane", "checkpoints": [], "precision": "fp32", "metrics": names,
                            "metric_options": {"hessian": {"iterations": 12, "tol": TOL, "params": "all"}}}
    return path


def test_every_figure_that_draws_curvature_marks_every_unconverged_point(capped_map, tmp_path):
    got, _ = capped_map
    bad = unconverged(got["hessian_residual"], TOL)
    want = {(float(XS[j]), float(YS[i])) for i, j in zip(*np.nonzero(bad))}
    figs = plot.figures(str(write_map(tmp_path / "curv.zarr", got)))
    drawn = [n for n in figs if "hessian" in n]
    assert set(drawn) >= {"hessian_max", "hessian_min", "hessian_ratio", "hessian_residual", "hessian_ratio_map"}
    for name in drawn:
        marks = [ln for ax in figs[name].axes for ln in ax.lines if ln.get_marker() == "x"]
        assert len(marks) == 1, name
        assert set(zip(map(float, marks[0].get_xdata()), map(float, marks[0].get_ydata()))) == want, name
        assert f"{len(want)} point(s) not converged" in marks[0].get_label()
    for f in figs.values():
        plt.close(f)


def test_weights_only_is_the_dense_hessian_over_tensors_of_dimension_above_one():
    factory, model, x, y = tiny_problem()
    layout = StateLayout.of(model)
    ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, y, "cross_entropy", EvalOptions(), "cpu")
    op = RestrictedOperator.of(operator_at(ev, factory().eval(), [0.0]), select(layout, ["weights"]))
    h = dense_hessian(factory(), model.state_dict(), x, y)
    keep = np.concatenate([np.full(p.numel(), p.dim() > 1) for _, p in model.named_parameters()])
    assert op.size == int(keep.sum()) < h.shape[0]
    w = np.linalg.eigvalsh(h[np.ix_(keep, keep)])
    e = eigenpairs(op, 1, op.size, 1e-5, seed=0, each=True)
    assert e.values[0] == pytest.approx(w[-1], rel=1e-4) and e.smallest == pytest.approx(w[0], rel=1e-4)


def test_reported_residuals_bound_the_true_ones():
    factory, model, x, y = tiny_problem()
    layout = StateLayout.of(model)
    ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, y, "cross_entropy", EvalOptions(), "cpu")
    h = dense_hessian(factory(), model.state_dict(), x, y)
    for steps in (6, 12, 30):  # unconverged and converged runs alike
        e = eigenpairs(operator_at(ev, factory().eval(), [0.0]), 3, steps, 1e-9, seed=0)
        for i in range(3):
            v = e.vectors[i].double().numpy()
            assert np.linalg.norm(h @ v - e.values[i] * v) <= e.residuals[i] * 1.001 + 1e-7, (steps, i)
        v = e.smallest_vector.double().numpy()
        assert np.linalg.norm(h @ v - e.smallest * v) <= e.smallest_residual * 1.001 + 1e-7, steps


def test_slq_broadening_keeps_the_quadratures_mass_below_zero():
    from landscape.slq import NEGATIVE_MASS_TOL, negative_mass, spectral_density, spread_of

    factory, model, x, y = tiny_problem()
    layout = StateLayout.of(model)
    ev = point_evaluator(factory, layout, layout.flatten(model.state_dict()), x, y, "cross_entropy", EvalOptions(), "cpu")
    op = operator_at(ev, factory().eval(), [0.0])
    w = np.linalg.eigvalsh(dense_hessian(factory(), model.state_dict(), x, y))
    d = spectral_density(op, runs=4, iterations=57, seed=1, sigma_rel=0.05, points=4000)
    requested = 0.05 * spread_of(d.nodes)
    # the requested width would smear mass across zero; the chosen one keeps the quadrature's share
    assert abs(negative_mass(d.nodes, d.weights, requested) - d.negative_mass) > NEGATIVE_MASS_TOL
    assert d.sigma < requested and abs(d.plotted_negative_mass - d.negative_mass) <= NEGATIVE_MASS_TOL
    below = d.grid < 0  # the plotted curve's own area up to 0 (the last panel closed at 0 by interpolation)
    area = np.trapezoid(np.append(d.values[below], np.interp(0.0, d.grid, d.values)), np.append(d.grid[below], 0.0))
    assert area == pytest.approx(d.plotted_negative_mass, abs=NEGATIVE_MASS_TOL)
    assert d.negative_mass == pytest.approx((w < 0).mean(), abs=0.1)  # the eigenvalues' own share, estimated

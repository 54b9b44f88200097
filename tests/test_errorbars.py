"""Standard errors on every grid point: checked against numpy over per-sample values from an independent loop."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.slices import random_slice

from .independent import state_at
from .test_evaluator import MODES, _digits_problem


def _per_sample(model, state, x, y, loss="cross_entropy", batch=64):
    """Per-sample losses and hits, mini-batch by mini-batch with load_state_dict (no evaluator code)."""
    model.load_state_dict(state)
    model.eval()
    losses, hits = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i : i + batch])
            if loss == "cross_entropy":
                losses.append(F.cross_entropy(out, y[i : i + batch], reduction="none"))
                hits.append((out.argmax(1) == y[i : i + batch]).double())
            else:
                losses.append(F.mse_loss(out, y[i : i + batch], reduction="none").flatten(1).mean(1))
    return torch.cat(losses).double().numpy(), (torch.cat(hits).numpy() if hits else None)


def _sem(v):
    return np.std(v, ddof=1) / np.sqrt(len(v))


def _coords(xs, ys):
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], 1)


@pytest.mark.parametrize("mode", ["plain", "shortcut", "vmap-k4"])
def test_loss_and_accuracy_se_match_numpy_over_independent_per_sample_values(mode):
    factory, sl, x, y = _digits_problem()
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=MODES[mode]), device="cpu")
    xs, ys = np.array([-0.8, 0.0, 0.45]), np.array([-0.3, 1.1])  # 2 rows x 3 cols
    got = ev.evaluate(_coords(xs, ys))
    model = factory()
    origin, dirs = sl.layout.unflatten(sl.origin), [sl.layout.unflatten(d) for d in sl.directions]
    for p, (cx, cy) in enumerate(_coords(xs, ys)):
        losses, hits = _per_sample(model, {**model.state_dict(), **state_at(model, origin, dirs, (cx, cy))}, x, y)
        assert got["loss"][p] == pytest.approx(losses.mean(), rel=1e-5)
        assert got["loss_se"][p] == pytest.approx(_sem(losses), rel=1e-5), p
        assert got["accuracy_se"][p] == pytest.approx(_sem(hits), rel=1e-5), p
        assert got["loss_se"][p] > 0 and got["accuracy_se"][p] > 0


def test_mse_se_is_over_per_sample_means_of_the_output_elements():
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(50, 5, generator=g), torch.randn(50, 3, generator=g)
    factory = ModelFactory("linear", (5,), 3, seed=2)
    model = factory()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=4, normalization="none", ignore="none")
    ev = Evaluator(ScanProblem(factory, sl, x, t, loss="mse", options=EvalOptions(data_chunk=16)), device="cpu")
    xs, ys = np.array([-1.0, 0.7]), np.array([0.2, 2.0, 3.0])
    got = ev.evaluate(_coords(xs, ys))
    origin, dirs = layout.unflatten(sl.origin), [layout.unflatten(d) for d in sl.directions]
    for p, (cx, cy) in enumerate(_coords(xs, ys)):
        losses, _ = _per_sample(model, state_at(model, origin, dirs, (cx, cy)), x, t, loss="mse")
        assert got["loss"][p] == pytest.approx(losses.mean(), rel=1e-5)
        assert got["loss_se"][p] == pytest.approx(_sem(losses), rel=1e-5)
    assert np.isnan(got["accuracy"]).all() and np.isnan(got["accuracy_se"]).all()  # regression


def test_a_scan_stores_se_arrays_plots_the_relative_error_and_status_reports_its_largest(ray_cluster, tiny_run, tmp_path):
    import zarr

    from jobs.service.remote import progress_lines
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec

    from .conftest import scan_spec_dict

    out = tmp_path / "se.zarr"
    run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run)), out=str(out))
    g = zarr.open_group(str(out), mode="r")
    loss, se = g["loss"][...], g["loss_se"][...]
    assert loss.shape == se.shape == (7, 11) and (se > 0).all() and g["accuracy_se"].shape == (7, 11)
    assert g["loss_se"].metadata.dimension_names == ("y", "x")
    plots = sorted(p.name for p in (tmp_path / "se-plots").iterdir())
    assert "loss_relative_se.png" in plots and "loss_se.png" not in plots and "accuracy_se.png" not in plots
    rel = se / loss
    i, j = np.unravel_index(np.argmax(rel), rel.shape)
    line = [ln for ln in progress_lines(str(out)) if ln.startswith("largest relative SE of loss")]
    assert line == [f"largest relative SE of loss so far: {100 * float(rel[i, j]):.3g}% "
                    f"(at y {g['y'][i]:.4g}, x {g['x'][j]:.4g})"]

"""Sequential evaluation: each point takes data step by step until the relative SE of its loss is below the tolerance.

Checked against numpy: the stopping step each point should reach, recomputed from per-sample losses of an
independent loop; and on the cluster: bit-identical whatever the actors, tiles or a killed and resumed driver.
"""

import numpy as np
import pytest
import torch
import zarr

from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.sequential import Sequential, stratified_order
from landscape.slices import random_slice

from .independent import state_at
from .test_errorbars import _coords, _per_sample, _sem
from .test_evaluator import _digits_problem


def _expected_stop(losses: np.ndarray, rule: Sequential) -> int:
    """Samples a point should use: the first step end where it has min_samples and sem <= tol * mean, else all."""
    n = len(losses)
    for end in range(rule.step, n + rule.step, rule.step):
        end = min(end, n)
        v = losses[:end]
        if end >= min(rule.min_samples, n) and _sem(v) <= rule.tolerance * abs(v.mean()):
            return end
    return n


def test_the_order_is_a_seeded_permutation_whose_prefixes_keep_the_class_proportions():
    y = torch.tensor([0] * 500 + [1] * 300 + [2] * 200)[torch.randperm(1000, generator=torch.Generator().manual_seed(5))]
    order = stratified_order(y, seed=3)
    assert sorted(order.tolist()) == list(range(1000))
    assert torch.equal(order, stratified_order(y, seed=3)) and not torch.equal(order, stratified_order(y, seed=4))
    for prefix in (10, 50, 137, 600):
        counts = torch.bincount(y[order[:prefix]], minlength=3).numpy()
        assert np.all(np.abs(counts - prefix * np.array([0.5, 0.3, 0.2])) <= 1.0), (prefix, counts)


@pytest.mark.parametrize("points_per_pass", [1, 4])
def test_each_point_stops_where_numpy_says_and_its_values_are_those_of_the_samples_it_used(points_per_pass):
    factory, sl, x, y = _digits_problem(subset=600)
    rule = Sequential(tolerance=0.02, min_samples=100, step=50, seed=1)
    options = EvalOptions(points_per_pass=points_per_pass, data_chunk=32)  # chunks cut inside steps
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=options, sequential=rule), device="cpu")
    xs, ys = np.array([-1.5, -0.2, 0.0, 0.3, 2.5]), np.array([-0.6, 0.1, 1.8])  # 3 rows x 5 cols
    got = ev.evaluate(_coords(xs, ys))
    order = stratified_order(y, seed=1).numpy()
    model = factory()
    origin, dirs = sl.layout.unflatten(sl.origin), [sl.layout.unflatten(d) for d in sl.directions]
    for p, (cx, cy) in enumerate(_coords(xs, ys)):
        losses, hits = _per_sample(model, {**model.state_dict(), **state_at(model, origin, dirs, (cx, cy))}, x, y)
        losses, hits = losses[order], hits[order]
        used = _expected_stop(losses, rule)
        assert got["samples"][p] == used, p
        assert got["loss"][p] == pytest.approx(losses[:used].mean(), rel=1e-5)
        assert got["loss_se"][p] == pytest.approx(_sem(losses[:used]), rel=1e-5)
        assert got["accuracy"][p] == pytest.approx(hits[:used].mean(), rel=1e-6)
    assert len(set(got["samples"].tolist())) >= 3  # points stopped at different steps: the rule was exercised
    assert got["samples"].min() >= 100 and got["samples"].max() <= 600


def test_values_do_not_depend_on_which_points_share_a_call():
    factory, sl, x, y = _digits_problem(subset=400)
    rule = Sequential(tolerance=0.01, min_samples=60, step=40, seed=0)
    ev = Evaluator(ScanProblem(factory, sl, x, y, sequential=rule), device="cpu")
    coords = _coords(np.linspace(-1.2, 0.9, 6), np.array([-0.5, 0.4]))
    together = ev.evaluate(coords)
    alone = [ev.evaluate(coords[i : i + 1]) for i in range(len(coords))]
    reversed_ = ev.evaluate(coords[::-1])
    for name, v in together.items():
        assert np.array_equal(v, np.concatenate([a[name] for a in alone])), name
        assert np.array_equal(v, reversed_[name][::-1]), name


def test_a_point_with_zero_variance_stops_at_min_samples():
    # At coordinate 0 every weight is 0: the MLP outputs zeros, each sample's loss is log(10) exactly.
    factory = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [8]}, seed=0)
    layout = StateLayout.of(factory())
    sl = random_slice(layout, torch.zeros(layout.size), 2, seed=2, normalization="none", ignore="none")
    from jobs.common.build import load_data
    from jobs.specs import DigitsData

    x, y = load_data(DigitsData(kind="digits", subset=500))
    rule = Sequential(tolerance=1e-6, min_samples=120, step=40, seed=0)
    got = Evaluator(ScanProblem(factory, sl, x, y, sequential=rule), device="cpu").evaluate(np.array([[0.0, 0.0], [0.7, -0.4]]))
    assert got["samples"][0] == 120 and got["loss_se"][0] == 0.0
    assert got["loss"][0] == pytest.approx(np.log(10), rel=1e-6)
    assert got["samples"][1] == 500  # a point with spread cannot reach 1e-6: it takes all the data


# -- on the cluster ---------------------------------------------------------------------------------------

SEQ_DATA = {"kind": "digits", "subset": 240, "seed": 0, "tolerance": 0.03, "min_samples": 40, "step": 20}


def _arrays(out) -> dict[str, np.ndarray]:
    g = zarr.open_group(str(out), mode="r")
    return {k: g[k][...] for k in ("loss", "loss_se", "accuracy", "accuracy_se", "samples")}


@pytest.fixture(scope="module")
def sequential_scan(ray_cluster, tiny_run, tmp_path_factory):
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec

    from .conftest import scan_spec_dict

    out = tmp_path_factory.mktemp("seq") / "seq.zarr"
    run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run, data=SEQ_DATA)), out=str(out), actors=2, plot=False)
    return out


def test_a_sequential_scan_is_bit_identical_across_actors_and_tile_shapes(sequential_scan, tiny_run, tmp_path):
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec

    from .conftest import scan_spec_dict

    base = _arrays(sequential_scan)
    assert np.isfinite(base["samples"]).all() and 40 <= base["samples"].min() < base["samples"].max() <= 240
    for actors, tile in [(1, [3, 4]), (2, [5, 2])]:
        other = tmp_path / f"a{actors}.zarr"
        run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run, data=SEQ_DATA, tile=tile)), out=str(other), actors=actors, plot=False)
        for name, v in _arrays(other).items():
            assert np.array_equal(v, base[name]), (actors, tile, name)


@pytest.mark.ray
def test_a_killed_sequential_driver_resumes_to_the_same_bits(ray_cluster, tmp_path, capsys):
    from jobs.cli import main
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec

    from .procs import alive, kill_driver
    from .slow_factories import line_checkpoints
    from .test_faults import TILES, spec_dict, start_driver, tiles_done, wait_for, write_spec

    ckpts = line_checkpoints(tmp_path)
    data = {"kind": "import", "factory": "tests.user_factories:make_data", "kwargs": {"n": 60},
            "tolerance": 0.05, "min_samples": 10, "step": 10}
    base = tmp_path / "base.zarr"
    run_scan(ScanSpec.model_validate({**spec_dict(ckpts, name="seq"), "data": data}), out=str(base), plot=False)
    out = tmp_path / "killed.zarr"
    spec = write_spec(tmp_path, {**spec_dict(ckpts, name="seq", delay=0.05), "data": data})
    p = start_driver([spec, "--out", str(out)], tmp_path / "driver.log")
    try:
        wait_for(lambda: tiles_done(out) >= 2, 120, "two stored tiles", p)
    finally:
        leftovers = kill_driver(p)
    assert not any(alive(pid) for pid in leftovers)
    assert 2 <= tiles_done(out) < TILES
    assert main(["run", spec, "--out", str(out), "--no-plot"]) == 0
    assert "resuming" in capsys.readouterr().err
    want, got = _arrays(base), _arrays(out)
    assert 10 <= want["samples"].min() and len(set(want["samples"].tolist())) >= 2
    for name in want:
        assert np.array_equal(got[name], want[name]), name

"""Learning-rate scans on a real local Ray: collapse at high rates, actor-count independence, faults, resume, bisection.

The setup is small enough for CI: a 12-layer tanh deep_mlp (width 32, init_gain
1.8) on 300 digits, 3 epochs per rate, 8 rates from 1e-4 to 10. Measured: rates
up to ~0.1 keep their median gradient (ratios 0.4..12 per epoch); from ~0.3 up
it collapses by more than a decade within an epoch (or vanishes entirely).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from matplotlib.image import imread

from cluster.store import ResultStore
from jobs.cli import main
from jobs.health.lr_bisect import run_bisect
from jobs.health.lr_scan import ROW_ARRAYS, build_lr_problem, run_lr_scan
from jobs.specs import LRScanSpec
from landscape.lr_search import (
    LRRun,
    collapsed,
    derived,
    interior,
    steepest_descent,
    transition,
)

pytestmark = pytest.mark.ray

MODEL = {"kind": "deep_mlp", "options": {"depth": 12, "width": 32, "activation": "tanh", "init_gain": 1.8}}
LOW, HIGH = 3, 3  # the lowest 3 rates never collapse, the highest 3 always do


def spec_dict(**over) -> dict:
    d = {
        "name": "tiny-lr",
        "model": MODEL,
        "data": {"kind": "digits", "subset": 300},
        "learning_rates": {"lo": 1e-4, "hi": 10.0, "num": 8},
        "epochs": 3,
        "batch_size": 32,
        "range_test": {"enabled": False},
        "bisect": {"tolerance": 0.1, "probes": 3},
    }
    d.update(over)
    return d


def stored(out) -> dict[str, np.ndarray]:
    g = zarr.open_group(str(out), mode="r")
    return {k: g[k][...] for k in (*ROW_ARRAYS, "lr", "diverged", "collapsed", "lr_done")}


def assert_identical(a: dict, b: dict) -> None:
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), k  # bit-identical (NaN where NaN)


@pytest.fixture(scope="module")
def scans(ray_cluster, tmp_path_factory):
    """The same scan with 1 and with 2 actors."""
    root = tmp_path_factory.mktemp("lr")
    spec = LRScanSpec.model_validate(spec_dict())
    one = run_lr_scan(spec, out=str(root / "one.zarr"), actors=1, plot=False)
    two = run_lr_scan(spec, out=str(root / "two.zarr"), actors=2)
    return spec, one, two, root


def test_one_and_two_actors_give_bit_identical_results(scans):
    _, one, two, _ = scans
    a, b = stored(one), stored(two)
    assert a["lr_done"].all() and b["lr_done"].all()
    assert_identical(a, b)
    assert ResultStore.open(two).meta["actors"] == 2 and ResultStore.open(one).meta["actors"] == 1


def test_collapse_at_the_highest_rates_and_none_at_the_lowest(scans):
    spec, one, _, _ = scans
    r = stored(one)
    np.testing.assert_allclose(r["lr"], np.geomspace(1e-4, 10.0, 8))
    assert r["collapsed"][-HIGH:].all() and not r["collapsed"][:LOW].any()
    # What collapse means, recomputed from the stored medians: a fall below 0.1x within one epoch, or no gradient left.
    for row, div in zip(r["median_log10_grad"], r["diverged"]):
        steps = np.diff(row)
        want = bool(div) or bool(np.any(steps < math.log10(spec.collapse_ratio))) or not np.isfinite(row[1:]).all()
        assert collapsed(row, div, spec.collapse_ratio) == want
    # The lowest rates: every epoch keeps the median gradient within a factor 2 of the epoch before.
    assert np.all(np.abs(np.log10(r["grad_ratio"][:LOW, 1:])) < math.log10(2))
    meta = ResultStore.open(one).meta
    t = transition(r["lr"], r["collapsed"])
    assert meta["breakthrough"] == t.breakthrough and meta["first_collapse"] == t.first_collapse
    assert t.breakthrough < t.first_collapse and meta["status"] == "complete"


def test_one_rate_matches_a_plain_pytorch_loop(scans):
    """Rate 4 recomputed without the project's training loop or statistics: SGD, the seeded order, the one-liner."""
    spec, one, _, _ = scans
    r = stored(one)
    problem, _ = build_lr_problem(spec)
    lr = float(r["lr"][4])
    torch.manual_seed(0)
    model = problem.factory()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = problem.inputs, problem.targets
    medians, accs = [], []

    def measure():
        model.zero_grad()
        out = model(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        p = dict(model.named_parameters())["hidden.0.weight"]
        medians.append(p.grad.view(-1)[p.grad.view(-1) != 0].abs().log10().median().item())
        accs.append((out.argmax(1) == y).float().mean().item())

    measure()
    for _ in range(3):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 32):
            idx = order[s : s + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        measure()
    np.testing.assert_allclose(r["median_log10_grad"][4], medians, rtol=0, atol=2e-3)  # threads differ: last digits may
    np.testing.assert_allclose(r["accuracy"][4], accs, atol=1 / 300 + 1e-9)
    ratio, gain = derived(np.array(medians), np.array(accs))
    np.testing.assert_allclose(r["grad_ratio"][4, 1:], ratio[1:], rtol=1e-2)


def test_result_reads_with_xarray_and_plots(scans):
    _, _, two, _ = scans
    ds = xr.open_zarr(two)
    assert ds["grad_ratio"].dims == ("lr", "epoch") and ds["grad_ratio"].shape == (8, 4)
    assert list(ds["epoch"].values) == [0, 1, 2, 3]
    np.testing.assert_allclose(ds["lr"].values, np.geomspace(1e-4, 10.0, 8))
    assert np.isnan(ds["grad_ratio"].values[:, 0]).all()
    plots = two.removesuffix(".zarr") + "-plots"
    for name in ("lr_scan", "lr_median_gradient"):
        img = imread(f"{plots}/{name}.png")
        assert img.shape[0] > 300 and img.std() > 0.05


def test_a_killed_actors_rate_is_redone_and_the_result_is_unchanged(scans, tmp_path):
    """An actor SIGKILLs itself mid-run (once, in whichever actor gets there first): same bits as undisturbed."""
    import os

    _, _, two, _ = scans
    marker = tmp_path / "died"
    model = {"kind": "import", "factory": "tests.health_factories:dying_once",
             "options": {"marker": str(marker), "driver_pid": os.getpid(), **MODEL["options"]}}
    spec = LRScanSpec.model_validate(spec_dict(model=model))
    out = run_lr_scan(spec, out=str(tmp_path / "killed.zarr"), actors=2, plot=False)
    assert marker.exists()  # an actor did die
    meta = ResultStore.open(out).meta
    assert meta["actor_deaths"] >= 1 and meta["track"] == "inner.hidden.0.weight"
    assert_identical(stored(out), stored(two))


def test_an_interrupted_scan_resumes_with_only_the_missing_rates(scans, tmp_path, capsys):
    spec, _, two, _ = scans
    out = tmp_path / "resumed.zarr"
    shutil.copytree(two, out)
    g = zarr.open_group(str(out), mode="r+")
    for i in (2, 5):  # as a driver killed before these rates were stored leaves them
        for k in ROW_ARRAYS:
            g[k][i] = np.nan
        g["lr_done"][i] = 0
    ResultStore(g, str(out)).update_meta(status="interrupted")
    run_lr_scan(spec, out=str(out), actors=2, plot=False)
    err = capsys.readouterr().err
    assert "2 of 8 rates left to train" in err
    assert err.count("[tiny-lr] lr ") == 2  # only those two were trained
    assert_identical(stored(out), stored(two))
    assert ResultStore.open(str(out)).meta["status"] == "complete"


def test_bisection_lands_within_its_tolerance_of_the_scans_transition(scans, tmp_path, capsys):
    spec, one, _, _ = scans
    r = stored(one)
    scan = transition(r["lr"], r["collapsed"])
    out = run_bisect(spec, out=str(tmp_path / "bisect.zarr"), actors=2)
    meta = ResultStore.open(out).meta
    good, bad = meta["breakthrough"], meta["first_collapse"]
    tol = spec.bisect.tolerance
    assert meta["converged"] and math.log10(bad / good) <= tol + 1e-12
    # Within the tolerance of the scan's transition [breakthrough, first collapse] (where a monotone threshold lies
    # in both brackets; near it collapse need not be monotone in the rate, hence the tolerance on both sides).
    assert scan.breakthrough / 10**tol <= good <= scan.first_collapse * 10**tol
    assert scan.breakthrough / 10**tol <= bad <= scan.first_collapse * 10**tol
    err = capsys.readouterr().err
    rounds = meta["rounds"]
    assert all(f"round {k}:" in err for k in range(1, len(rounds) + 1)) and "bisection: breakthrough" in err
    # Round 1 probes lo, hi and 3 rates between; later rounds 3 rates inside the previous bracket.
    assert len(rounds[0]["lrs"]) == 5 and all(len(x["lrs"]) == 3 for x in rounds[1:])
    for prev, cur in zip(rounds, rounds[1:]):
        assert all(prev["breakthrough"] < lr < prev["first_collapse"] for lr in cur["lrs"])
    ds = xr.open_zarr(out)  # rows in the order probed, trimmed to those used
    assert ds.sizes["lr"] == 5 + 3 * (len(rounds) - 1) and np.isfinite(ds["lr"].values).all()
    # The probe just below the collapse, rerun here on one thread as the actors run: the same bits. (Near the
    # transition the outcome hangs on rounding: with torch's default threads this very rate collapsed in epoch 3.)
    problem, _ = build_lr_problem(spec)
    i = int(np.flatnonzero(ds["lr"].values == good)[0])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        direct = LRRun(problem).evaluate(good)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(direct["median_log10_grad"], ds["median_log10_grad"].values[i])
    assert not collapsed(direct["median_log10_grad"], direct["diverged"], spec.collapse_ratio)
    img = imread(out.removesuffix(".zarr") + "-plots/lr_scan.png")
    assert img.std() > 0.05
    # Run again: every probe is stored, nothing is trained, the same answer.
    capsys.readouterr()
    run_bisect(spec, out=out, actors=2, plot=False)
    err = capsys.readouterr().err
    assert "[tiny-lr] lr " not in err and ResultStore.open(out).meta["breakthrough"] == good


def test_steepest_descent_and_interior_closed_forms():
    lrs = np.geomspace(1e-4, 1, 41)
    x = np.log10(lrs)
    smooth = 2 - np.tanh(2 * (x + 2))  # falls fastest at log10 lr = -2
    smooth[35:] = np.nan
    assert steepest_descent(lrs, smooth) == pytest.approx(1e-2)
    np.testing.assert_allclose(interior(1e-3, 1e-1, 3), [10**-2.5, 1e-2, 10**-1.5])
    t = transition([1, 0.1, 10, 0.01], [True, False, True, False])
    assert (t.breakthrough, t.first_collapse) == (0.1, 1)
    assert transition([1, 2], [True, True]).breakthrough is None and transition([1, 2], [False, False]).first_collapse is None


def test_diverged_runs_are_recorded_and_shown_and_the_range_test_stops_on_divergence(ray_cluster, tmp_path, capsys):
    """ReLU at absurd rates overflows to a non-finite loss: recorded as diverged (and collapsed), plotted, no error.
    The range test beside it (1e-4 .. 1e4 in 120 steps) must stop on divergence before its last step."""
    model = {"kind": "deep_mlp", "options": {"depth": 3, "width": 16, "activation": "relu", "init_gain": 3.0}}
    spec = LRScanSpec.model_validate(spec_dict(model=model, learning_rates={"lo": 1e-3, "hi": 1e12, "num": 3}, epochs=2,
                                               range_test={"lo": 1e-4, "hi": 1e4, "steps": 120}))
    out = tmp_path / "div.zarr"
    assert main(["lr-scan", _write(tmp_path, spec), "--out", str(out), "--actors", "1"]) == 0
    r = stored(out)
    assert r["diverged"][-1] >= 1 and r["collapsed"][-1] and r["diverged"][0] == 0
    assert np.isnan(r["median_log10_grad"][-1, r["diverged"][-1]:]).all()
    err = capsys.readouterr().err
    assert "diverged in epoch" in err
    assert imread(str(tmp_path / "div-plots" / "lr_scan.png")).std() > 0.05
    # The range test.
    rt = ResultStore.open(str(out)).meta["range_test"]
    g = zarr.open_group(str(out), mode="r")
    lr, loss, smooth = g["range_lr"][...], g["range_loss"][...], g["range_smoothed_loss"][...]
    np.testing.assert_allclose(lr, np.geomspace(1e-4, 1e4, 120))
    assert rt["stopped_on_divergence"] and rt["steps_run"] < 120
    k = int(np.isfinite(smooth).sum())
    avg, want = 0.0, []  # the smoothed loss, recomputed: bias-corrected moving average, beta 0.98
    for i in range(k):
        avg = 0.98 * avg + 0.02 * loss[i]
        want.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(smooth[:k], want, rtol=1e-12)
    assert rt["suggestion"] == steepest_descent(lr, smooth) and 1e-4 <= rt["suggestion"] <= 1e4
    assert "range test: steepest descent at lr" in err and "lr scan: 3 runs in" in err and "wall" in err


def _write(folder, spec: LRScanSpec) -> str:
    import yaml

    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True)))
    return str(path)

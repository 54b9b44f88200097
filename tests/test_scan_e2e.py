"""End to end through a real local Ray: spec -> tiles -> 2 actors -> Zarr -> plots."""

import numpy as np
import pytest
import xarray as xr
import zarr
from matplotlib.image import imread

from cluster.store import ResultStore
from jobs.scan.point import point_state
from jobs.scan.run import run_scan
from jobs.specs import ScanSpec
from landscape.checkpoints import load_state
from landscape.factories import ModelFactory

from .conftest import scan_spec_dict
from .independent import reference_loss

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def two_actor_result(ray_cluster, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("scan") / "plane.zarr"
    spec = ScanSpec.model_validate(scan_spec_dict(tiny_run))
    run_scan(spec, out=str(out), actors=2)
    return spec, out


def test_result_opens_with_xarray_with_labelled_coordinates(two_actor_result):
    spec, out = two_actor_result
    ds = xr.open_zarr(out)
    assert ds["loss"].dims == ("y", "x")
    assert ds["loss"].shape == (7, 11)
    np.testing.assert_allclose(ds["x"].values, np.linspace(-1.0, 0.6, 11))
    np.testing.assert_allclose(ds["y"].values, np.linspace(-0.4, 1.2, 7))
    assert np.isfinite(ds["loss"].values).all()
    meta = ResultStore.open(str(out)).meta
    assert meta["status"] == "complete" and meta["precision"] == "fp32"
    assert meta["evals_per_second"] > 0 and meta["versions"]["torch"]
    # Every CPU actor makes the same plan (a fixed budget), recorded once.
    [plan] = meta["evaluator_plans"]
    assert plan["precision"] == "fp32" and plan["points_per_pass"] == 1 and plan["shortcut"]
    assert ResultStore.open(str(out)).done_mask().all()


def test_grid_values_match_an_independent_evaluation(two_actor_result, tiny_run):
    spec, out = two_actor_result
    from jobs.common.build import load_data

    x, y = load_data(spec.data)
    model = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()
    loss = zarr.open_group(str(out), mode="r")["loss"][...]
    xs, ys = np.linspace(-1.0, 0.6, 11), np.linspace(-0.4, 1.2, 7)
    for i, j in [(0, 0), (6, 10), (2, 9), (5, 1)]:
        state = point_state(str(out), xs[j], ys[i])  # the weights `landscape point` writes
        want, _ = reference_loss(model, state, x, y)
        assert loss[i, j] == pytest.approx(want, rel=1e-5)
    # The center is the checkpoint itself.
    center = load_state(tiny_run / "epoch_003.pt", model)
    origin = point_state(str(out), 0.0, 0.0)
    for k, v in center.items():
        assert np.array_equal(origin[k].numpy(), v.numpy()), k


def test_plots_are_written_and_not_blank(two_actor_result):
    _, out = two_actor_result
    plots = out.with_name("plane-plots")
    for name in ("contour", "heatmap", "surface", "accuracy"):
        img = imread(plots / f"{name}.png")
        assert img.std() > 0.05, name


def test_one_actor_two_actors_and_two_tile_sizes_give_identical_arrays(two_actor_result, tiny_run, tmp_path):
    spec, out = two_actor_result
    base = zarr.open_group(str(out), mode="r")
    for actors, tile in [(1, [3, 4]), (2, [5, 2])]:
        other = tmp_path / f"a{actors}.zarr"
        run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run, tile=tile)), out=str(other), actors=actors, plot=False)
        g = zarr.open_group(str(other), mode="r")
        for name in ("loss", "loss_se", "accuracy", "accuracy_se"):
            assert np.array_equal(g[name][...], base[name][...]), (actors, tile, name)


def test_a_partial_result_resumes_only_its_missing_tiles(two_actor_result, tiny_run, tmp_path, capsys):
    spec, out = two_actor_result
    import shutil

    part = tmp_path / "part.zarr"
    shutil.copytree(out, part)
    g = zarr.open_group(str(part), mode="r+")
    done = g["tile_done"][...]
    done[1:, :] = 0  # pretend only the first row of tiles finished
    g["tile_done"][...] = done
    g["loss"][3:, :] = np.nan
    store = ResultStore(g)
    store.update_meta(status="running")
    run_scan(spec, out=str(part), plot=False)
    assert "resuming" in capsys.readouterr().err
    assert np.array_equal(zarr.open_group(str(part), mode="r")["loss"][...], zarr.open_group(str(out), mode="r")["loss"][...])


def test_line_between_two_checkpoints(ray_cluster, tiny_run, tmp_path):
    d = scan_spec_dict(tiny_run, name="tiny-line", tile=4)
    d["slice"] = {"kind": "line_between", "checkpoints": [str(tiny_run / "epoch_000.pt"), str(tiny_run / "epoch_003.pt")]}
    d["grid"] = {"x": {"min": -0.5, "max": 1.5, "num": 9}}
    out = tmp_path / "line.zarr"
    run_scan(ScanSpec.model_validate(d), out=str(out))
    ds = xr.open_zarr(out)
    assert ds["loss"].dims == ("x",)
    from jobs.common.build import load_data

    x, y = load_data(ScanSpec.model_validate(d).data)
    model = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()
    for k, name in [(2, "epoch_000.pt"), (6, "epoch_003.pt")]:  # alpha = 0 and 1
        want, _ = reference_loss(model, load_state(tiny_run / name, model), x, y)
        assert float(ds["loss"][k]) == pytest.approx(want, rel=1e-5)
    assert (tmp_path / "line-plots" / "curve.png").exists()


def test_local_ray_binds_to_loopback_only(ray_cluster):
    # Ray 2.60 swaps 127.0.0.1 for the machine's outward address unless told otherwise.
    assert [n["NodeManagerAddress"] for n in ray_cluster.nodes() if n["Alive"]] == ["127.0.0.1"]

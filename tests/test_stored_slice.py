"""A resumed or finished scan of a costly slice kind reads its stored slice instead of computing it again, and
`landscape point` reads the same stored slice."""

import numpy as np
import pytest
import zarr

from cluster.store import ResultStore
from jobs.scan.problem import SLICE_KINDS
from jobs.scan.run import run_scan
from jobs.specs import ScanSpec

from .conftest import scan_spec_dict

GRID = {"x": {"min": -0.5, "max": 0.3, "num": 5}, "y": {"min": -0.2, "max": 0.4, "num": 4}}


def test_costly_kinds_are_marked():
    assert {k for k, v in SLICE_KINDS.items() if v.costly} == {"hessian_plane", "trajectory_pca"}


def test_resumed_and_finished_hessian_plane_scans_read_their_stored_plane(ray_cluster, tiny_run, tmp_path, monkeypatch, capsys):
    d = scan_spec_dict(tiny_run, name="stored-hplane", grid=GRID, tile=[2, 3])
    d["slice"] = {"kind": "hessian_plane", "checkpoint": str(tiny_run / "epoch_003.pt"), "iterations": 100, "tol": 1e-5}
    spec = ScanSpec.model_validate(d)
    out = str(tmp_path / "hp.zarr")
    run_scan(spec, out=out, actors=1, plot=False)
    g = zarr.open_group(out, mode="r+")
    loss, dirs = g["loss"][...], g["directions"][...]

    def no_lanczos(*a, **k):
        raise AssertionError("the Hessian plane was computed again")

    monkeypatch.setattr("jobs.curvature.plane.hessian_plane_of", no_lanczos)
    with pytest.raises(AssertionError, match="computed again"):  # a new output still computes it
        run_scan(spec, out=str(tmp_path / "new.zarr"), actors=1, plot=False)
    g["tile_done"][0, 0] = 0  # an interrupted run: one tile left
    g["loss"][0:2, 0:3] = np.nan
    ResultStore(g, out).update_meta(status="interrupted")
    capsys.readouterr()
    run_scan(spec, out=out, actors=1, plot=False)
    err = capsys.readouterr().err
    assert "resuming" in err and "not computed again" in err
    g = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(g["directions"][...], dirs)
    np.testing.assert_allclose(g["loss"][...], loss, rtol=1e-6)
    run_scan(spec, out=out, actors=1, plot=False)
    assert "already complete" in capsys.readouterr().err

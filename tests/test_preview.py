"""Progressive preview: every p-th row and column first, the same values as a plain scan, no point twice."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import zarr

from cluster.preview import empty_pairs, evaluated_points, item_coords, preview_items, strides_of
from cluster.store import ResultStore
from cluster.tiling import make_tiles, tile_coords
from jobs import plot
from jobs.service.remote import progress_lines
from jobs.scan.run import run_scan
from jobs.specs import ScanSpec

from .conftest import scan_spec_dict
from .slow_factories import line_checkpoints
from .test_faults import arrays, spec_dict, subprocess_env, wait_for, write_spec
from .test_hardening import driver, finish


@pytest.mark.parametrize("grid, tile, p", [((13, 22), (4, 6), 4), ((9, 9), (3, 3), 8), ((37,), (5,), 16), ((24,), (2,), 8)])
def test_the_passes_partition_the_grid_coarsest_first(grid, tile, p):
    strides = strides_of(p)
    x = np.arange(grid[-1], dtype=float) * 0.5 - 1
    y = np.arange(grid[0], dtype=float) * 0.25 + 3 if len(grid) == 2 else None
    seen: dict[tuple, int] = {}
    last_level = 0
    for item in preview_items(grid, tile, strides, None):
        assert item.level >= last_level  # level by level
        last_level = item.level
        coords = item_coords(item, strides, x, y)
        assert len(coords) == int(item.mask(strides).sum()) > 0
        for c in map(tuple, coords):
            assert c not in seen, f"{c} evaluated twice"
            seen[c] = item.level
    everything = {tuple(c) for t in make_tiles(grid, tile) for c in tile_coords(t, x, y)}
    assert set(seen) == everything
    for k, s in enumerate(strides):  # after level k, every point of the stride-s sub-grid is known
        sub = {(xi,) if y is None else (xi, yi) for xi in x[::s] for yi in (y[::s] if y is not None else [None])}
        assert all(seen[c] <= k for c in sub)
    done = empty_pairs(grid, tile, strides)
    assert not evaluated_points(done, grid, tile, strides).any()
    assert evaluated_points(np.ones_like(done), grid, tile, strides).all()


@pytest.fixture(scope="module")
def plain(ray_cluster, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "plain.zarr"
    run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run)), out=str(out), actors=2, plot=False)
    return out


def test_a_preview_scan_ends_identical_to_a_plain_one(plain, tiny_run, tmp_path):
    out = tmp_path / "preview.zarr"
    run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run, preview=4)), out=str(out), actors=2, plot=True)
    a, b = zarr.open_group(str(out), mode="r"), zarr.open_group(str(plain), mode="r")
    for name in ("loss", "accuracy"):
        assert np.array_equal(a[name][...], b[name][...]), name  # (7, 11), non-square, bit for bit
    store = ResultStore.open(str(out))
    assert store.meta["status"] == "complete" and store.meta["preview"] == [4, 2, 1]
    assert store.done_mask().all() and np.asarray(a["preview_done"][...]).all()
    assert (out.with_name("preview-plots") / "contour.png").exists()


def test_an_interrupted_preview_plots_the_whole_line_coarse_then_resumes_identical(ray_cluster, tmp_path):
    ckpts = line_checkpoints(tmp_path)
    base = tmp_path / "base.zarr"
    run_scan(ScanSpec.model_validate(spec_dict(ckpts)), out=str(base), actors=2, plot=False)
    out, hold = tmp_path / "pv.zarr", tmp_path / "hold"
    spec = write_spec(tmp_path, {**spec_dict(ckpts, hold=str(hold)), "preview": 8})  # 24 points: x 0, 8, 16 first
    address = ray_cluster.get_runtime_context().gcs_address
    p = driver([spec, "--out", str(out)], tmp_path / "pv.log", address)
    try:
        def first_pass_done():
            try:
                return bool(np.asarray(zarr.open_group(str(out), mode="r")["preview_done"][0]).all())
            except Exception:
                return False

        wait_for(first_pass_done, 120, "the every-8th pass", p)
        hold.touch()
        os.killpg(p.pid, signal.SIGINT)
        assert p.wait(timeout=60) == 130
    finally:
        finish(p, 1)
    ls = plot.load(str(out))
    full_x = np.linspace(-0.5, 1.5, 24)
    assert ls.meta["preview_view"] in (8, 4, 2)
    s = ls.meta["preview_view"]
    assert np.array_equal(ls.x, full_x[::s]) and not ls.unfinished.any()  # the whole line, coarse, nothing missing
    assert np.array_equal(np.asarray(ls.loss), arrays(base)["loss"][::s])
    figs = plot.figures(str(out))
    try:
        from cluster.progress import every_nth

        assert f"(preview: {every_nth(s)} point;" in figs["curve"].axes[0].get_title()
    finally:
        import matplotlib.pyplot as plt

        for f in figs.values():
            plt.close(f)
    lines = progress_lines(str(out))
    assert any(ln.startswith("preview: every 8th 100%") for ln in lines), lines
    assert "result status: interrupted" in "\n".join(lines)
    hold.unlink()
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "jobs.cli", "run", spec, "--out", str(out), "--no-plot", "--address", address],
                       cwd=str(plain_repo()), env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "tile passes left to evaluate" in r.stderr
    for name, arr in arrays(base).items():
        assert np.array_equal(arrays(out)[name], arr), name


def plain_repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def test_preview_must_be_a_power_of_two(tiny_run):
    from pydantic import ValidationError

    for bad in (1, 3, 6, 512):
        with pytest.raises(ValidationError, match="power of two"):
            ScanSpec.model_validate(scan_spec_dict(tiny_run, preview=bad))

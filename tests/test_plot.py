"""Tests for jobs.plot: files written, non-blank, masked NaN/inf, orientation."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import zarr  # noqa: E402

from jobs import plot  # noqa: E402

# Grid chosen so the minimum (x=1, y=0.2) falls exactly on a grid point.
NX, NY = 31, 11
XS = np.linspace(-1.0, 2.0, NX)
YS = np.linspace(-0.5, 0.5, NY)
IX_MIN, IY_MIN = 20, 7


def asym_loss():
    X, Y = np.meshgrid(XS, YS)  # (ny, nx), row i <-> y[i]
    return (1 + (X - 1) ** 2 + 10 * (Y - 0.2) ** 2).astype(np.float32)


def write_result(path, loss, acc=None, x=XS, y=YS, status="complete", **meta):
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    dims = ("y", "x") if loss.ndim == 2 else ("x",)
    chunks = (8, 8) if loss.ndim == 2 else (8,)
    if acc is None:
        acc = np.full(loss.shape, np.nan, dtype=np.float32)
    for name, arr in (("loss", loss), ("accuracy", acc)):
        a = g.create_array(name, shape=arr.shape, dtype="float32", chunks=chunks,
                           dimension_names=dims, fill_value=np.nan)
        a[...] = arr
    g.create_array("x", shape=x.shape, dtype="float64", chunks=(8,), dimension_names=("x",))[...] = x
    if loss.ndim == 2:
        g.create_array("y", shape=y.shape, dtype="float64", chunks=(8,), dimension_names=("y",))[...] = y
    cps = meta.pop("checkpoints", [{"label": "center", "x": 0.0, "y": 0.0 if loss.ndim == 2 else None}])
    g.attrs["landscape"] = {
        "name": "test-run", "dims": loss.ndim, "status": status, "loss_kind": "cross_entropy",
        "slice_kind": "random_plane" if loss.ndim == 2 else "line_between",
        "checkpoints": cps, "precision": "fp32", **meta,
    }
    return path


def assert_nonblank(path):
    img = mpimg.imread(path)
    assert img.std() > 0.05, f"{path.name} looks blank"


def test_2d_writes_all_figures(tmp_path):
    plt.close("all")  # figures other tests left open (the Python API returns its figures open) are not ours
    acc = np.clip(1 - 0.1 * asym_loss(), 0, 1)
    res = write_result(tmp_path / "r.zarr", asym_loss(), acc)
    paths = plot.plot_result(res, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["accuracy.png", "contour.png", "heatmap.png", "surface.png"]
    for p in paths:
        assert p.exists()
        assert_nonblank(p)
    assert plt.get_fignums() == []  # everything closed


def test_grid_image_orientation(tmp_path):
    res = write_result(tmp_path / "r.zarr", asym_loss())
    img, extent = plot.grid_image(res)
    assert img.shape == (NY, NX)
    assert np.unravel_index(np.ma.argmin(img), img.shape) == (IY_MIN, IX_MIN)
    assert extent == (-1.0, 2.0, -0.5, 0.5)


def test_heatmap_pixels_orientation(tmp_path):
    """End to end: the rendered colour at data point (1, 0.2) is the colormap's
    lowest colour, and the far corner (-1, -0.5) is near the top of the scale."""
    res = write_result(tmp_path / "r.zarr", asym_loss(), checkpoints=[])
    figs = plot.figures(res)
    try:
        fig = figs["heatmap"]
        ax = fig.axes[0]
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
        h = rgba.shape[0]
        cmap = plt.get_cmap("viridis")

        def pixel(x, y, inset=(0, 0)):
            px, py = ax.transData.transform((x, y))
            return rgba[int(round(h - py - inset[1])), int(round(px + inset[0]))]

        assert np.allclose(pixel(1.0, 0.2), cmap(0.0)[:3], atol=0.03)
        # inset a few pixels so we sample inside the corner cell, not the frame
        corner = pixel(-1.0, -0.5, inset=(3, -3))
        assert np.allclose(corner, cmap(1.0)[:3], atol=0.05)
        # sanity: a flipped y would put the minimum at y=-0.2 instead
        assert not np.allclose(pixel(1.0, -0.2), cmap(0.0)[:3], atol=0.03)
    finally:
        for f in figs.values():
            plt.close(f)


def test_partial_result(tmp_path):
    loss = asym_loss()
    loss[: NY // 2] = np.nan  # half the rows unfinished
    res = write_result(tmp_path / "r.zarr", loss, status="running")
    ls = plot.load(res)
    assert "(partial: %d/%d points)" % (np.isfinite(loss).sum(), loss.size) in plot._title(ls)
    paths = plot.plot_result(res, tmp_path / "out")
    assert {p.name for p in paths} == {"contour.png", "heatmap.png", "surface.png"}
    for p in paths:
        assert_nonblank(p)


def test_all_nan_result(tmp_path):
    loss = np.full((NY, NX), np.nan, dtype=np.float32)
    res = write_result(tmp_path / "r.zarr", loss, status="running")
    figs = plot.figures(res)
    try:
        texts = [t.get_text() for f in figs.values() for a in f.axes for t in a.texts]
        assert "no finished points yet" in texts
    finally:
        for f in figs.values():
            plt.close(f)
    paths = plot.plot_result(res, tmp_path / "out")
    assert all(p.exists() for p in paths) and paths


def test_inf_values_masked(tmp_path):
    loss = asym_loss()
    loss[0, :5] = np.inf  # diverged
    loss[3, 3] = np.nan
    res = write_result(tmp_path / "r.zarr", loss)
    img, _ = plot.grid_image(res)
    assert img.mask[0, :5].all() and img.mask[3, 3]
    assert np.isfinite(img.max())
    figs = plot.figures(res)
    try:
        norm = figs["heatmap"].axes[0].collections[0].norm
        assert np.isclose(norm.vmin, 1.0) and np.isfinite(norm.vmax)
    finally:
        for f in figs.values():
            plt.close(f)
    for p in plot.plot_result(res, tmp_path / "out"):
        assert_nonblank(p)


def test_1d_result(tmp_path):
    x = np.linspace(-0.5, 1.5, 41)
    loss = (0.2 + (x * (x - 1)) ** 2).astype(np.float32)
    acc = (1 - loss / loss.max()).astype(np.float32)
    loss[-5:] = np.nan
    cps = [{"label": "A", "x": 0.0, "y": None}, {"label": "B", "x": 1.0, "y": None}]
    res = write_result(tmp_path / "r.zarr", loss, acc, x=x, status="running", checkpoints=cps)
    paths = plot.plot_result(res, tmp_path / "out")
    assert [p.name for p in paths] == ["curve.png"]
    assert_nonblank(paths[0])


def test_1d_all_nan(tmp_path):
    x = np.linspace(0, 1, 9)
    res = write_result(tmp_path / "r.zarr", np.full(9, np.nan, dtype=np.float32), x=x, status="running")
    paths = plot.plot_result(res, tmp_path / "out")
    assert [p.name for p in paths] == ["curve.png"]


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_vector_formats(tmp_path, fmt):
    res = write_result(tmp_path / "r.zarr", asym_loss())
    paths = plot.plot_result(res, tmp_path / "out", fmt=fmt)
    assert all(p.suffix == f".{fmt}" and p.stat().st_size > 1000 for p in paths)


def test_bad_format(tmp_path):
    res = write_result(tmp_path / "r.zarr", asym_loss())
    with pytest.raises(ValueError, match="unsupported figure format 'jpg'"):
        plot.plot_result(res, tmp_path / "out", fmt="jpg")


def test_levels_log_and_linear_fallback():
    pos = np.ma.masked_invalid(np.array([1.0, 10.0, 100.0, np.nan]))
    lv = plot._levels(pos)
    assert np.isclose(lv[0], 1) and np.isclose(lv[-1], 100)
    assert np.allclose(np.diff(np.log(lv)), np.log(lv[1] / lv[0]))  # geometric
    zero = np.ma.masked_invalid(np.array([0.0, 1.0, 2.0]))
    assert np.allclose(np.diff(plot._levels(zero)), plot._levels(zero)[1])  # linear
    assert plot._levels(np.ma.masked_invalid(np.array([3.0, 3.0]))) is None  # flat
    # one tiny value must not stretch the log scale over 30 decades
    lo, hi, log = plot._range(np.ma.masked_invalid(np.array([1e-33, 0.5, 2.0])))
    assert log and hi == 2.0 and np.isclose(lo, 2e-6)


def test_all_diverged(tmp_path):
    loss = np.full((NY, NX), np.inf, dtype=np.float32)
    res = write_result(tmp_path / "r.zarr", loss)
    figs = plot.figures(res)
    try:
        texts = [t.get_text() for f in figs.values() for a in f.axes for t in a.texts]
        assert any("diverged" in t for t in texts)
    finally:
        for f in figs.values():
            plt.close(f)


def test_tile_done_tells_unevaluated_from_diverged(tmp_path):
    """A NaN in a finished tile diverged (e.g. BatchNorm past line_between's endpoints); elsewhere it is not done yet."""
    loss = asym_loss()
    loss[:, 24:] = np.nan  # tiles in columns 24.. are not done
    loss[1, 2] = np.nan  # diverged to NaN inside a done tile
    loss[2, 3] = np.inf  # diverged to inf
    res = write_result(tmp_path / "r.zarr", loss, status="running", tile_shape=[8, 8],
                       layout=[["bn.running_var", [4], False]], batchnorm="eval: eval mode")
    g = zarr.open_group(str(res), mode="r+")
    done = np.ones((2, 4), dtype="uint8")
    done[:, 3] = 0  # columns 24..30
    g.create_array("tile_done", data=done, dimension_names=("tile_y", "tile_x"))
    ls = plot.load(res)
    assert ls.unfinished[:, 24:].all() and not ls.unfinished[:, :24].any()
    assert ls.diverged[1, 2] and ls.diverged[2, 3] and int(ls.diverged.sum()) == 2
    figs = plot.figures(res)
    try:
        labels = [t.get_text() for t in figs["heatmap"].axes[0].get_legend().get_texts()]
        assert labels == ["not evaluated yet", "diverged: NaN/inf (BatchNorm statistics out of range? try batchnorm: recompute)"]
        assert "(partial: %d/%d points)" % (NY * 24, NY * NX) in figs["heatmap"].axes[0].get_title()
    finally:
        for f in figs.values():
            plt.close(f)
    paths = plot.plot_result(res, tmp_path / "out")
    for p in paths:
        assert_nonblank(p)


def test_a_line_marks_unevaluated_and_diverged_points_apart(tmp_path):
    x = np.linspace(-0.5, 1.5, 24)
    loss = (0.2 + (x * (x - 1)) ** 2).astype(np.float32)
    loss[:3] = np.nan  # diverged (tile 0 is done)
    loss[16:] = np.nan  # not evaluated (tiles 2 is not done)
    res = write_result(tmp_path / "r.zarr", loss, x=x, status="running", tile_shape=[8],
                       checkpoints=[{"label": "A", "x": 0.0, "y": None}, {"label": "B", "x": 1.0, "y": None}])
    zarr.open_group(str(res), mode="r+").create_array("tile_done", data=np.array([1, 1, 0], dtype="uint8"), dimension_names=("tile_x",))
    figs = plot.figures(res)
    try:
        labels = [t.get_text() for t in figs["curve"].legends[0].get_texts()]
        assert "not evaluated yet" in labels and "diverged: NaN/inf loss" in labels, labels
    finally:
        for f in figs.values():
            plt.close(f)
    plot.plot_result(res, tmp_path / "out")

"""Figures a paper can use without retouching: round colour-bar ticks, colour bars as tall as their axes,
no text outside the canvas at any grid shape or title length, accuracies in %, axes named by what they
measure; plot options and the Python API (xarray Dataset or Zarr path, optional Axes)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import zarr  # noqa: E402

from cluster.store import FORMAT  # noqa: E402
from jobs import plot  # noqa: E402
from jobs.plot.api import plot as plot_api  # noqa: E402
from jobs.plot.options import PlotOptions  # noqa: E402
from landscape.errors import SpecError  # noqa: E402

from .test_plot import write_result  # noqa: E402

SPEC = {"model": {"kind": "mlp", "options": {"widths": [64, 64]}}, "data": {"kind": "digits"},
        "slice": {"kind": "random_plane", "normalization": "filter"}}


def bowl(nx, ny, x=(-1.0, 2.0), y=(-0.5, 0.5)):
    xs, ys = np.linspace(*x, nx), np.linspace(*y, ny)
    X, Y = np.meshgrid(xs, ys)
    loss = (0.05 + (X - 1) ** 2 + 10 * (Y - 0.2) ** 2).astype(np.float32)
    acc = np.clip(1 - 0.3 * loss, 0, 1).astype(np.float32)
    return xs, ys, loss, acc


def result(tmp_path, nx=31, ny=11, x=(-1.0, 2.0), y=(-0.5, 0.5), **meta):
    xs, ys, loss, acc = bowl(nx, ny, x, y)
    meta.setdefault("spec", SPEC)
    meta.setdefault("format", FORMAT)
    return write_result(tmp_path / f"r{nx}x{ny}.zarr", loss, acc, x=xs, y=ys, **meta)


def colorbar_axes(fig):
    every = [c for a in fig.axes for c in [a, *a.child_axes]]  # a colour bar may be an inset of its axes
    return [a for a in every if a.get_label() == "<colorbar>"]


def tick_labels(fig):
    axes = [c for a in fig.axes for c in [a, *a.child_axes]]
    axes_ = [getattr(a, n) for a in axes for n in ("xaxis", "yaxis", "zaxis") if hasattr(a, n)]
    return {id(t) for ax in axes_ for tick in ax.get_major_ticks() + ax.get_minor_ticks() for t in (tick.label1, tick.label2)}


def assert_all_text_inside(fig, what):
    """Every drawn artist (ticks in view included) inside the canvas, and each title, label, annotation too."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    W, H = fig.canvas.get_width_height()
    tight = fig.get_tightbbox(r)  # inches, of what was drawn
    dpi = fig.dpi
    assert tight.x0 * dpi >= -1 and tight.y0 * dpi >= -1 and tight.x1 * dpi <= W + 1 and tight.y1 * dpi <= H + 1, (
        f"{what}: drawn artists reach {tight} (inches), canvas {W / dpi:.2f} x {H / dpi:.2f}")
    ticks = tick_labels(fig)
    for t in fig.findobj(matplotlib.text.Text):
        if id(t) in ticks or not t.get_visible() or not t.get_text().strip():
            continue
        e = t.get_window_extent(r)
        assert e.x0 >= -1 and e.y0 >= -1 and e.x1 <= W + 1 and e.y1 <= H + 1, f"{what}: {t.get_text()!r} clipped at {e}"


def is_round(text):
    """At most two significant digits (1, 0.2, 25, 0.005) or an integer percentage."""
    v = abs(float(text.replace("−", "-")))
    if v == 0:
        return True
    digits = f"{v:.6g}".replace(".", "").replace("e", " ").split()[0].strip("0")
    return len(digits) <= 2 or float(text.replace("−", "-")).is_integer()


def build_all(res, opts=None):
    figs = plot.figures(res, opts)
    try:
        for f in figs.values():
            f.canvas.draw()
        return figs
    except Exception:
        for f in figs.values():
            plt.close(f)
        raise


@pytest.mark.parametrize("shape", [(31, 11), (7, 40), (120, 3), (5, 5)])
def test_colour_bars_as_tall_as_axes_with_round_ticks_nothing_clipped(tmp_path, shape):
    res = result(tmp_path, *shape, x=(-1.0, 2.0), y=(-0.5, 0.5) if shape != (7, 40) else (-3, 4))
    figs = build_all(res)
    try:
        for name in ("contour", "heatmap", "accuracy"):
            fig = figs[name]
            main = [a for a in fig.axes if a.get_label() != "<colorbar>"][0]
            (cb,) = colorbar_axes(fig)
            h_ax, h_cb = main.get_window_extent().height, cb.get_window_extent().height
            assert abs(h_cb - h_ax) <= 0.05 * h_ax, f"{name} {shape}: colour bar {h_cb:.0f} px, axes {h_ax:.0f} px"
            labels = [t.get_text() for t in cb.get_yticklabels() if t.get_text()]
            assert len(labels) >= 2, f"{name}: colour-bar ticks {labels}"
            assert all(is_round(s) for s in labels), f"{name}: colour-bar ticks not round: {labels}"
        for name, fig in figs.items():
            assert_all_text_inside(fig, f"{name} {shape}")
        z = [t.get_text() for t in figs["surface"].axes[0].get_zticklabels() if t.get_text()]
        assert 2 <= len(z) <= 6 and all(is_round(s) for s in z), f"surface z ticks {z}"
    finally:
        for f in figs.values():
            plt.close(f)


def test_long_titles_wrap_inside_the_canvas(tmp_path):
    res = result(tmp_path, name="x" * 30, status="running",
                 spec={**SPEC, "model": {"kind": "a_model_with_a_really_long_name_" * 3, "options": {}}})
    figs = build_all(res, PlotOptions())
    try:
        for name, fig in figs.items():
            assert_all_text_inside(fig, name)
        fig = plot_api(res, "heatmap", title="a title as long as a sentence in a paper's caption, " * 3)
        assert_all_text_inside(fig, "custom title")
        plt.close(fig)
    finally:
        for f in figs.values():
            plt.close(f)


def test_titles_and_axes_say_what_they_are(tmp_path):
    res = result(tmp_path)
    figs = build_all(res)
    try:
        ax = figs["heatmap"].axes[0]
        assert ax.get_title() == "MLP 64-64 on digits: random plane, filter-normalized"
        assert ax.get_xlabel() == "filter-normalized random direction 1"
        assert ax.get_ylabel() == "filter-normalized random direction 2"
        assert "test-run" not in ax.get_title() and "fp32" not in ax.get_title()
    finally:
        for f in figs.values():
            plt.close(f)
    pca = result(tmp_path, 9, 7, x_label="PC1: 87.7%", y_label="PC2: 9.1%", slice_kind="trajectory_pca")
    fig = plot_api(pca, "contour")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("PC1: 87.7%", "PC2: 9.1%")
    plt.close(fig)


def test_accuracy_and_error_in_percent(tmp_path):
    res = result(tmp_path)
    _, _, _, acc = bowl(31, 11)
    fig = plot_api(res, "heatmap", metric="accuracy")
    mesh = fig.axes[0].collections[0]
    assert np.allclose(mesh.get_array().reshape(acc.shape), 100 * acc, rtol=1e-6)
    assert colorbar_axes(fig)[0].get_ylabel() == "accuracy (%)"
    plt.close(fig)
    fig = plot_api(res, "heatmap", metric="error")
    assert np.allclose(fig.axes[0].collections[0].get_array().reshape(acc.shape), 100 * (1 - acc.astype(np.float64)), atol=1e-4)
    assert colorbar_axes(fig)[0].get_ylabel() == "error (%)"
    plt.close(fig)


def test_vmin_vmax_clip_and_explicit_levels(tmp_path):
    res = result(tmp_path)
    _, _, loss, _ = bowl(31, 11)
    fig = plot_api(res, "heatmap", vmin=0.1, vmax=2.0, cmap="magma")
    mesh = fig.axes[0].collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (0.1, 2.0) and mesh.norm.clip and mesh.cmap.name == "magma"
    above = loss > 2.0
    assert above.any()
    rgba = mesh.to_rgba(mesh.get_array()).reshape(*loss.shape, 4)
    assert np.allclose(rgba[above], matplotlib.colormaps["magma"](1.0))  # clipped to the top colour
    plt.close(fig)
    fig = plot_api(res, "contour", levels=[0.1, 0.5, 1, 2, 5], level_scale="linear")
    assert list(fig.axes[0].collections[-1].levels) == [0.1, 0.5, 1, 2, 5] or any(
        list(getattr(c, "levels", [])) == [0.1, 0.5, 1, 2, 5] for c in fig.axes[0].collections)
    plt.close(fig)


def test_garipov_style_top_tick_reads_above_vmax(tmp_path):
    res = result(tmp_path)
    fig = plot_api(res, "contour", style="garipov", vmax=3.0)
    labels = [t.get_text() for t in colorbar_axes(fig)[0].get_yticklabels() if t.get_text()]
    assert labels[-1] == "> 3" and all(is_round(s) for s in labels[:-1])
    assert fig.axes[0].collections and fig.axes[0].collections[0].__class__.__name__ in ("QuadContourSet", "ContourSet")
    plt.close(fig)


def test_li_style_linear_round_levels(tmp_path):
    fig = plot_api(result(tmp_path), "contour", style="li")
    cs = [c for c in fig.axes[0].collections if hasattr(c, "levels")][0]
    steps = np.diff(cs.levels)
    assert np.allclose(steps, steps[0]) and is_round(f"{steps[0]:g}")
    plt.close(fig)


def test_python_api_xarray_and_axes(tmp_path):
    xr = pytest.importorskip("xarray")
    res = result(tmp_path)
    ds = xr.open_zarr(str(res))
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    assert plot_api(ds, "heatmap", ax=a) is fig
    plot_api(str(res), "heatmap", ax=b)
    fig.canvas.draw()
    assert np.array_equal(a.collections[0].get_array(), b.collections[0].get_array())
    plt.close(fig)
    with pytest.raises(SpecError, match="metric 'test_loss' is not in this result"):
        plot_api(ds, "heatmap", metric="test_loss")


def test_any_metric_by_name(tmp_path):
    """A split's metrics (test_loss, test_accuracy) are drawn by name, like loss and accuracy."""
    res = result(tmp_path, metrics=["loss", "accuracy", "test_loss", "test_accuracy"])
    g = zarr.open_group(str(res), mode="r+")
    _, _, loss, acc = bowl(31, 11)
    for name, arr in (("test_loss", 2 * loss), ("test_accuracy", acc / 2)):
        g.create_array(name, data=arr, dimension_names=("y", "x"))
    fig = plot_api(res, "contour", metric="test_loss")
    assert colorbar_axes(fig)[0].get_ylabel() == "test loss"
    plt.close(fig)
    figs = build_all(res)
    try:
        assert {"test_loss", "test_accuracy"} <= set(figs)
        assert colorbar_axes(figs["test_accuracy"])[0].get_ylabel() == "test accuracy (%)"
    finally:
        for f in figs.values():
            plt.close(f)
    fig = plot_api(res, "heatmap", metric="test_error")
    assert np.allclose(fig.axes[0].collections[0].get_array().reshape(acc.shape), 100 * (1 - acc.astype(np.float64) / 2), atol=1e-4)
    plt.close(fig)


@pytest.mark.parametrize("bad, match", [
    ({"vmin": 2.0, "vmax": 1.0}, "vmin"), ({"style": "nature"}, "style"), ({"levels": 1}, "levels"),
    ({"levels": (3.0, 1.0)}, "increasing"), ({"cmap": "nope"}, "colormap"), ({"dpi": 1}, "dpi"),
])
def test_bad_options_one_line(bad, match):
    with pytest.raises(SpecError, match=match):
        PlotOptions(**bad)


def test_cli_plot_options_and_dpi(tmp_path, capsys):
    from jobs.cli import main

    res = result(tmp_path)
    for dpi in (60, 120):
        assert main(["plot", str(res), "--out", str(tmp_path / f"d{dpi}"), "--dpi", str(dpi), "--style", "garipov",
                     "--metric", "error", "--figsize", "6,4", "--levels", "8"]) == 0
    from PIL import Image

    small, big = (Image.open(tmp_path / f"d{d}" / "heatmap.png").size for d in (60, 120))
    assert small == (360, 240) and big == (720, 480)
    assert main(["plot", str(res), "--vmin", "3", "--vmax", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vmin (3.0) must be below vmax (1.0)" in err[0]

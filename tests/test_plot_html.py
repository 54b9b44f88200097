"""`landscape plot --html`: one self-contained page, checked in a real headless chromium, offline:
it loads with no console errors and no request leaving the file, the surface and heatmap are drawn
(not blank), the hover values are the result's, the paths and checkpoints are on it."""
import numpy as np
import pytest

from cluster.store import FORMAT
from jobs.cli import main

from .browser import Browser, need_chromium
from .test_plot_figures import SPEC, bowl
from .test_plot import write_result

PATH = [{"label": f"epoch {i}", "x": float(-0.8 + 0.3 * i), "y": float(-0.3 + 0.1 * i)} for i in range(6)]


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    with Browser() as b:
        yield b


def test_html_page_offline_in_chromium(tmp_path, browser, capsys):
    xs, ys, loss, acc = bowl(31, 11)
    loss[2, 3] = np.nan
    res = write_result(tmp_path / "r.zarr", loss, acc, x=xs, y=ys, format=FORMAT, spec=SPEC, slice_kind="trajectory_pca",
                       slice_info={"trajectory": PATH}, x_label="PC1: 80.0%", y_label="PC2: 15.0%",
                       checkpoints=[{"label": "epoch 0", "x": -0.8, "y": -0.3}, {"label": "epoch 5", "x": 0.7, "y": 0.2}])
    page = tmp_path / "page.html"
    assert main(["plot", str(res), "--html", str(page)]) == 0
    assert capsys.readouterr().out.strip() == f"plot: {page}"
    browser.send("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1)
    browser.open(page.as_uri())
    browser.wait_for("document.querySelectorAll('#plot-surface canvas').length > 0 && "
                     "document.querySelector('#plot-heatmap .hm, #plot-heatmap image') !== null")
    browser.wait(2)
    assert browser.errors() == []
    assert all(u.startswith(("file:", "data:", "blob:")) for u in browser.requests()), browser.requests()
    traces = browser.evaluate("document.getElementById('plot-heatmap').data.map(t => t.name)")
    assert traces == ["loss", "training path (projected)", "checkpoints"]
    drawn = browser.evaluate("Array.from(document.getElementById('plot-heatmap')._fullData[1].x)")
    assert np.allclose(drawn, [p["x"] for p in PATH])
    # the value under the cursor is the result's own (a cell not evaluated says so)
    text = browser.evaluate("document.getElementById('plot-heatmap').data[0].text")
    assert text[7][20] == f"{float(loss[7, 20]):.6g}" and text[2][3] == "not evaluated / diverged"
    assert browser.evaluate("document.getElementById('plot-heatmap').layout.xaxis.title.text") == "PC1: 80.0%"
    assert "PC1: 80.0%" in browser.evaluate("document.getElementById('metadata').textContent")
    for sel in ("#plot-surface", "#plot-heatmap"):
        img = browser.screenshot(sel)
        colours = len(np.unique(img.reshape(-1, 3), axis=0))
        assert img.std() > 20 and colours > 200, f"{sel} looks blank: std {img.std():.1f}, {colours} colours"
    browser.send("Network.emulateNetworkConditions", offline=False, latency=0, downloadThroughput=-1, uploadThroughput=-1)


def test_html_of_a_line(tmp_path, browser):
    x = np.linspace(-0.5, 1.5, 21)
    loss = (0.2 + (x * (x - 1)) ** 2).astype(np.float32)
    res = write_result(tmp_path / "l.zarr", loss, np.clip(1 - loss, 0, 1).astype(np.float32), x=x, format=FORMAT)
    page = tmp_path / "line.html"
    assert main(["plot", str(res), "--html", str(page)]) == 0
    browser.open(page.as_uri())
    names = browser.wait_for("document.getElementById('plot-line') && document.getElementById('plot-line').data.map(t => t.name)")
    assert names == ["loss", "accuracy (%)"]
    assert browser.errors() == []


def test_html_refuses_other_results_in_one_line(tmp_path, capsys):
    from .test_video_writer import animation_result

    g, *_ = animation_result(tmp_path / "a.zarr")
    g.attrs["landscape"] = {**g.attrs["landscape"], "format": FORMAT}
    assert main(["plot", str(tmp_path / "a.zarr"), "--html", str(tmp_path / "a.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this result is of kind 'animation'" in err[0], err
    assert not (tmp_path / "a.html").exists()

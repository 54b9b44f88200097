"""Trajectories end to end: `landscape train` with save_every, then trajectory scans through a real local
Ray, checked against plain PyTorch (independent.py) and against what the plots draw."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
import zarr  # noqa: E402

from cluster.store import ResultStore  # noqa: E402
from jobs import plot  # noqa: E402
from jobs.common.build import load_data  # noqa: E402
from jobs.cli import main  # noqa: E402
from jobs.scan.point import point_state  # noqa: E402
from jobs.scan.run import run_scan  # noqa: E402
from jobs.specs import DigitsData, ScanSpec  # noqa: E402
from landscape.checkpoints import load_state  # noqa: E402
from landscape.factories import ModelFactory  # noqa: E402
from landscape.params import StateLayout  # noqa: E402

from .conftest import TINY_DATA, TINY_MODEL  # noqa: E402
from .independent import reference_loss, state_at  # noqa: E402

pytestmark = pytest.mark.ray

STEPS_PER_EPOCH = 8  # 240 samples in batches of 32
STEP_FILES = [f"step_{s:03d}.pt" for s in range(0, 25, 4)]  # 3 epochs = 24 steps, every 4


def _model():
    return ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()


def _data():
    return load_data(DigitsData.model_validate(TINY_DATA))


def _spec_dict(name, checkpoints, kind="trajectory_pca", grid=None, **slice_opts):
    return {
        "name": name, "model": TINY_MODEL, "data": TINY_DATA,
        "slice": {"kind": kind, "checkpoints": checkpoints, **slice_opts},
        "grid": grid or {"x": {"num": 9}, "y": {"num": 6}, "fit": "path", "margin": 0.25},
        "tile": [4, 3],
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real `landscape train` run with save_every: 4 (the CLI, as a user runs it)."""
    root = tmp_path_factory.mktemp("traj")
    spec = root / "train.yaml"
    spec.write_text(yaml.safe_dump({"name": "tiny-steps", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 3,
                                    "lr": 0.1, "batch_size": 32, "save_every": 4}))
    assert main(["train", str(spec), "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def pca(ray_cluster, run_dir):
    """trajectory_pca over the step checkpoints (a glob), the grid fitted to the path; non-square."""
    spec = ScanSpec.model_validate(_spec_dict("traj-pca", str(run_dir / "step_*.pt")))
    out = run_dir.parent / "pca.zarr"
    run_scan(spec, out=str(out), actors=2)
    return out


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_save_every_writes_step_checkpoints_that_sort_in_training_order(run_dir):
    names = sorted(p.name for p in run_dir.glob("step_*.pt"))
    assert names == STEP_FILES
    model = _model()
    state = {n: load_state(run_dir / n, model) for n in [*STEP_FILES, "epoch_000.pt", "epoch_001.pt", "epoch_003.pt"]}
    assert _same(state["step_000.pt"], state["epoch_000.pt"])  # the initial weights
    assert _same(state["step_008.pt"], state["epoch_001.pt"])  # end of epoch 1 = 8 steps
    assert _same(state["step_024.pt"], state["epoch_003.pt"])  # the last step
    # Independent: a plain PyTorch SGD loop with the same seeded shuffle, stopped after 12 steps.
    x, y = _data()
    plain = _model()  # seed 0: the same initial weights
    opt = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    steps = 0
    while steps < 12:
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 32):
            if steps == 12:
                break
            idx = order[s : s + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(plain(x[idx]), y[idx]).backward()
            opt.step()
            steps += 1
    for k, v in plain.state_dict().items():
        torch.testing.assert_close(state["step_012.pt"][k], v, rtol=0, atol=1e-6)


def test_the_fitted_grid_covers_the_path_with_the_margin(pca):
    g = zarr.open_group(str(pca), mode="r")
    meta = ResultStore.open(str(pca)).meta
    path = meta["slice_info"]["trajectory"]
    assert [p["label"] for p in path] == [n.removesuffix(".pt") for n in STEP_FILES]  # sorted glob
    for axis in ("x", "y"):
        vals = [p[axis] for p in path] + [0.0]
        lo, hi = min(vals), max(vals)
        want = np.linspace(lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo), 9 if axis == "x" else 6)
        np.testing.assert_allclose(g[axis][...], want, rtol=0, atol=1e-12)
        assert meta["grid_fit"][axis] == [want[0], want[-1]]
    assert g["loss"].shape == (6, 9) and np.isfinite(g["loss"][...]).all()
    assert meta["x_label"].startswith("PC1: ") and meta["x_label"].endswith("%")
    r = meta["slice_info"]["explained_variance_ratio"]
    assert meta["x_label"] == f"PC1: {100 * r[0]:.1f}%" and meta["y_label"] == f"PC2: {100 * r[1]:.1f}%"


def test_checkpoints_and_their_projections_equal_a_direct_evaluation(pca, run_dir):
    meta = ResultStore.open(str(pca)).meta
    g = zarr.open_group(str(pca), mode="r")
    x, y = _data()
    model = _model()
    layout = StateLayout.of(model)
    origin = load_state(run_dir / STEP_FILES[-1], model)
    dirs = [layout.unflatten(torch.from_numpy(d)) for d in g["directions"][...]]
    for p, v in zip(meta["slice_info"]["trajectory"], meta["trajectory_values"]):
        own = reference_loss(model, load_state(run_dir / f"{p['label']}.pt", model), x, y)
        assert v["checkpoint"]["loss"] == pytest.approx(own[0], rel=1e-5)
        assert v["checkpoint"]["accuracy"] == pytest.approx(own[1])
        proj = reference_loss(model, state_at(model, origin, dirs, (p["x"], p["y"])), x, y)
        assert v["projection"]["loss"] == pytest.approx(proj[0], rel=1e-5)
    # The origin lies on the plane: there the map is the checkpoint itself.
    last = meta["trajectory_values"][-1]
    assert last["projection"]["loss"] == pytest.approx(last["checkpoint"]["loss"], rel=1e-6)


def _line(fig, gid):
    (line,) = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == gid]
    return line


def test_the_plots_draw_the_path_at_the_recorded_coordinates(pca):
    meta = ResultStore.open(str(pca)).meta
    path = meta["slice_info"]["trajectory"]
    xs, ys = [p["x"] for p in path], [p["y"] for p in path]
    figs = plot.figures(str(pca))
    try:
        assert {"contour", "heatmap", "trajectory_off_plane", "trajectory_checkpoints"} <= set(figs)
        for name in ("contour", "heatmap", "accuracy"):
            line = _line(figs[name], "trajectory-path")
            assert line.get_xdata().tolist() == xs and line.get_ydata().tolist() == ys
            ax = line.axes
            assert ax.get_xlabel() == meta["x_label"] and ax.get_ylabel() == meta["y_label"]
            labels = {t.get_text() for t in ax.texts}
            assert {path[0]["label"], path[-1]["label"]} <= labels  # first and last labelled
            assert len([c for c in ax.get_children() if type(c).__name__ == "Annotation" and c.arrow_patch]) >= 3
        off = _line(figs["trajectory_off_plane"], "off-plane")
        assert off.get_ydata().tolist() == [p["off_plane"] for p in path]
        values = meta["trajectory_values"]
        own = _line(figs["trajectory_checkpoints"], "checkpoint-loss")
        proj = _line(figs["trajectory_checkpoints"], "projection-loss")
        assert own.get_ydata().tolist() == [v["checkpoint"]["loss"] for v in values]
        assert proj.get_ydata().tolist() == [v["projection"]["loss"] for v in values]
        # The heatmap's cells: row i at y[i], column j at x[j] (a non-square grid stays right way up).
        g = zarr.open_group(str(pca), mode="r")
        mesh = figs["heatmap"].axes[0].collections[0]
        np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(6, 9), g["loss"][...])
    finally:
        for f in figs.values():
            plt.close(f)
    plots = pca.with_name("pca-plots")
    for name in ("contour", "heatmap", "trajectory_off_plane", "trajectory_checkpoints"):
        assert (plots / f"{name}.png").stat().st_size > 10_000, name


def test_an_explicit_grid_through_the_origin_and_a_second_run_give_the_same_picture(pca, run_dir):
    """Explicit min/max still work; the grid node (0, 0) is the origin, whose loss equals a direct evaluation;
    an asymmetric non-square grid stays right way up; and the second PCA gives bit-identical directions."""
    meta = ResultStore.open(str(pca)).meta
    path = meta["slice_info"]["trajectory"]
    a = float(np.ceil(max(abs(p["x"]) for p in path)))
    b = float(np.ceil(4 * max(abs(p["y"]) for p in path))) / 4
    grid = {"x": {"min": -a, "max": a / 2, "num": 13}, "y": {"min": -b, "max": 2 * b, "num": 7}}  # 0 at x[8], y[2]
    out = run_dir.parent / "explicit.zarr"
    run_scan(ScanSpec.model_validate(_spec_dict("traj-explicit", str(run_dir / "step_*.pt"), grid=grid)), out=str(out),
             plot=False)
    g, first = zarr.open_group(str(out), mode="r"), zarr.open_group(str(pca), mode="r")
    again = ResultStore.open(str(out)).meta
    assert np.array_equal(g["directions"][...], first["directions"][...])  # the sign rule: the same picture
    assert again["slice_info"]["trajectory"] == path
    xs, ys = g["x"][...], g["y"][...]
    assert xs[8] == 0.0 and ys[2] == 0.0
    x, y = _data()
    model = _model()
    loss = g["loss"][...]
    assert loss.shape == (7, 13)
    want = reference_loss(model, load_state(run_dir / STEP_FILES[-1], model), x, y)[0]
    assert loss[2, 8] == pytest.approx(want, rel=1e-5)
    for i, j in [(0, 0), (6, 12), (1, 11), (5, 2)]:  # corners and asymmetric points
        assert loss[i, j] == pytest.approx(reference_loss(model, point_state(str(out), xs[j], ys[i]), x, y)[0], rel=1e-5)


def test_the_path_through_the_epochs_is_exact_at_each_checkpoint(ray_cluster, run_dir):
    d = _spec_dict("traj-path", str(run_dir / "epoch_*.pt"), kind="trajectory",
                   grid={"x": {"num": 7}, "fit": "path", "margin": 0.0})
    d["tile"] = 3
    out = run_dir.parent / "path.zarr"
    run_scan(ScanSpec.model_validate(d), out=str(out))
    g = zarr.open_group(str(out), mode="r")
    np.testing.assert_array_equal(g["x"][...], np.linspace(0, 3, 7))
    x, y = _data()
    model = _model()
    for k in range(4):  # checkpoint k at x = k: node 2k
        ckpt = load_state(run_dir / f"epoch_{k:03d}.pt", model)
        assert _same(point_state(str(out), float(k)), ckpt)  # bit for bit
        assert g["loss"][2 * k] == pytest.approx(reference_loss(model, ckpt, x, y)[0], rel=1e-5)
    mid = point_state(str(out), 1.5)
    a, b = (load_state(run_dir / f"epoch_{k:03d}.pt", model) for k in (1, 2))
    for k in a:
        torch.testing.assert_close(mid[k], (a[k] + b[k]) / 2, rtol=0, atol=1e-6)
    meta = ResultStore.open(str(out)).meta
    assert [c["label"] for c in meta["checkpoints"]] == ["epoch_000", "", "", "epoch_003"]
    assert (out.with_name("path-plots") / "curve.png").exists()


def test_a_submitted_trajectory_carries_its_resolved_checkpoints_and_origin(run_dir, tmp_path):
    from jobs.service.bundle import build_bundle
    from jobs.specs import load_spec

    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(yaml.safe_dump(_spec_dict("b", str(run_dir / "step_*.pt"), origin=str(run_dir / "epoch_002.pt"))))
    bundle = build_bundle(spec_path, load_spec(spec_path), tmp_path / "bundle", remote_checkpoints=False)
    staged = yaml.safe_load((bundle.root / bundle.spec_file).read_text())["slice"]
    assert [p.split("/")[-1] for p in staged["checkpoints"]] == STEP_FILES
    assert staged["origin"].endswith("epoch_002.pt") and (bundle.root / staged["origin"]).is_file()
    for rel, name in zip(staged["checkpoints"], STEP_FILES):
        assert (bundle.root / rel).read_bytes() == (run_dir / name).read_bytes()


def test_a_glob_that_matches_other_files_is_another_scan(run_dir, tmp_path):
    """The files a glob matches are part of the scan's identity: a longer run is not resumed into an old result."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    spec = ScanSpec.model_validate(_spec_dict("ident", str(copy / "step_*.pt")))
    before = spec.identity()
    assert spec.identity() == before
    shutil.copy(copy / "epoch_003.pt", copy / "step_028.pt")
    assert spec.identity() != before

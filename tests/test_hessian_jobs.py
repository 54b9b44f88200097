"""Curvature jobs end to end: the hessian metric through a real local Ray, `landscape hessian`,
the hessian_plane slice, and their bad inputs (one line, exit 2, nothing written)."""

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
import zarr
from matplotlib.image import imread

from cluster.store import ResultStore
from jobs.common.build import load_data
from jobs.scan.problem import build_problem
from jobs.cli import main
from jobs.scan.point import point_state
from jobs.scan.run import run_scan
from jobs.specs import DigitsData, ScanSpec
from landscape.checkpoints import load_state
from landscape.evaluator import Evaluator
from landscape.factories import ModelFactory

from .conftest import TINY_DATA, TINY_MODEL, scan_spec_dict
from .hessian_reference import dense_hessian
from .independent import reference_loss
from .one_line import run_bad

pytestmark = pytest.mark.ray

HESSIAN = {"iterations": 60, "tol": 1e-4, "seed": 0}
GRID = {"x": {"min": -0.6, "max": 0.6, "num": 4}, "y": {"min": -0.3, "max": 0.5, "num": 3}}  # 3 rows x 4 columns


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # conftest's, for every test here
    yield


def _tiny_model():
    return ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()


def _data():
    return load_data(DigitsData(kind="digits", subset=240, seed=0))


def _write(tmp_path, d, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return str(p)


def _nonblank(path):
    assert imread(path).std() > 0.05, path


def _hessian_dict(ckpt, **over):
    d = {"name": "tiny-hessian", "model": TINY_MODEL, "data": TINY_DATA, "at": {"checkpoint": str(ckpt)}, "top_k": 3,
         "eigen": {"iterations": 300, "tol": 1e-6}, "trace": {"samples": 48, "batch": 16},
         "density": {"runs": 2, "iterations": 40, "points": 800}}
    d.update(over)
    return d


@pytest.fixture(scope="module")
def ratio_scan(ray_cluster, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("hscan") / "ratio.zarr"
    d = scan_spec_dict(tiny_run, name="tiny-ratio", grid=GRID, tile=[2, 3], metrics=["loss", "accuracy", "hessian"], hessian=HESSIAN)
    spec = ScanSpec.model_validate(d)
    run_scan(spec, out=str(out), actors=2)
    return spec, out


def test_ratio_map_through_ray_is_the_same_with_one_or_two_actors_and_equals_point_by_point_calls(ratio_scan, tiny_run, tmp_path):
    spec, out = ratio_scan
    g = zarr.open_group(str(out), mode="r")
    names = ["hessian_max", "hessian_min", "hessian_ratio", "hessian_residual"]
    maps = {n: g[n][...] for n in names}
    assert all(m.shape == (3, 4) and np.isfinite(m).all() for m in maps.values())
    one = tmp_path / "one.zarr"
    run_scan(ScanSpec.model_validate({**spec.model_dump(mode="json"), "tile": [3, 4]}), out=str(one), actors=1, plot=False)
    g1 = zarr.open_group(str(one), mode="r")
    for n in names:
        assert np.array_equal(g1[n][...], maps[n]), n
    # Point by point, in this process (one thread, as an actor: the one_thread fixture), one grid point per call.
    ev = Evaluator(build_problem(spec).problem, device="cpu")
    xs, ys = g["x"][...], g["y"][...]
    for i in range(3):
        for j in range(4):
            got = ev.evaluate(np.array([[xs[j], ys[i]]]))
            for n in names:
                assert got[n][0] == pytest.approx(maps[n][i, j], rel=1e-6, abs=1e-9), (n, i, j)
    meta = ResultStore.open(str(out)).meta
    assert meta["metric_options"] == {"hessian": {**HESSIAN, "data_chunk": None, "params": None}}
    assert meta["metrics"] == ["loss", "loss_se", "accuracy", "accuracy_se", *names]
    assert meta["batchnorm"].startswith("eval") and "BatchNorm eval" in meta["metric_info"]["hessian_max"]


def test_ratio_map_values_match_dense_hessians_of_the_weights_at_those_points(ratio_scan):
    spec, out = ratio_scan
    g = zarr.open_group(str(out), mode="r")
    xs, ys = g["x"][...], g["y"][...]
    x, y = _data()
    for i, j in [(0, 3), (2, 0)]:  # opposite corners of the non-square grid
        w = np.linalg.eigvalsh(dense_hessian(_tiny_model(), point_state(str(out), xs[j], ys[i]), x, y))
        res = g["hessian_residual"][i, j]
        assert res <= HESSIAN["tol"], (i, j)  # this tiny model converges well within 60 steps
        assert g["hessian_max"][i, j] == pytest.approx(w[-1], rel=1e-4)
        assert g["hessian_min"][i, j] == pytest.approx(w[0], rel=1e-4)
        assert g["hessian_ratio"][i, j] == pytest.approx(abs(w[0] / w[-1]), rel=2e-4)


def test_ratio_map_is_drawn_beside_the_loss_contour(ratio_scan):
    _, out = ratio_scan
    plots = out.with_name("ratio-plots")
    for name in ("hessian_ratio_map", "hessian_ratio", "hessian_min", "contour"):
        _nonblank(plots / f"{name}.png")


def test_hessian_command_at_a_checkpoint_matches_the_dense_hessian(tiny_run, tmp_path, capsys):
    ckpt = tiny_run / "epoch_003.pt"
    out = tmp_path / "h.zarr"
    assert main(["hessian", _write(tmp_path, _hessian_dict(ckpt)), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "top-3 eigenvalues" in printed and "trace:" in printed and f"result: {out}" in printed
    x, y = _data()
    h = dense_hessian(_tiny_model(), torch.load(ckpt, weights_only=True), x, y)
    w, v = np.linalg.eigh(h)
    ds = xr.open_zarr(out)
    assert ds["eigenvalues"].dims == ("eigen",) and list(ds["eigen"].values) == [1, 2, 3]
    np.testing.assert_allclose(ds["eigenvalues"].values, w[::-1][:3], rtol=1e-4)
    meta = ResultStore.open(str(out)).meta
    assert meta["job"] == "hessian" and meta["status"] == "complete" and meta["converged"]
    assert meta["smallest_eigenvalue"] == pytest.approx(w[0], rel=1e-4)
    assert abs(meta["trace"] - np.trace(h)) <= 3 * meta["trace_stderr"]
    assert meta["trace"] == pytest.approx(ds["trace_samples"].values.mean(), rel=1e-12)
    assert meta["batchnorm"].startswith("eval mode") and meta["parameters"] == 910
    want_loss, want_acc = reference_loss(_tiny_model(), torch.load(ckpt, weights_only=True), x, y)
    assert meta["point_loss"] == pytest.approx(want_loss, rel=1e-5)
    vecs = ds["eigenvectors"].values  # (3, P) over the flat state
    assert vecs.shape == (3, 910)
    for k in range(3):
        assert abs(vecs[k] @ v[:, -1 - k]) > 1 - 1e-4
    assert np.trapezoid(ds["density"].values, ds["eigenvalue"].values) == pytest.approx(1.0, abs=1e-6)
    plots = tmp_path / "h-plots"
    for name in ("density", "top_k"):
        _nonblank(plots / f"{name}.png")
    # The same spec again: nothing recomputed.
    assert main(["hessian", str(tmp_path / "spec.yaml"), "--out", str(out), "--no-plot"]) == 0
    assert "already complete" in capsys.readouterr().err


def test_hessian_command_at_a_grid_point_takes_the_results_model_and_weights(ratio_scan, tiny_run, tmp_path, capsys):
    spec, scan = ratio_scan
    g = zarr.open_group(str(scan), mode="r")
    xs, ys = g["x"][...], g["y"][...]
    d = {"name": "at-point", "at": {"result": str(scan), "x": float(xs[1]), "y": float(ys[2])}, "top_k": 1,
         "eigen": {"iterations": 60, "tol": 1e-4}, "trace": None, "density": None}
    out = tmp_path / "p.zarr"
    assert main(["hessian", _write(tmp_path, d), "--out", str(out), "--no-plot"]) == 0
    meta = ResultStore.open(str(out)).meta
    assert meta["model"]["options"] == {"widths": [12]} and meta["loss_kind"] == "cross_entropy"
    # Same Lanczos settings and start vector as the map: the same numbers at that grid point.
    assert meta["eigenvalues"][0] == pytest.approx(g["hessian_max"][2, 1], rel=1e-5)
    assert meta["smallest_eigenvalue"] == pytest.approx(g["hessian_min"][2, 1], rel=1e-5)
    assert meta["point_loss"] == pytest.approx(g["loss"][2, 1], rel=1e-6)
    assert "trace_samples" not in zarr.open_group(str(out), mode="r")


def test_hessian_plane_is_spanned_by_the_top_two_eigenvectors(ray_cluster, tiny_run, tmp_path):
    ckpt = tiny_run / "epoch_003.pt"
    d = scan_spec_dict(tiny_run, name="tiny-hplane", grid=GRID, tile=[2, 3])
    d["slice"] = {"kind": "hessian_plane", "checkpoint": str(ckpt), "iterations": 200, "tol": 1e-6}
    out = tmp_path / "hp.zarr"
    run_scan(ScanSpec.model_validate(d), out=str(out), actors=2)
    meta = ResultStore.open(str(out)).meta
    x, y = _data()
    state = torch.load(ckpt, weights_only=True)
    h = dense_hessian(_tiny_model(), state, x, y)
    w = np.linalg.eigvalsh(h)
    info = meta["slice_info"]
    np.testing.assert_allclose(info["eigenvalues"], w[::-1][:2], rtol=1e-4)
    assert info["converged"] and info["batchnorm"].startswith("eval")
    assert meta["x_label"].startswith("eigenvector 1")
    dirs = zarr.open_group(str(out), mode="r")["directions"][...].astype(np.float64)  # (2, P); no buffers in an MLP
    np.testing.assert_allclose(dirs @ dirs.T, np.eye(2), atol=1e-5)
    for k in range(2):
        assert np.linalg.norm(h @ dirs[k] - w[-1 - k] * dirs[k]) <= 1e-3 * w[-1]
    # The center is the checkpoint; away from it the loss follows the evaluator's usual numbers.
    loss = zarr.open_group(str(out), mode="r")["loss"][...]
    assert np.isfinite(loss).all()
    want, _ = reference_loss(_tiny_model(), point_state(str(out), 0.2, -0.3), x, y)
    assert loss[0, 2] == pytest.approx(want, rel=1e-5)
    _nonblank(tmp_path / "hp-plots" / "contour.png")


def test_hessian_plane_filter_normalized(tiny_run):
    """Each filter of each eigenvector rescaled to the norm of the same filter of the weights; biases zeroed."""
    from landscape.params import StateLayout

    ckpt = tiny_run / "epoch_003.pt"
    d = scan_spec_dict(tiny_run, grid=GRID)
    d["slice"] = {"kind": "hessian_plane", "checkpoint": str(ckpt), "normalization": "filter", "tol": 1e-6, "iterations": 200}
    problem = build_problem(ScanSpec.model_validate(d)).problem
    model = _tiny_model()
    layout = StateLayout.of(model)
    weights = load_state(ckpt, model)
    x, y = _data()
    _, v = np.linalg.eigh(dense_hessian(_tiny_model(), weights, x, y))
    checked = 0
    for k, dvec in enumerate(problem.slice.directions):
        sign = float(np.sign(dvec.double().numpy() @ v[:, -1 - k]))  # eigenvectors are defined up to sign
        parts, eig = layout.unflatten(dvec.double()), layout.unflatten(torch.from_numpy(sign * v[:, -1 - k]))
        for name, wt in weights.items():
            if wt.dim() == 1:
                assert not parts[name].any(), name  # ignore: biasbn
                continue
            for f in range(wt.shape[0]):
                e = eig[name][f]
                if e.norm() < 1e-5:  # a dead unit: no curvature there, nothing to rescale
                    continue
                want = e * wt[f].double().norm() / e.norm()
                assert torch.allclose(parts[name][f], want, atol=2e-3 * want.norm()), (k, name, f)
                checked += 1
    assert checked > 20


def test_a_nan_hessian_is_recorded_as_nan_and_said(tmp_path, capsys):
    from tests.hessian_reference import sqrt_shift

    torch.manual_seed(0)
    ckpt = tmp_path / "sqrt.pt"
    torch.save(sqrt_shift().state_dict(), ckpt)
    d = {"name": "nan", "model": {"kind": "import", "factory": "tests.hessian_reference:sqrt_shift"},
         "data": {"kind": "import", "factory": "tests.user_factories:make_data", "kwargs": {"n": 30}},
         "at": {"checkpoint": str(ckpt)}, "top_k": 2, "eigen": {"iterations": 10}, "trace": {"samples": 4},
         "density": {"runs": 1, "iterations": 4}}
    out = tmp_path / "nan.zarr"
    assert main(["hessian", _write(tmp_path, d), "--out", str(out)]) == 0
    assert "not finite" in capsys.readouterr().err
    meta = ResultStore.open(str(out)).meta
    assert meta["status"] == "complete" and meta["finite"] is False and np.isfinite(meta["point_loss"])
    g = zarr.open_group(str(out), mode="r")
    assert np.isnan(g["eigenvalues"][...]).all() and np.isnan(g["density"][...]).all()
    assert np.isnan(meta["trace"]) and np.isnan(meta["smallest_eigenvalue"])
    for name in ("density", "top_k"):  # a figure that says so, not a crash
        assert (tmp_path / "nan-plots" / f"{name}.png").exists()


def _bad_cases(tiny_run, tmp_path, scan_result):
    ckpt = tiny_run / "epoch_003.pt"
    h = _hessian_dict(ckpt)
    s = scan_spec_dict(tiny_run)
    hp = {**s, "slice": {"kind": "hessian_plane", "checkpoint": str(ckpt)}}
    return {
        "k larger than the parameters": ("hessian", {**h, "top_k": 911, "eigen": {"iterations": 1000}}, ["top_k 911", "910 parameters"]),
        "non-positive iterations": ("hessian", {**h, "eigen": {"iterations": 0}}, ["eigen.iterations", "greater than 0"]),
        "iterations below k": ("hessian", {**h, "eigen": {"iterations": 2}}, ["eigen.iterations 2", "top_k 3"]),
        "one trace probe": ("hessian", {**h, "trace": {"samples": 1}}, ["trace.samples"]),
        "bf16 hessian": ("hessian", {**h, "precision": "bf16"}, ["precision", "fp32", "tf32"]),
        "tolerance below fp32": ("hessian", {**h, "eigen": {"tol": 1e-9}}, ["eigen.tol"]),
        "two places": ("hessian", {**h, "at": {"checkpoint": str(ckpt), "result": str(scan_result), "x": 0}}, ["at", "exactly one"]),
        "result without x": ("hessian", {**h, "at": {"result": str(scan_result)}}, ["at", "needs x"]),
        "checkpoint without model": ("hessian", {k: v for k, v in h.items() if k != "model"}, ["model and data are required"]),
        "missing checkpoint": ("hessian", {**h, "at": {"checkpoint": str(tmp_path / "nope.pt")}}, ["nope.pt", "does not exist"]),
        "missing result": ("hessian", {**h, "at": {"result": str(tmp_path / "none.zarr"), "x": 0, "y": 0}}, ["no result at"]),
        "point outside the grid": ("hessian", {**h, "at": {"result": str(scan_result), "x": 5.0, "y": 0}}, ["--x 5", "outside the grid"]),
        "hessian metric with bf16": ("run", {**s, "metrics": ["hessian"], "precision": "bf16"}, ["precision", "fp32 or tf32"]),
        "non-positive map iterations": ("run", {**s, "metrics": ["hessian"], "hessian": {"iterations": 0}}, ["hessian.iterations"]),
        "hessian options without the metric": ("run", {**s, "hessian": {"iterations": 5}}, ["hessian", "add hessian to metrics"]),
        "hessian with batchnorm recompute": ("run", {**s, "metrics": ["hessian"], "batchnorm": "recompute"}, ["batchnorm", "eval mode"]),
        "hessian plane iterations": ("run", {**hp, "slice": {**hp["slice"], "iterations": -1}}, ["slice.iterations"]),
        "hessian plane unknown field": ("run", {**hp, "slice": {**hp["slice"], "top_k": 2}}, ["slice.top_k", "unknown field"]),
    }


BAD = [
    "k larger than the parameters", "non-positive iterations", "iterations below k", "one trace probe", "bf16 hessian",
    "tolerance below fp32", "two places", "result without x", "checkpoint without model", "missing checkpoint",
    "missing result", "point outside the grid", "hessian metric with bf16", "non-positive map iterations",
    "hessian options without the metric", "hessian with batchnorm recompute", "hessian plane iterations",
    "hessian plane unknown field",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_curvature_input_is_one_line_exit_2_and_writes_nothing(case, ratio_scan, tiny_run, tmp_path, capsys):
    command, spec, needles = _bad_cases(tiny_run, tmp_path, ratio_scan[1])[case]
    path = _write(tmp_path, spec)
    out = tmp_path / "out.zarr"
    for argv in ([command, path, "--out", str(out)], ["validate", path]):
        run_bad(capsys, argv, *needles)
        assert not out.exists()


def test_point_of_a_hessian_result_is_refused_in_one_line(tiny_run, tmp_path, capsys):
    out = tmp_path / "h.zarr"
    d = _hessian_dict(tiny_run / "epoch_003.pt", top_k=1, trace=None, density=None, eigen={"iterations": 5})
    assert main(["hessian", _write(tmp_path, d), "--out", str(out), "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["point", str(out), "--x", "0", "-o", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert "is not a scan (its job is 'hessian')" in err and "Traceback" not in err


def test_a_device_this_machine_lacks_is_refused(tiny_run, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = _write(tmp_path, _hessian_dict(tiny_run / "epoch_003.pt"))
    assert main(["hessian", path, "--out", str(tmp_path / "o.zarr"), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists()

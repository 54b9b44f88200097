"""`landscape export`: each format read back with its own reader (VTK's, h5py, numpy) and compared with
the Zarr arrays bit for bit; the options (log, z cap, resampling) against a plain numpy computation."""
import json

import numpy as np
import pytest
import zarr

from cluster.store import FORMAT
from jobs.cli import main

from .test_plot import write_result

NX, NY = 13, 6  # non-square; the minimum off-centre so a transposed or flipped read fails


def plane(tmp_path, name="r.zarr", fn=None):
    x, y = np.linspace(-1.0, 1.6, NX), np.linspace(-0.3, 0.9, NY)
    X, Y = np.meshgrid(x, y)
    loss = (fn(X, Y) if fn else 0.1 + (X - 0.7) ** 2 + 3 * (Y - 0.5) ** 2).astype(np.float32)
    acc = np.clip(1 - loss / 4, 0, 1).astype(np.float32)
    loss[0, 0] = np.nan  # not evaluated
    res = write_result(tmp_path / name, loss, acc, x=x, y=y, format=FORMAT, metrics=["loss", "accuracy", "test_loss", "test_accuracy"])
    g = zarr.open_group(str(res), mode="r+")
    g.create_array("test_loss", data=2 * loss, dimension_names=("y", "x"))
    g.create_array("test_accuracy", data=acc / 2, dimension_names=("y", "x"))
    return res, x, y, loss, acc


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def read_vts(path):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    r = vtk.vtkXMLStructuredGridReader()
    r.SetFileName(str(path))
    r.Update()
    out = r.GetOutput()
    pd = out.GetPointData()
    arrays = {pd.GetArrayName(i): vtk_to_numpy(pd.GetArray(i)) for i in range(pd.GetNumberOfArrays())}
    dims = [0, 0, 0]
    out.GetDimensions(dims)
    return tuple(dims), vtk_to_numpy(out.GetPoints().GetData()), arrays


def test_vtk_structured_grid_bit_for_bit(tmp_path, capsys):
    res, x, y, loss, acc = plane(tmp_path)
    out = tmp_path / "s.vts"
    assert main(["export", str(res), "--format", "vtk", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"export: {out}"
    dims, pts, arrays = read_vts(out)
    assert dims == (NX, NY, 1)
    pts = pts.reshape(NY, NX, 3)  # VTK order: x fastest
    X, Y = np.meshgrid(x, y)
    assert same_bits(pts[..., 0], X) and same_bits(pts[..., 1], Y)
    z = loss.astype(np.float64)
    z[0, 0] = np.nanmax(z)  # no height where not evaluated: the highest drawn one
    assert same_bits(pts[..., 2], z)
    for name, want in (("loss", loss), ("accuracy", acc), ("test_loss", 2 * loss), ("test_accuracy", acc / 2)):
        assert same_bits(arrays[name].reshape(NY, NX), want), name
    assert arrays["evaluated"].reshape(NY, NX)[0, 0] == 0 and arrays["evaluated"].sum() == NX * NY - 1


def test_vtk_log_cap_and_resampling(tmp_path):
    res, x, y, loss, _ = plane(tmp_path)
    out = tmp_path / "log.vts"
    assert main(["export", str(res), "--format", "vtk", "-o", str(out), "--zmax", "1.5", "--log"]) == 0
    _, pts, _ = read_vts(out)
    want = np.log10(np.minimum(loss.astype(np.float64), 1.5))
    want[0, 0] = np.nanmax(want)
    assert same_bits(pts[:, 2].reshape(NY, NX), want)
    # a plane is resampled exactly by linear interpolation: check against the closed form
    flat, x, y, _, _ = plane(tmp_path, "flat.zarr", fn=lambda X, Y: 2 + X - 0.5 * Y)
    out = tmp_path / "up.vts"
    assert main(["export", str(flat), "--format", "vtk", "-o", str(out), "--interp", "40", "--metric", "test_loss"]) == 0
    dims, pts, arrays = read_vts(out)
    assert dims == (40, 40, 1)
    pts = pts.reshape(40, 40, 3)
    xs, ys = np.linspace(x[0], x[-1], 40), np.linspace(y[0], y[-1], 40)
    X, Y = np.meshgrid(xs, ys)
    ok = ~((X < x[1]) & (Y < y[1]))  # cells touching the missing corner point are NaN in the data
    assert np.allclose(pts[..., 2][ok], 2 * (2 + X - 0.5 * Y)[ok], rtol=1e-6)
    assert np.allclose(arrays["loss"].reshape(40, 40)[ok], (2 + X - 0.5 * Y)[ok], rtol=1e-6)


def test_li_h5_layout_bit_for_bit(tmp_path):
    h5py = pytest.importorskip("h5py")
    res, x, y, loss, acc = plane(tmp_path)
    out = tmp_path / "surf.h5"
    assert main(["export", str(res), "--format", "ll-h5", "-o", str(out)]) == 0
    with h5py.File(out, "r") as f:
        assert same_bits(f["xcoordinates"][...], x) and same_bits(f["ycoordinates"][...], y)
        assert same_bits(f["train_loss"][...], loss) and same_bits(f["test_loss"][...], 2 * loss)
        assert same_bits(f["train_acc"][...], acc * np.float32(100))  # Li et al. store accuracy in %
        assert same_bits(f["test_acc"][...], (acc / 2) * np.float32(100))
        # their plot_2D.py: contour(*np.meshgrid(x, y), train_loss): row i is y[i]
        assert f["train_loss"].shape == (NY, NX)
        assert json.loads(f.attrs["landscape"])["name"] == "test-run"


def test_garipov_npz_layout_bit_for_bit(tmp_path):
    res, x, y, loss, acc = plane(tmp_path)
    out = tmp_path / "plane.npz"
    assert main(["export", str(res), "--format", "npz", "-o", str(out)]) == 0
    d = np.load(out)
    i, j = 4, 2
    assert tuple(d["grid"][i, j]) == (x[i], y[j])  # their plane.py: grid[i, j] = (alpha_i, beta_j)
    assert same_bits(d["tr_loss"], loss.T) and same_bits(d["tr_nll"], loss.T)
    assert same_bits(d["tr_acc"], acc.T * np.float32(100))
    assert same_bits(d["tr_err"], np.float32(100) - acc.T * np.float32(100))
    assert same_bits(d["te_loss"], (2 * loss).T) and same_bits(d["te_acc"], (acc / 2).T * np.float32(100))
    assert d["tr_loss"][i, j] == loss[j, i]


def test_export_refusals_one_line(tmp_path, capsys):
    res, *_ = plane(tmp_path)
    line = write_result(tmp_path / "line.zarr", np.ones(9, np.float32), x=np.linspace(0, 1, 9), format=FORMAT)
    for argv, says in (
        (["export", str(res), "--format", "npz", "--log"], "--log: only with --format vtk"),
        (["export", str(line), "--format", "npz"], "this result is a line"),
        (["export", str(res), "--format", "vtk", "--metric", "nope"], "metric 'nope' is not in this result"),
        (["export", str(tmp_path / "none.zarr"), "--format", "vtk"], "no result at"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".zarr")) == []  # nothing half-written
    assert main(["export", str(line), "--format", "ll-h5", "-o", str(tmp_path / "line.h5")]) == 0

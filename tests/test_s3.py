"""Results on S3 (moto's S3 server on 127.0.0.1): run, resume, read, plot, point, fetch, clear errors."""

import urllib.request

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
import zarr

from cluster.store import ResultStore
from jobs.cli import main
from jobs.scan.point import point_state
from jobs.scan.run import run_scan
from jobs.specs import ScanSpec

from .conftest import scan_spec_dict
from .s3_server import BUCKET, s3  # noqa: F401 (s3: a module fixture)

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")  # moto[server]: flask, werkzeug

pytestmark = pytest.mark.ray

ARRAYS = ("loss", "accuracy", "x", "y", "tile_done", "origin", "directions")


@pytest.fixture(scope="module")
def spec(tiny_run):
    return ScanSpec.model_validate(scan_spec_dict(tiny_run))


@pytest.fixture(scope="module")
def s3_result(s3, ray_cluster, spec):
    url = f"s3://{BUCKET}/scans/plane.zarr"
    run_scan(spec, out=url, actors=2, plot=False)
    return url


@pytest.fixture(scope="module")
def local_result(ray_cluster, spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "plane.zarr"
    run_scan(spec, out=str(out), actors=1, plot=False)
    return out


def _same_arrays(a, b) -> None:
    ga, gb = (zarr.open_group(str(r), mode="r") for r in (a, b))
    for name in ARRAYS:
        assert np.array_equal(ga[name][...], gb[name][...], equal_nan=True), name


def _one_error_line(capsys, needles) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("landscape: error: "), err
    for n in needles:
        assert n in err, err
    return err


def test_a_scan_on_s3_equals_the_same_scan_on_disk(s3_result, local_result, s3):
    _same_arrays(s3_result, local_result)
    ds = xr.open_zarr(s3_result, storage_options={"client_kwargs": {"endpoint_url": s3.endpoint}})
    assert ds["loss"].dims == ("y", "x") and ds["loss"].shape == (7, 11)
    assert np.isfinite(ds["loss"].values).all()
    np.testing.assert_allclose(ds["y"].values, np.linspace(-0.4, 1.2, 7))
    store = ResultStore.open(s3_result)
    assert store.meta["status"] == "complete" and store.meta["evals_per_second"] > 0
    assert store.done_mask().all()
    assert not s3.fs.exists(f"{BUCKET}/scans/plane.zarr/.landscape-write-check")


def test_an_s3_result_resumes_only_its_missing_tiles(s3_result, s3, spec, capsys):
    part = f"s3://{BUCKET}/scans/part.zarr"
    s3.fs.copy(s3_result.removeprefix("s3://"), part.removeprefix("s3://"), recursive=True)
    g = zarr.open_group(part, mode="r+")
    done = g["tile_done"][...]  # (3, 3) tiles of 3x4 points
    done[1:, :] = 0  # only the first row of tiles finished
    g["tile_done"][...] = done
    g["loss"][3:, :] = np.nan
    g["accuracy"][3:, :] = np.nan
    ResultStore(g).update_meta(status="running")
    capsys.readouterr()
    run_scan(spec, out=part, plot=False)
    err = capsys.readouterr().err
    assert "resuming" in err and "6 of 9 tiles left" in err, err
    _same_arrays(part, s3_result)
    assert ResultStore.open(part).meta["status"] == "complete"
    run_scan(spec, out=part, plot=False)
    assert "already complete; nothing to evaluate" in capsys.readouterr().err


def test_plot_and_point_read_from_s3(s3_result, local_result, tmp_path, monkeypatch, capsys):
    assert main(["plot", s3_result, "--out", str(tmp_path / "figs")]) == 0
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    assert names == {f"{n}.png" for n in ("contour", "heatmap", "surface", "accuracy", "loss_relative_se")}
    monkeypatch.chdir(tmp_path)  # plots of a URL result go under ./results/<name>-plots
    assert main(["plot", s3_result]) == 0
    assert (tmp_path / "results" / "tiny-plane-plots" / "contour.png").exists()
    w = tmp_path / "w.pt"
    assert main(["point", s3_result, "--x", "0.2", "--y", "-0.4", "-o", str(w)]) == 0
    want = point_state(str(local_result), 0.2, -0.4)
    got = torch.load(w)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def test_fetch_copies_an_s3_result_to_a_local_folder(s3_result, tmp_path, capsys):
    dest = tmp_path / "copy" / "plane.zarr"
    assert main(["fetch", s3_result, "-o", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"result: {dest}"
    assert "fetch: " in err and "files" in err
    _same_arrays(dest, s3_result)
    assert ResultStore.open(str(dest)).meta == ResultStore.open(s3_result).meta
    assert xr.open_zarr(dest)["loss"].shape == (7, 11)
    assert [p.name for p in dest.parent.iterdir()] == ["plane.zarr"]  # no .partial-* left behind


def test_fetch_replaces_only_a_result_and_only_when_asked(s3_result, local_result, tmp_path, capsys):
    mine = tmp_path / "mine.zarr"
    mine.mkdir()
    (mine / "mine.txt").write_text("keep")
    for extra in ([], ["--overwrite"]):  # a user's folder: never replaced
        assert main(["fetch", s3_result, "-o", str(mine), *extra]) == 2
        err = _one_error_line(capsys, [str(mine), "not a landscape result", "left alone"])
        assert "--overwrite" not in err
    assert sorted(p.name for p in mine.iterdir()) == ["mine.txt"]
    dest = tmp_path / "plane.zarr"
    assert main(["fetch", str(local_result), "-o", str(dest)]) == 0
    capsys.readouterr()
    assert main(["fetch", s3_result, "-o", str(dest)]) == 2  # a result: only with --overwrite
    _one_error_line(capsys, [str(dest), "--overwrite"])
    assert main(["fetch", s3_result, "-o", str(dest), "--overwrite"]) == 0
    _same_arrays(dest, s3_result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.zarr", "plane.zarr"]


def test_an_interrupted_fetch_leaves_nothing_that_looks_like_a_result(s3_result, tmp_path, monkeypatch, capsys):
    import jobs.service.fetch

    calls = []

    def interrupt_after_two_batches(self, files, nbytes):
        calls.append(files)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(jobs.service.fetch, "BATCH", 2)
    monkeypatch.setattr(jobs.service.fetch._Counter, "update", interrupt_after_two_batches)
    assert main(["fetch", s3_result, "-o", str(tmp_path / "plane.zarr")]) == 130
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


def test_fetch_copies_a_local_result_too(local_result, tmp_path):
    assert main(["fetch", str(local_result), "-o", str(tmp_path / "copy.zarr")]) == 0
    _same_arrays(tmp_path / "copy.zarr", local_result)


def test_fetch_of_a_job_id_asks_the_job_for_its_output(s3_result, tmp_path, monkeypatch, capsys):
    asked = []

    def job_output(job_id, address):
        asked.append((job_id, address))
        return s3_result

    monkeypatch.setattr("jobs.service.remote.job_output", job_output)  # the contract of jobs.service.remote.job_output
    dest = tmp_path / "job.zarr"
    assert main(["fetch", "raysubmit_abc123", "-o", str(dest), "--address", "http://127.0.0.1:8265"]) == 0
    assert asked == [("raysubmit_abc123", "http://127.0.0.1:8265")]
    _same_arrays(dest, s3_result)


def test_fetch_of_something_that_is_not_a_result_fails_cleanly(s3, tmp_path, capsys):
    assert main(["fetch", f"s3://{BUCKET}/nothing.zarr", "-o", str(tmp_path / "x.zarr")]) == 2
    _one_error_line(capsys, ["no result at"])
    s3.fs.pipe(f"{BUCKET}/junk.zarr/zarr.json", b'{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    assert main(["fetch", f"s3://{BUCKET}/junk.zarr", "-o", str(tmp_path / "x.zarr")]) == 2
    _one_error_line(capsys, ["not a landscape result"])
    assert list(tmp_path.iterdir()) == []


def test_a_missing_bucket_fails_in_one_line_before_anything_runs(s3, tiny_run, tmp_path, monkeypatch, capsys):
    def no_ray(*a, **k):
        raise AssertionError("Ray was used before the output was checked")

    monkeypatch.setattr("jobs.scan.run.ray_session", no_ray)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(scan_spec_dict(tiny_run)))
    url = "s3://no-such-bucket/scans/plane.zarr"
    assert main(["run", str(spec_file), "--out", url, "--no-plot"]) == 2
    _one_error_line(capsys, [url, "bucket does not exist"])
    assert main(["run", str(spec_file), "--out", url, "--no-plot", "--overwrite"]) == 2
    _one_error_line(capsys, [url, "bucket does not exist"])
    assert main(["plot", url]) == 2
    _one_error_line(capsys, ["no result at", url])


@pytest.fixture
def moto_checks_credentials(s3):
    """moto accepts any key until told otherwise: from now on "testing" is an unknown key."""

    def set_free_requests(n: str) -> None:
        req = urllib.request.Request(
            f"{s3.endpoint}/moto-api/reset-auth", data=n.encode(), method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(req).close()

    set_free_requests("0")
    yield
    set_free_requests("inf")


def test_bad_credentials_fail_in_one_line(s3_result, tiny_run, tmp_path, moto_checks_credentials, capsys):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(scan_spec_dict(tiny_run)))
    assert main(["run", str(spec_file), "--out", s3_result, "--no-plot"]) == 2
    _one_error_line(capsys, [s3_result, "AWS_ACCESS_KEY_ID"])
    new = f"s3://{BUCKET}/scans/new.zarr"
    assert main(["run", str(spec_file), "--out", new, "--no-plot", "--overwrite"]) == 2
    _one_error_line(capsys, [new, "AWS_SECRET_ACCESS_KEY"])
    assert main(["fetch", s3_result, "-o", str(tmp_path / "x.zarr")]) == 2
    _one_error_line(capsys, ["cannot read", "AWS_ACCESS_KEY_ID"])

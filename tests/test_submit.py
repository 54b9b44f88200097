"""`landscape submit/status/logs/list/stop` against a real two-node Ray cluster on this machine.

The cluster (`tests/two_node.py`) is two `ray start` nodes on 127.0.0.2/127.0.0.3
with token authentication. The CLI runs in subprocesses whose environment names
this cluster; this process's own environment is never changed (conftest's
in-process Ray would otherwise find it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
import zarr

from jobs.cli import main

from .conftest import REPO, curve_spec_dict, scan_spec_dict
from .two_node import RAY, cluster, free_port, wait_for  # noqa: F401 (cluster: a module fixture)

pytestmark = pytest.mark.ray

def _spec_file(tmp: Path, tiny_run: Path, name: str, **overrides) -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(scan_spec_dict(tiny_run, name=name, **overrides)))
    return p


def _job_id(stdout: str) -> str:
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("job: ")]
    return line.removeprefix("job: ")


@pytest.fixture(scope="module")
def jobs_run(cluster, tiny_run, tmp_path_factory):
    """Two `submit --wait`s at once (they overlap on the cluster): the tiny scan on both nodes, and a
    scan that asks for a GPU this cluster lacks and so fails on the cluster."""
    tmp = tmp_path_factory.mktemp("submit")
    out = tmp / "remote.zarr"
    failing = cluster.cli_in_background("submit", str(_spec_file(tmp, tiny_run, "gpu")), "--out", str(tmp / "gpu.zarr"),
                                        "--gpus-per-actor", "1", "--wait")
    bare = tmp / "bare"  # a Python without landscape's libraries: a venv without packages
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    no_libs = cluster.cli_in_background("submit", str(_spec_file(tmp, tiny_run, "bare-python")), "--out",
                                        str(tmp / "bare.zarr"), "--python", str(bare / "bin" / "python"), "--wait")
    ok = cluster.cli("submit", str(_spec_file(tmp, tiny_run, "tiny-plane")), "--address", cluster.url,
                     "--out", str(out), "--actors", "2", "--env", "LANDSCAPE_TEST=on", "--wait", timeout=240)
    done = {name: (p, *p.communicate(timeout=240)) for name, p in (("failed", failing), ("no_libs", no_libs))}
    return {"ok": (ok, out), "python": bare / "bin" / "python",
            **{name: subprocess.CompletedProcess(p.args, p.returncode, o, e) for name, (p, o, e) in done.items()}}


@pytest.fixture(scope="module")
def submitted(jobs_run):
    """The tiny scan: (job id, result path, the submit process)."""
    r, out = jobs_run["ok"]
    assert r.returncode == 0, r.stdout + r.stderr
    return _job_id(r.stdout), out, r


def test_submit_wait_runs_the_scan_and_says_where_the_result_is(submitted):
    job, out, r = submitted
    assert job.startswith("landscape-tiny-plane-")
    assert f"result: {out}" in r.stdout.splitlines()
    assert f"landscape status {job}" in r.stderr and f"landscape logs {job} --follow" in r.stderr
    assert "done:" in r.stdout  # the driver's log, streamed
    assert f"job {job} SUCCEEDED" in r.stderr


def test_the_job_records_its_result_and_environment(cluster, submitted):
    job, out, _ = submitted
    info = cluster.api(f"/api/jobs/{job}")
    assert info["metadata"]["landscape_output"] == str(out) and info["metadata"]["landscape_name"] == "tiny-plane"
    assert info["runtime_env"]["env_vars"]["LANDSCAPE_TEST"] == "on"
    assert "--address auto" in info["entrypoint"] and "--actors 2" in info["entrypoint"]


def test_ray_job_status_sees_the_same_job(cluster, submitted):
    job, _, _ = submitted
    r = subprocess.run([*RAY, "job", "status", job, "--address", cluster.url],
                       env=cluster.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and f"Job {job!r} succeeded" in r.stdout + r.stderr, r.stdout + r.stderr


def test_status_shows_the_full_progress(cluster, submitted):
    job, out, _ = submitted
    r = cluster.cli("status", job, "--address", cluster.url)
    assert r.returncode == 0, r.stderr
    assert "state: SUCCEEDED" in r.stdout and f"result: {out}" in r.stdout
    assert "9/9 tiles (100%)" in r.stdout  # (7, 11) grid in (3, 4) tiles


def test_logs_hold_the_drivers_output(cluster, submitted):
    job, out, _ = submitted
    r = cluster.cli("logs", job)  # the address from RAY_ADDRESS
    assert r.returncode == 0, r.stderr
    assert "done:" in r.stdout and f"result: {out}" in r.stdout


def test_result_equals_an_in_process_evaluation(submitted, tiny_run):
    """The cluster's directions are the ones built here, and every grid value matches plain PyTorch."""
    from cluster.store import ResultStore
    from jobs.common.build import load_data
    from jobs.scan.problem import build_problem
    from jobs.scan.point import point_state
    from jobs.specs import ScanSpec
    from landscape.factories import ModelFactory

    from .independent import reference_loss

    _, out, _ = submitted
    spec = ScanSpec.model_validate(scan_spec_dict(tiny_run))
    problem = build_problem(spec).problem
    g = zarr.open_group(str(out), mode="r")
    assert np.array_equal(g["origin"][...], problem.slice.origin.numpy())
    assert np.array_equal(g["directions"][...], problem.slice.directions.numpy())
    inputs, targets = load_data(spec.data)
    model = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()
    xs, ys = g["x"][...], g["y"][...]
    loss, acc = g["loss"][...], g["accuracy"][...]
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            want_loss, want_acc = reference_loss(model, point_state(str(out), x, y), inputs, targets)
            assert loss[i, j] == pytest.approx(want_loss, rel=1e-5), (i, j)
            assert acc[i, j] == pytest.approx(want_acc, abs=1e-6), (i, j)
    assert ResultStore.open(str(out)).meta["status"] == "complete"


def test_the_result_records_the_submitting_sides_commit_and_files(submitted, tiny_run):
    """The job's copy of the code has no .git: the commit is the one `submit` recorded; the checkpoint read is the
    uploaded copy, its hash that of the file the spec names; the identity that of the spec as written."""
    import hashlib

    from cluster.store import ResultStore
    from jobs.specs import ScanSpec

    _, out, _ = submitted
    meta = ResultStore.open(str(out)).meta
    p = meta["provenance"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert (p["landscape"]["commit"], p["landscape"]["commit_from"]) == (head, "submitting side")
    ckpt = tiny_run / "epoch_003.pt"
    (entry,) = p["checkpoints"]
    assert entry["submitted_path"] == str(ckpt) and entry["path"].startswith("checkpoints/")
    assert entry["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert meta["identity"] == ScanSpec.model_validate(scan_spec_dict(tiny_run)).identity()


def test_list_and_job_output_know_landscape_jobs_only(cluster, submitted):
    job, out, _ = submitted
    script = f"""
from ray.job_submission import JobSubmissionClient
from jobs.service.remote import job_output
from landscape.errors import ClusterError
print("output:", job_output({job!r}, {cluster.url!r}))
other = JobSubmissionClient({cluster.url!r}).submit_job(entrypoint="echo hi", submission_id="not-a-scan")
for bad in (other, "no-such-job"):
    try:
        job_output(bad, None)
    except ClusterError as e:
        print("error:", e)
"""
    r = subprocess.run([sys.executable, "-c", script], env=cluster.env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"output: {out}" in r.stdout
    assert "'not-a-scan'" in r.stdout and "is not a landscape scan" in r.stdout
    assert "no job 'no-such-job'" in r.stdout
    r = cluster.cli("list")
    assert r.returncode == 0, r.stderr
    (row,) = [ln.split() for ln in r.stdout.splitlines() if ln.startswith(job)]
    assert row == [job, "SUCCEEDED", "tiny-plane", str(out)]
    assert "not-a-scan" not in r.stdout


def test_stop_ends_a_running_scan_and_keeps_its_finished_tiles(cluster, tiny_run, tmp_path):
    from cluster.store import ResultStore
    from landscape.errors import ResultError

    grid = {"x": {"min": -1, "max": 1, "num": 200}, "y": {"min": -1, "max": 1, "num": 200}}  # 10,000 tiles: minutes
    out = tmp_path / "long.zarr"
    r = cluster.cli("submit", str(_spec_file(tmp_path, tiny_run, "long", grid=grid, tile=2)), "--out", str(out),
                    "--actors", "1")
    assert r.returncode == 0, r.stderr
    job = _job_id(r.stdout)

    def some_tiles_done():
        try:
            return ResultStore.open(str(out)).done_mask().any()
        except ResultError:  # not created yet, or being created
            return False

    wait_for("the first tiles", some_tiles_done, [], [], timeout=120)
    r = cluster.cli("stop", job)
    assert r.returncode == 0, r.stderr
    assert f"job {job}: STOPPED" in r.stdout and f"result: {out}" in r.stdout
    assert cluster.api(f"/api/jobs/{job}")["status"] == "STOPPED"
    r = cluster.cli("status", job)
    assert "state: STOPPED" in r.stdout
    done = ResultStore.open(str(out)).done_mask()
    assert 0 < done.sum() < done.size and f"/{done.size} tiles" in r.stdout
    meta = ResultStore.open(str(out)).meta
    assert meta["status"] == "stopped", meta  # the driver got SIGTERM and said so in the result
    assert "result status: stopped" in r.stdout


def test_wait_exits_1_when_the_job_fails_and_says_why(jobs_run):
    r = jobs_run["failed"]
    assert r.returncode == 1, r.stdout + r.stderr
    job = _job_id(r.stdout)
    assert "landscape: error: no actor can be placed" in r.stdout  # the driver's own error, streamed
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"landscape: error: job {job} FAILED: no actor can be placed"), r.stderr  # its line, not Ray's
    assert f"landscape logs {job}" in last
    assert not [ln for ln in r.stderr.splitlines() if " INFO " in ln or ln.startswith("INFO")], r.stderr  # Ray stays quiet


def _one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("landscape: error:"), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_token_auth_missing_or_wrong_is_one_clear_line(cluster):
    no_mode = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
    _one_line_error(cluster.cli("list", env=no_mode), "requires token authentication", "RAY_AUTH_MODE=token")
    wrong = {**cluster.env, "RAY_AUTH_TOKEN": "0" * 64}
    wrong.pop("RAY_AUTH_TOKEN_PATH")
    _one_line_error(cluster.cli("list", env=wrong), "refused the authentication token")


def _bad(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("landscape: error:"), err
    for n in needles:
        assert n in err, err


def test_bad_input_fails_before_anything_is_sent(tiny_run, tmp_path, capsys):
    spec = _spec_file(tmp_path, tiny_run, "bad")
    nowhere = f"http://127.0.0.1:{free_port()}"
    _bad(capsys, ["submit", str(tmp_path / "none.yaml"), "--address", nowhere], "none.yaml", "does not exist")
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({**scan_spec_dict(tiny_run), "gird": {}}))
    _bad(capsys, ["submit", str(typo), "--address", nowhere, "--out", str(tmp_path / "o.zarr")], "gird", "unknown field")
    _bad(capsys, ["submit", str(spec), "--address", nowhere, "--out", "results/x.zarr"],
         "'results/x.zarr' is a relative path", "absolute path", "s3://")
    _bad(capsys, ["submit", str(spec), "--address", nowhere], "'results/bad.zarr' is a relative path")  # the default
    _bad(capsys, ["submit", str(spec), "--address", nowhere, "--out", str(tmp_path / "o.zarr")],
         "cannot reach the Ray Jobs API", nowhere)
    _bad(capsys, ["status", "some-id", "--address", nowhere], "cannot reach")
    # Checkpoints are checked before the cluster is asked: these fail on the file, not the address.
    gone = _spec_file(tmp_path, tiny_run, "gone", slice={"kind": "random_plane", "checkpoint": str(tmp_path / "gone.pt")})
    _bad(capsys, ["submit", str(gone), "--address", nowhere, "--out", str(tmp_path / "o.zarr")],
         "gone.pt", "does not exist here", "--remote-checkpoints")
    rel = _spec_file(tmp_path, tiny_run, "rel", slice={"kind": "random_plane", "checkpoint": "rel/epoch.pt"})
    _bad(capsys, ["submit", str(rel), "--address", nowhere, "--out", str(tmp_path / "o.zarr"), "--remote-checkpoints"],
         "must be absolute", "rel/epoch.pt")
    assert not (tmp_path / "o.zarr").exists()


def test_the_bundle_carries_code_spec_and_checkpoints(tiny_run, tmp_path):
    """What the job's working_dir holds: the packages, the checkpoint under its own name, a spec naming it."""
    from jobs.service.bundle import PACKAGES, build_bundle
    from jobs.specs import ScanSpec, load_spec

    spec_path = _spec_file(tmp_path, tiny_run, "b")
    bundle = build_bundle(spec_path, load_spec(spec_path), tmp_path / "bundle", remote_checkpoints=False)
    for name in PACKAGES:
        assert (bundle.root / name / "__init__.py").is_file() and not list((bundle.root / name).rglob("*.pyc"))
    staged = ScanSpec.model_validate(yaml.safe_load((bundle.root / bundle.spec_file).read_text()))
    ckpt = Path(staged.slice.checkpoint)
    assert not ckpt.is_absolute() and ckpt.name == "epoch_003.pt"
    assert (bundle.root / ckpt).read_bytes() == (tiny_run / "epoch_003.pt").read_bytes()
    assert bundle.checkpoints == [str(tiny_run / "epoch_003.pt")]
    assert bundle.size < 5 * 2**20


def test_a_python_without_the_libraries_fails_in_one_line_that_status_shows_whole(cluster, jobs_run):
    """`submit --python` names the head's interpreter; one that lacks landscape's libraries (a bare venv here) makes
    the job fail at its bootstrap with one line saying what to install where, and `status` prints that line whole."""
    r, python = jobs_run["no_libs"], jobs_run["python"]
    assert r.returncode == 1, r.stdout + r.stderr
    job = _job_id(r.stdout)
    logged = [ln.removeprefix("landscape: error: ") for ln in r.stdout.splitlines() if ln.startswith("landscape: error:")]
    assert len(logged) == 1 and "Traceback" not in r.stdout, r.stdout  # the job's whole log: the one line
    line = logged[0]
    assert line.startswith(f"the job's Python {python} (on ") and "cannot import yaml (No module named 'yaml'" in line
    assert line.endswith("install the project there (pip install -e . with the head's Python, or in its image) "
                         "or submit with --python /path/to/a/python/that/has/it"), line
    assert r.stderr.strip().splitlines()[-1].startswith(f"landscape: error: job {job} FAILED: {line} (the whole log")
    s = cluster.cli("status", job)
    assert s.returncode == 0, s.stderr
    assert "state: FAILED" in s.stdout.splitlines() and f"error: {line}" in s.stdout.splitlines(), s.stdout
    assert cluster.api(f"/api/jobs/{job}")["entrypoint"].startswith(f"{python} -m jobs.service.bootstrap run ")


# -- a curve training as a Ray job: `train-curve` on Ray Train workers, one per node (DDP across nodes), its
# endpoints uploaded with the job (last: it takes both nodes' CPUs)


def test_submit_trains_a_curve_as_a_ray_job_on_two_ray_train_workers(cluster, digits_minima, digits_curve, tmp_path):
    spec = tmp_path / "curve.yaml"
    spec.write_text(yaml.safe_dump(curve_spec_dict(digits_minima, epochs=3)))
    out = tmp_path / "remote-curve"
    r = cluster.cli("submit", str(spec), "--out", str(out), "--workers", "2", "--wait", timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "submitted curve training 'digits-curve' (2 Ray Train worker(s))" in r.stderr
    assert "2 Ray Train worker(s), each CPU 1 GPU 0" in r.stdout  # the job's log, streamed
    record = json.loads((out / "curve.json").read_text())
    assert record["workers"] == 2 and [h["epoch"] for h in record["history"]] == [1, 2, 3]
    # The same curve as the in-process run of the same spec (its first 3 epochs), up to float rounding.
    local = json.loads((digits_curve / "curve.json").read_text())["history"][:3]
    for remote, here in zip(record["history"], local):
        assert remote["train_loss"] == pytest.approx(here["train_loss"], rel=1e-4)
    ckpt = torch.load(out / "epoch_003.pt", weights_only=True)
    assert ckpt["landscape_curve"] == 1 and [e["sha256"] for e in ckpt["endpoints"]] == [
        e["sha256"] for e in torch.load(digits_curve / "epoch_003.pt", weights_only=True)["endpoints"]
    ]

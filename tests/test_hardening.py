"""No data lost, on real processes: one writer per result, --overwrite never deletes what is not a result,
a driver killed while creating its result, and a run's status after Ctrl-C, SIGTERM or a failure.

Drivers run as subprocesses (`python -m jobs.cli run`) joined to this session's Ray by address (a
driver's own Ray costs seconds; one test starts one on purpose). Every finished result must equal an
undisturbed run bit for bit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cluster.lease import LEASE_NAME
from cluster.store import ResultStore
from jobs.cli import main
from jobs.scan.run import run_scan
from jobs.specs import ScanSpec

from .procs import descendants, reap
from .s3_server import BUCKET, s3  # noqa: F401 (s3: a module fixture)
from .slow_factories import line_checkpoints
from .test_faults import TILES, arrays, assert_same, spec_dict, subprocess_env, tiles_done, wait_for, write_spec

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return line_checkpoints(tmp_path_factory.mktemp("ckpts"))


@pytest.fixture(scope="module")
def baseline(ray_cluster, ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline") / "base.zarr"
    run_scan(ScanSpec.model_validate(spec_dict(ckpts)), out=str(out), actors=2, plot=False)
    return arrays(out)


@pytest.fixture(scope="module")
def address(ray_cluster):
    return ray_cluster.get_runtime_context().gcs_address


def driver(args: list[str], log: Path, address: str | None = None) -> subprocess.Popen:
    """`landscape run ARGS --no-plot` in its own process group; joins `address` when given."""
    extra = ["--address", address] if address else []
    with open(log, "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "run", *args, *extra, "--no-plot"],
            cwd=REPO, env=subprocess_env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )


def last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def finish(p: subprocess.Popen, timeout: float = 240) -> int:
    try:
        return p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# -- one writer -------------------------------------------------------------------------


def test_two_drivers_racing_into_one_output_exactly_one_writes(ckpts, baseline, address, tmp_path):
    out = tmp_path / "race.zarr"
    spec = write_spec(tmp_path, spec_dict(ckpts, delay=0.03))
    procs = [driver([spec, "--out", str(out)], tmp_path / f"d{i}.log", address) for i in range(2)]
    codes = [finish(p) for p in procs]
    assert sorted(codes) == [0, 2], [(c, last_line(tmp_path / f"d{i}.log")) for i, c in enumerate(codes)]
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    refusal = last_line(tmp_path / f"d{loser}.log")
    assert refusal.startswith("landscape: error: ") and "is being written by landscape run faulty" in refusal, refusal
    assert f"pid {procs[winner].pid} on" in refusal, refusal
    assert ResultStore.open(str(out)).meta["status"] == "complete"
    assert not (out / LEASE_NAME).exists()  # released at the end
    assert_same(out, baseline)


def test_a_second_driver_cannot_resume_while_the_first_writes(ckpts, baseline, address, tmp_path):
    out, hold = tmp_path / "resume.zarr", tmp_path / "hold"
    spec = write_spec(tmp_path, spec_dict(ckpts, hold=str(hold)))
    first = driver([spec, "--out", str(out)], tmp_path / "a.log", address)
    try:
        wait_for(lambda: tiles_done(out) >= 2, 120, "two stored tiles", first)
        hold.touch()  # the first driver now waits mid-scan
        second = driver([spec, "--out", str(out)], tmp_path / "b.log", address)
        code = finish(second, 120)
        assert first.poll() is None
        assert code == 2, last_line(tmp_path / "b.log")
        assert f"is being written by landscape run faulty (pid {first.pid}" in last_line(tmp_path / "b.log")
        hold.unlink()
        assert finish(first) == 0, last_line(tmp_path / "a.log")
    finally:
        finish(first, 1)
    assert_same(out, baseline)


# -- --overwrite ---------------------------------------------------------------------------


def test_overwrite_never_deletes_a_folder_that_is_not_a_result(ckpts, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("keep")
    spec = write_spec(tmp_path, spec_dict(ckpts))
    for extra in ([], ["--overwrite"]):
        assert main(["run", spec, "--out", str(d), "--no-plot", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is not a landscape result (it holds notes.txt)" in err[0], err
        assert "--overwrite" not in err[0]  # never suggest deleting a user's folder
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"] and (d / "notes.txt").read_text() == "keep"
    f = tmp_path / "file.zarr"
    f.write_text("not a folder")
    assert main(["run", spec, "--out", str(f), "--no-plot", "--overwrite"]) == 2
    assert "it is a file" in capsys.readouterr().err and f.read_text() == "not a folder"


def test_overwrite_replaces_a_result_but_keeps_a_users_file_inside_it(ray_cluster, ckpts, baseline, tmp_path, capsys):
    out = tmp_path / "r.zarr"
    other = {**spec_dict(ckpts), "grid": {"x": {"min": -0.5, "max": 1.5, "num": 6}}}
    assert main(["run", write_spec(tmp_path, other, "other.yaml"), "--out", str(out), "--no-plot"]) == 0
    (out / "README.txt").write_text("my notes about this scan")
    spec = write_spec(tmp_path, spec_dict(ckpts))
    capsys.readouterr()
    assert main(["run", spec, "--out", str(out), "--no-plot"]) == 2
    assert "holds a different scan" in capsys.readouterr().err  # a result: --overwrite is the way
    assert main(["run", spec, "--out", str(out), "--no-plot", "--overwrite"]) == 0
    assert (out / "README.txt").read_text() == "my notes about this scan"
    assert_same(out, baseline)


def test_an_empty_folder_is_a_fine_output(ray_cluster, ckpts, baseline, tmp_path):
    out = tmp_path / "empty.zarr"
    out.mkdir()
    assert main(["run", write_spec(tmp_path, spec_dict(ckpts)), "--out", str(out), "--no-plot"]) == 0
    assert_same(out, baseline)


# -- a driver killed while it creates its result -------------------------------------------


@pytest.mark.parametrize("delay_ms", [0, 20, 50])
def test_a_driver_killed_while_creating_its_result_leaves_something_the_next_run_completes(
    ckpts, baseline, address, tmp_path, capsys, delay_ms
):
    out = tmp_path / "created.zarr"
    spec = write_spec(tmp_path, spec_dict(ckpts))
    p = driver([spec, "--out", str(out)], tmp_path / "killed.log", address)
    try:
        wait_for(lambda: (out / "zarr.json").exists(), 120, "the result's creation to start", p)
        time.sleep(delay_ms / 1000)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        finish(p, 1)
    capsys.readouterr()
    assert main(["run", spec, "--out", str(out), "--no-plot", "--address", address]) == 0, capsys.readouterr().err
    assert ResultStore.open(str(out)).meta["status"] == "complete"
    assert_same(out, baseline)


def test_leftovers_of_a_killed_creation_are_recognised(ray_cluster, ckpts, baseline, tmp_path, capsys):
    spec = write_spec(tmp_path, spec_dict(ckpts))
    only_lease = tmp_path / "lease-only.zarr"
    only_lease.mkdir()
    (only_lease / LEASE_NAME).write_text('{"pid": 1, "host": "elsewhere"}')
    torn = tmp_path / "torn.zarr"
    torn.mkdir()
    (torn / "zarr.json").write_text('{"zarr_format": 3, "node_ty')  # killed mid-write
    for out in (only_lease, torn):
        assert main(["run", spec, "--out", str(out), "--no-plot"]) == 0, capsys.readouterr().err
        assert_same(out, baseline)


# -- the status a run leaves behind -------------------------------------------------------


def _status(out: Path) -> dict:
    return ResultStore.open(str(out)).meta


@pytest.mark.parametrize("sig, code, status, line", [
    (signal.SIGINT, 130, "interrupted", "landscape: interrupted; run the same command again to resume"),
    (signal.SIGTERM, 143, "stopped", "landscape: stopped (SIGTERM); run the same command again to resume"),
])
def test_ctrl_c_and_sigterm_record_their_status_and_the_run_resumes(ckpts, baseline, address, tmp_path, sig, code, status, line):
    out, hold = tmp_path / "sig.zarr", tmp_path / "hold"
    spec = write_spec(tmp_path, spec_dict(ckpts, hold=str(hold)))
    log = tmp_path / "sig.log"
    p = driver([spec, "--out", str(out)], log, address)
    try:
        wait_for(lambda: tiles_done(out) >= 1, 120, "a stored tile", p)
        hold.touch()  # mid-scan from here on
        os.killpg(p.pid, sig)  # what a terminal's Ctrl-C, `kill -TERM` of the group or `ray job stop` do
        assert p.wait(timeout=60) == code, log.read_text()
    finally:
        finish(p, 1)
    text = log.read_text()
    assert last_line(log) == line, text
    assert "Traceback" not in text and "SIGTERM received" not in text and "*** " not in text, text
    meta = _status(out)
    assert meta["status"] == status and meta["error"], meta
    assert not (out / LEASE_NAME).exists()
    hold.unlink()
    assert main(["run", spec, "--out", str(out), "--no-plot", "--address", address]) == 0
    assert _status(out)["status"] == "complete"
    assert_same(out, baseline)


def test_sigterm_to_a_driver_with_its_own_ray_is_one_line_and_resumable(ckpts, tmp_path):
    """Ray's own SIGTERM handlers (exit, native stack dump) must not replace ours."""
    out, hold = tmp_path / "own.zarr", tmp_path / "hold"
    spec = write_spec(tmp_path, spec_dict(ckpts, hold=str(hold)))
    log = tmp_path / "own.log"
    p = driver([spec, "--out", str(out)], log)  # starts and stops its own local Ray
    leftovers: set[int] = set()
    try:
        wait_for(lambda: tiles_done(out) >= 1, 180, "a stored tile", p)
        hold.touch()
        leftovers = descendants(p.pid)
        p.send_signal(signal.SIGTERM)  # `kill PID`
        assert p.wait(timeout=60) == 143, log.read_text()
    finally:
        finish(p, 1)
        reap(leftovers, grace_s=5, pgid=p.pid)
    assert last_line(log) == "landscape: stopped (SIGTERM); run the same command again to resume", log.read_text()
    assert "*** " not in log.read_text()
    assert _status(out)["status"] == "stopped"


def test_a_failed_run_says_failed_and_why(ray_cluster, ckpts, tmp_path, capsys):
    out = tmp_path / "failed.zarr"
    d = spec_dict(ckpts, cluster={"max_attempts": 1}, raise_at=[0.36, 0.38])
    assert main(["run", write_spec(tmp_path, d), "--out", str(out), "--no-plot", "--actors", "1"]) == 2
    meta = _status(out)
    assert meta["status"] == "failed" and "tile-5" in meta["error"] and "poisoned grid point" in meta["error"], meta
    assert int(ResultStore.open(str(out)).done_mask().sum()) < TILES


def test_two_drivers_racing_into_one_s3_result_exactly_one_writes(s3, ckpts, baseline, address, tmp_path):
    url = f"s3://{BUCKET}/race/one.zarr"
    spec = write_spec(tmp_path, spec_dict(ckpts, delay=0.03))
    procs = [driver([spec, "--out", url], tmp_path / f"s{i}.log", address) for i in range(2)]
    codes = [finish(p) for p in procs]
    assert sorted(codes) == [0, 2], [(c, last_line(tmp_path / f"s{i}.log")) for i, c in enumerate(codes)]
    loser = codes.index(2)
    assert "is being written by landscape run faulty" in last_line(tmp_path / f"s{loser}.log")
    assert ResultStore.open(url).meta["status"] == "complete"
    assert not s3.fs.exists(f"{BUCKET}/race/one.zarr/{LEASE_NAME}")
    assert_same(url, baseline)


def test_allow_nonfinite_scans_a_nan_checkpoint_and_says_so(ray_cluster, tiny_run, tmp_path, capsys):
    import torch

    from .conftest import scan_spec_dict

    state = torch.load(tiny_run / "epoch_003.pt", weights_only=True)
    state["net.2.bias"][0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    d = scan_spec_dict(tiny_run, allow_nonfinite=True, grid={"x": {"min": -1, "max": 1, "num": 3}, "y": {"min": 0, "max": 1, "num": 2}})
    d["slice"]["checkpoint"] = str(tmp_path / "nan.pt")
    out = tmp_path / "nan.zarr"
    assert main(["run", write_spec(tmp_path, d), "--out", str(out), "--no-plot"]) == 0
    assert "holds NaN or inf in net.2.bias (allow_nonfinite: true)" in capsys.readouterr().err
    meta = ResultStore.open(str(out)).meta
    assert meta["status"] == "complete" and any("allow_nonfinite" in n for n in meta["notes"])
    assert np.isnan(arrays(out)["loss"]).all()  # the garbage is there, and said to be

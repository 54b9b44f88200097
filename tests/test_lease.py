"""One writer per result: the lease on local disk (flock) and on S3 (conditional writes, moto's server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cluster.lease import LEASE_NAME, LeaseHeld
from cluster.leasing import take_lease
from landscape.errors import ResultError

from .s3_server import BUCKET, s3  # noqa: F401 (s3: a module fixture)

REPO = Path(__file__).resolve().parents[1]

HOLDER = """
import sys, time
from cluster.leasing import take_lease
from landscape.errors import ResultError
lease = take_lease(sys.argv[1], "holder")
print("held", flush=True)
while True:  # check before each 'write', as a writer does
    try:
        lease.check()
    except ResultError as e:
        print("lost:", e, flush=True)
        break
    time.sleep(0.05)
"""


def _holder(url: str, ttl: float | None = None, **env) -> subprocess.Popen:
    e = {**os.environ, "PYTHONPATH": str(REPO), **env}
    if ttl is not None:
        e["LANDSCAPE_LEASE_TTL_S"] = str(ttl)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, url], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held", p.stderr.read()
    return p


def test_a_second_writer_is_refused_naming_the_holder_until_it_releases(tmp_path):
    url = str(tmp_path / "r.zarr")
    first = take_lease(url, "landscape run first")
    with pytest.raises(LeaseHeld, match=rf"landscape run first \(pid {os.getpid()} on .*, since .*last heartbeat"):
        take_lease(url, "landscape run second")
    first.release()
    assert not (Path(url) / LEASE_NAME).exists()
    second = take_lease(url, "landscape run second")
    assert second.taken_over is None
    second.release()


def test_a_dead_holders_lease_is_taken_over_with_a_note(tmp_path, capsys):
    url = str(tmp_path / "r.zarr")
    p = _holder(url)
    p.send_signal(signal.SIGKILL)  # dies holding it: the kernel drops the lock, the file stays
    p.wait()
    assert (Path(url) / LEASE_NAME).exists()
    lease = take_lease(url, "landscape run next")
    assert lease.taken_over["pid"] == p.pid
    assert f"took over the stale lease of holder (pid {p.pid}" in capsys.readouterr().err
    lease.release()


def test_a_silent_holder_is_taken_over_after_the_ttl_and_stops_before_its_next_write(tmp_path, monkeypatch):
    url = str(tmp_path / "r.zarr")
    p = _holder(url, ttl=1.0)
    try:
        monkeypatch.setenv("LANDSCAPE_LEASE_TTL_S", "1")
        with pytest.raises(LeaseHeld):  # alive and renewing: refused
            take_lease(url, "early")
        p.send_signal(signal.SIGSTOP)  # hangs: no more heartbeats
        time.sleep(1.6)
        lease = take_lease(url, "landscape run next")
        assert lease.taken_over["pid"] == p.pid
        p.send_signal(signal.SIGCONT)
        out, _ = p.communicate(timeout=20)
        assert "lost:" in out and "taken over by landscape run next" in out, out
        lease.check()  # still ours
        lease.release()
    finally:
        if p.poll() is None:
            p.kill()


def test_release_leaves_a_newer_holders_lease_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_LEASE_TTL_S", "1")
    url = str(tmp_path / "r.zarr")
    old = take_lease(url, "old")
    old._stop.set()  # stop its heartbeat: it looks silent
    time.sleep(1.6)
    new = take_lease(url, "new")
    with pytest.raises(ResultError, match="lost its lease"):
        old.check()
    old.release()
    new.check()
    assert (Path(url) / LEASE_NAME).exists()
    new.release()


# -- S3 ----------------------------------------------------------------------------


def test_s3_lease_is_exclusive_and_released(s3):
    url = f"s3://{BUCKET}/lease/one.zarr"
    first = take_lease(url, "first")
    with pytest.raises(LeaseHeld, match="first"):
        take_lease(url, "second")
    first.check()
    first.release()
    assert not s3.fs.exists(f"{BUCKET}/lease/one.zarr/{LEASE_NAME}")
    take_lease(url, "second").release()


def test_s3_stale_lease_is_taken_over_once_and_its_holder_notices(s3, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_LEASE_TTL_S", "1")
    url = f"s3://{BUCKET}/lease/stale.zarr"
    old = take_lease(url, "old")
    old._stop.set()  # no more renewals
    time.sleep(2.5)  # S3 times have 1 s resolution
    won, lost = [], []

    def take(name):
        try:
            won.append(take_lease(url, name))
        except LeaseHeld as e:
            lost.append(str(e))

    racers = [threading.Thread(target=take, args=(f"taker-{i}",)) for i in range(3)]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert len(won) == 1 and len(lost) == 2, (won, lost)
    with pytest.raises(ResultError, match=f"taken over by {won[0].info['command']}"):
        old.check()
    old.release()  # must not delete the new holder's lease
    won[0].check()
    won[0].release()

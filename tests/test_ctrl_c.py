"""Ctrl-C ends the test suite: a pytest run interrupted inside the session Ray, or inside an in-process
`landscape run` (whose main() turns Ctrl-C into exit status 130), stops within seconds and starts no
further test. The probes are tests/sigint_probe.py, run in a pytest subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import REPO

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("probe", ["test_waits_on_ray", "test_cli_in_process"])
def test_ctrl_c_ends_the_suite(probe, tmp_path):
    ready = tmp_path / "ready"
    env = {**os.environ, "SIGINT_PROBE_READY": str(ready), "RAY_USAGE_STATS_ENABLED": "0"}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "bt"),
            f"tests/sigint_probe.py::{probe}", "tests/sigint_probe.py::test_after_the_interrupted_one"]
    # A session of its own: the SIGINT goes to its whole process group, as a terminal's Ctrl-C does.
    p = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()[0][-3000:] if p.poll() is not None else "no ready"
            time.sleep(0.2)
        t0 = time.monotonic()
        os.killpg(p.pid, signal.SIGINT)
        out, _ = p.communicate(timeout=60)  # ray.shutdown takes some seconds on a loaded machine
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 2, out[-3000:]  # pytest: interrupted
    assert not ready.with_suffix(".went_on").exists(), "the suite went on with the next test"
    assert took < 60, took
    assert "passed" not in out.splitlines()[-1], out[-3000:]

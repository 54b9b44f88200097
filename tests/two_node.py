"""A real two-node Ray cluster on this machine for the submit tests (module fixture `cluster`).

The cluster is two `ray start --block` processes (a head and a worker, one CPU each),
each in its own process group so that teardown ends exactly them: `ray stop` would
end every Ray on the machine, including the in-process one of conftest's
`ray_cluster`. The nodes use 127.0.0.2 and 127.0.0.3: Ray 2.60 replaces 127.0.0.1
(and localhost) by the machine's outward address, but leaves other loopback
addresses alone. Token authentication is on, with a token of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.ray_head import stop_head


BIN = Path(sys.executable).parent
# Ray's CLI through this interpreter: a venv that shares its packages with another may have no `ray` script.
RAY = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    # Ray's fixed defaults (52365 for the agent, 10001 for Ray Client) would clash with other Rays here.
    names = ["dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
             "metrics-export-port", "node-manager-port", "object-manager-port"]
    return [f"--{n}={free_port()}" for n in names]


@dataclass
class Cluster:
    url: str  # the dashboard / Jobs API
    env: dict  # for client subprocesses: RAY_ADDRESS names the cluster; the token
    token: str
    root: Path

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(self.url + path, method=method, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stop_jobs(self) -> list[int]:
        """Stop the jobs still running; their drivers' pids (Ray starts each in a session of its own,
        outside the nodes' process groups)."""
        jobs = self.api("/api/jobs/")
        for j in jobs:
            if j["status"] not in ("SUCCEEDED", "FAILED", "STOPPED"):
                self.api(f"/api/jobs/{j['submission_id']}/stop", method="POST")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            j["status"] not in ("SUCCEEDED", "FAILED", "STOPPED") for j in self.api("/api/jobs/")
        ):
            time.sleep(0.3)
        return [j["driver_info"]["pid"] for j in jobs if j.get("driver_info") and j["driver_info"].get("pid")]

    def cli(self, *argv: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """`landscape ARGV` in a subprocess, from a folder outside the repository."""
        return subprocess.run(
            [sys.executable, "-m", "jobs.cli", *argv], env=env or self.env, cwd=self.root,
            capture_output=True, text=True, timeout=timeout,
        )

    def cli_in_background(self, *argv: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", *argv], env=self.env, cwd=self.root,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_driver(pid: int) -> None:
    """A job driver that outlived its cluster (checked by command line: pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"jobs.cli" in cmdline or b"jobs.service.bootstrap" in cmdline:  # a job runs the CLI under its bootstrap
            os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass


def wait_for(what: str, ok, procs, logs, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p, log in zip(procs, logs):
            if p.poll() is not None:
                pytest.fail(f"a Ray node exited while waiting for {what}:\n{log.read_text()[-3000:]}")
        try:
            if ok():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="lsray", dir="/tmp"))  # short: Ray's socket paths live under it
    token = secrets.token_hex(32)
    (root / "token").write_text(token)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(root / "token"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # the job's `python` is this venv's
    )
    gcs, dash = free_port(), free_port()
    node = ["--num-cpus=1", "--num-gpus=0", "--object-store-memory=80000000", "--block", "--disable-usage-stats"]
    head_log, worker_log = root / "head.log", root / "worker.log"
    head = _start(
        [*RAY, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--ray-client-server-port={free_port()}",
         f"--temp-dir={root / 'ray'}", *node, *_node_ports()],
        env, head_log,
    )
    procs, logs, drivers = [head], [head_log], []
    try:
        c = Cluster(f"http://127.0.0.1:{dash}", {**env, "RAY_ADDRESS": f"http://127.0.0.1:{dash}"}, token, root)
        # The worker can join once the GCS listens, long before the dashboard is up.
        wait_for("the head's GCS", lambda: socket.create_connection((HEAD_IP, gcs), timeout=1).close() or True, procs, logs)
        procs.append(_start(
            [*RAY, "start", f"--address={HEAD_IP}:{gcs}", f"--node-ip-address={WORKER_IP}", *node,
             *_node_ports()],
            env, worker_log,
        ))
        logs.append(worker_log)

        def two_nodes():
            nodes = c.api("/api/v0/nodes")["data"]["result"]["result"]  # Ray's state API
            return sum(n["state"] == "ALIVE" for n in nodes) == 2

        wait_for("the dashboard", lambda: c.api("/api/version"), procs, logs)
        wait_for("the worker node", two_nodes, procs, logs)
        yield c
        drivers = c.stop_jobs()
    finally:
        for p in reversed(procs):
            stop_head(p)
        for pid in drivers:
            _kill_driver(int(pid))
        shutil.rmtree(root, ignore_errors=True)

"""README's "A cluster on your machine", end to end: `deploy/local-cluster.sh up`, submit a tiny
scan from a shell that sourced the printed env file, status, the dashboard's job API, fetch, down.

The cluster is a separate one-node Ray in its own session (the script's `setsid`), on free
ports, so it never meets conftest's in-process Ray or another test's cluster.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr

from .conftest import REPO, scan_spec_dict
from .two_node import free_port

pytestmark = pytest.mark.ray

SCRIPT = REPO / "deploy" / "local-cluster.sh"
NODE_PORTS = ["dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
              "node-manager-port", "object-manager-port", "ray-client-server-port"]


def _script(cmd: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), cmd], env=env, capture_output=True, text=True, timeout=timeout)


def _session_pids(sid: int) -> set[int]:
    pids = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.getsid(int(p.name)) == sid:
                    pids.add(int(p.name))
            except OSError:
                pass
    return pids


def _listening(pids: set[int]) -> list[str]:
    """Local addresses that these processes listen on (TCP), from `ss`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [ln.split()[3] for ln in out.splitlines() if any(f"pid={p}," in ln for p in pids)]


@pytest.fixture(scope="module")
def local_cluster():
    root = Path(tempfile.mkdtemp(prefix="lslc", dir="/tmp"))  # short: Ray's socket paths live under it
    dash = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        LANDSCAPE_CLUSTER_DIR=str(root / "c"), LANDSCAPE_PYTHON=sys.executable, LANDSCAPE_NUM_CPUS="1",
        LANDSCAPE_RAY_PORT=str(free_port()), LANDSCAPE_DASHBOARD_PORT=str(dash), LANDSCAPE_METRICS_PORT=str(free_port()),
        LANDSCAPE_RAY_START_ARGS=" ".join([f"--{n}={free_port()}" for n in NODE_PORTS] + ["--object-store-memory=80000000"]),
    )
    up = _script("up", env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield root, env, up, f"http://127.0.0.1:{dash}"
    finally:
        down = _script("down", env, timeout=120)
        pid_file = root / "c" / "pid"
        assert down.returncode == 0 and not pid_file.exists(), down.stdout + down.stderr
        shutil.rmtree(root, ignore_errors=True)


def test_the_readme_path_from_up_to_down(local_cluster, tiny_run):
    root, env, up, url = local_cluster
    env_file = root / "c" / "env"
    assert f"source {env_file}" in up.stdout and f"dashboard {url}" in up.stdout
    sid = int((root / "c" / "pid").read_text())

    # Loopback only: every socket this cluster listens on is on 127.0.0.1.
    if shutil.which("ss"):
        addrs = _listening(_session_pids(sid))
        assert addrs, "found none of the cluster's sockets"
        assert all(a.rpartition(":")[0] in ("127.0.0.1", "[::ffff:127.0.0.1]") for a in addrs), addrs

    spec = root / "tiny.yaml"
    spec.write_text(yaml.safe_dump(scan_spec_dict(tiny_run, name="readme-scan")))
    out = root / "remote.zarr"

    def shell(cmd: str, timeout: float = 240) -> subprocess.CompletedProcess:
        """As a user would: a shell that sourced the env file `up` printed, outside the repository."""
        client = {k: v for k, v in env.items() if not k.startswith("LANDSCAPE_")}
        line = f"source {shlex.quote(str(env_file))} && {shlex.quote(sys.executable)} -m jobs.cli {cmd}"
        return subprocess.run(["bash", "-c", line], env=client, cwd=root, capture_output=True, text=True, timeout=timeout)

    r = shell(f"submit {spec} --out {out} --wait")
    assert r.returncode == 0, r.stdout + r.stderr
    (job,) = [ln.removeprefix("job: ") for ln in r.stdout.splitlines() if ln.startswith("job: ")]

    r = shell(f"status {job}")
    assert r.returncode == 0 and "state: SUCCEEDED" in r.stdout and "9/9 tiles (100%)" in r.stdout, r.stdout + r.stderr

    token = (root / "c" / "token").read_text().strip()

    def api(path: str):
        req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    info = api(f"/api/jobs/{job}")
    assert info["status"] == "SUCCEEDED" and info["metadata"]["job_name"] == "readme-scan"
    # The dashboard's actors and tasks pages (Ray's state API) name the scan.
    actors = [a["name"] for a in api("/api/v0/actors?limit=1000")["data"]["result"]["result"]
              if a.get("class_name") == "TileWorker"]
    assert actors and all(a.startswith("readme-scan/actor-") for a in actors), actors
    tasks = {t["name"] for t in api("/api/v0/tasks?limit=1000")["data"]["result"]["result"]}
    assert {f"readme-scan/tile-{i}-{j}" for i in range(3) for j in range(3)} <= tasks, sorted(tasks)

    st = _script("status", env)
    assert st.returncode == 0 and job in st.stdout and "readme-scan" in st.stdout, st.stdout + st.stderr

    fetched = root / "here.zarr"
    r = shell(f"fetch {job} -o {fetched}")
    assert r.returncode == 0, r.stdout + r.stderr
    a, b = zarr.open_group(str(out), mode="r"), zarr.open_group(str(fetched), mode="r")
    assert np.array_equal(a["loss"][...], b["loss"][...]) and np.isfinite(b["loss"][...]).all()

    # `down` ends this cluster's processes, and only them.
    r = _script("down", env, timeout=120)
    assert r.returncode == 0 and "local-cluster: down" in r.stdout, r.stdout + r.stderr
    assert not _session_pids(sid)
    assert _script("status", env).returncode == 3

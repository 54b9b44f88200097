"""A Ray cluster on this machine that pretends to have 2 GPUs (module fixture `fake_gpus`).

One `ray start --head --num-gpus 2 --block` in its own process group (teardown ends
exactly it, never conftest's in-process Ray), on 127.0.0.1 (kept there as tests/test_faults.py keeps its nodes) with ports of its own and
token authentication, as `tests/two_node.py` starts its nodes. Ray hands out the
pretended GPUs (ids, CUDA_VISIBLE_DEVICES) as it would real ones; PyTorch on this
machine still finds no CUDA device. Clients run in subprocesses whose environment
names the cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO
from .two_node import BIN, _end, _start, wait_for

GPUS = 2
ADDRESS_IP = "127.0.0.1"


def distinct_ports(n: int) -> list[int]:
    """n free ports, all different (held open together while they are picked)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ray_command() -> list[str]:
    """The `ray` CLI of this interpreter (a venv sharing another's packages may lack the script)."""
    script = BIN / "ray"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]


@dataclass
class FakeGpuCluster:
    address: str  # host:port of the GCS, for --address
    env: dict
    root: Path

    def run(self, argv: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, cwd=self.root, capture_output=True, text=True, timeout=timeout)

    def cli(self, *argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """`landscape ARGV` against this cluster."""
        return self.run([sys.executable, "-m", "jobs.cli", *argv], timeout)


@pytest.fixture(scope="module")
def fake_gpus():
    root = Path(tempfile.mkdtemp(prefix="lsgpu", dir="/tmp"))  # short: Ray's socket paths live under it
    (root / "token").write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(root / "token"),
               PYTHONPATH=str(REPO))
    # Ray's fixed defaults (52365 for the agent, 10001 for Ray Client, 8265) would clash with other Rays here.
    gcs, client, *ports = distinct_ports(8)
    names = ["dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
             "metrics-export-port", "node-manager-port", "object-manager-port"]
    log = root / "head.log"
    head = _start(
        [*ray_command(), "start", "--head", f"--node-ip-address={ADDRESS_IP}", f"--port={gcs}", "--num-cpus=4",
         f"--num-gpus={GPUS}", "--include-dashboard=false", f"--ray-client-server-port={client}",
         "--object-store-memory=80000000", f"--temp-dir={root / 'ray'}", "--block", "--disable-usage-stats",
         *(f"--{n}={p}" for n, p in zip(names, ports))],
        {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, log,  # else Ray 2.60 moves the node to the outward address
    )
    try:
        wait_for("the head's GCS", lambda: socket.create_connection((ADDRESS_IP, gcs), timeout=1).close() or True,
                 [head], [log])
        yield FakeGpuCluster(f"{ADDRESS_IP}:{gcs}", env, root)
    finally:
        _end(head)
        shutil.rmtree(root, ignore_errors=True)

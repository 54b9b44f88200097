"""A Ray head node on 127.0.0.1 in a process group of its own, for runs that need one cluster for many commands.

`ray start --head --block` with ports of its own (Ray's fixed defaults would clash with
another Ray on the machine) and optionally pretended GPUs; ended by signalling its
group, never by `ray stop`, which would end every Ray on the machine. Used by the GPU
check (benchmarks/gpu_check.py) and by the tests' fake-GPU cluster (tests/fake_gpus.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PORT_FLAGS = ["dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
              "metrics-export-port", "node-manager-port", "object-manager-port", "ray-client-server-port"]


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
    script = Path(sys.executable).parent / "ray"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]


def start_head(root: Path, env: dict, cpus: int, gpus: float | None, log: Path) -> tuple[str, subprocess.Popen]:
    """(address host:port, the process); `gpus` None lets Ray detect them. Returns once the GCS listens."""
    gcs, *ports = distinct_ports(1 + len(PORT_FLAGS))
    argv = [*ray_command(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}", f"--num-cpus={cpus}",
            "--include-dashboard=false", "--object-store-memory=200000000", f"--temp-dir={root / 'ray'}", "--block",
            "--disable-usage-stats", *(f"--{n}={p}" for n, p in zip(PORT_FLAGS, ports))]
    if gpus is not None:
        argv.append(f"--num-gpus={gpus:g}")
    # Without RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, Ray 2.60 moves the node to the machine's outward address.
    node_env = {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, env=node_env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", gcs), timeout=1).close()
            return f"127.0.0.1:{gcs}", proc
        except OSError:
            time.sleep(0.3)
    stop_head(proc)
    raise RuntimeError(f"Ray's GCS did not listen within 90 s:\n{log.read_text()[-3000:]}")


def stop_head(proc: subprocess.Popen) -> None:
    """SIGTERM `ray start --block` (it stops its node), then SIGKILL what is left of its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group is this node's alone (start_new_session)
    except ProcessLookupError:
        pass
    proc.wait()

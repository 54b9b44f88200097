"""A Ray cluster on this machine that pretends to have 2 GPUs (module fixture `fake_gpus`).

One `ray start --head --num-gpus 2 --block` on 127.0.0.1 in its own process group
(benchmarks/ray_head.py; teardown ends exactly it, never conftest's in-process Ray),
with ports of its own and token authentication. Ray hands out the pretended GPUs
(ids, CUDA_VISIBLE_DEVICES) as it would real ones; PyTorch on this machine still
finds no CUDA device. Clients run in subprocesses whose environment names the cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.ray_head import start_head, stop_head

from .conftest import REPO

GPUS = 2


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
    address, head = start_head(root, env, cpus=4, gpus=GPUS, log=root / "head.log")
    try:
        yield FakeGpuCluster(address, env, root)
    finally:
        stop_head(head)
        shutil.rmtree(root, ignore_errors=True)

"""The device check (benchmarks/gpu_check.py) in its CPU dry run, and its offline wheel handling
(benchmarks/gpu_wheels.py), so neither rots between the rare runs on a GPU."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from benchmarks import gpu_wheels

from .conftest import REPO

pytestmark = pytest.mark.ray


def _wheel(folder: Path, name: str, payload: bytes) -> Path:
    """A real (tiny) wheel file: a zip, so a corrupted reassembly would not pass for one."""
    path = folder / name
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("payload.bin", payload)
    return path


def test_split_wheels_are_carried_in_batches_and_reassembled_bit_for_bit(tmp_path, monkeypatch):
    download = tmp_path / "download"
    download.mkdir()
    big = _wheel(download, "ray-9.9.9-cp312-cp312-manylinux2014_x86_64.whl", os.urandom(300_000))
    small = [_wheel(download, f"pkg{i}-1.0-py3-none-any.whl", os.urandom(40_000)) for i in range(3)]
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    manifest = {w.name: {"sha256": hashlib.sha256(w.read_bytes()).hexdigest(), "bytes": w.stat().st_size}
                for w in [big, *small]}
    parts = gpu_wheels.split_file(big, part_bytes=128_000)  # as `split -b`: aa, ab, ac
    assert [p.name.rsplit("-", 1)[1] for p in parts] == ["aa", "ab", "ac"] and not big.exists()
    manifest[big.name]["parts"] = [p.name for p in parts]
    batches = gpu_wheels.pack(sorted(download.iterdir()), limit=200_000)
    assert all(sum(f.stat().st_size for f in b) <= 200_000 for b in batches) and len(batches) >= 2
    carried = []
    for i, files in enumerate(batches):
        folder = tmp_path / f"batch-{i + 1}"
        folder.mkdir()
        for f in files:
            f.rename(folder / f.name)
        (folder / "MANIFEST.json").write_text(json.dumps({"wheels": manifest}))
        carried.append(folder)
    stash = tmp_path / "stash"
    gpu_wheels.gather(carried[:1], stash)  # the first call brings one batch only
    assert gpu_wheels.missing(stash)
    for folder in carried[1:]:  # later calls bring the rest; the stash kept the first
        gpu_wheels.gather([folder], stash)
    assert gpu_wheels.missing(stash) == []
    wheels = gpu_wheels.assemble(stash)
    assert hashlib.sha256((stash / big.name).read_bytes()).hexdigest() == digest
    assert sorted(w.name for w in wheels) == sorted(manifest)
    zipfile.ZipFile(stash / big.name).testzip()


def test_a_corrupted_part_is_refused_by_its_checksum(tmp_path):
    stash = tmp_path / "stash"
    stash.mkdir()
    w = _wheel(tmp_path, "ray-9.9.9-cp312-cp312-manylinux2014_x86_64.whl", os.urandom(50_000))
    entry = {"sha256": hashlib.sha256(w.read_bytes()).hexdigest(), "bytes": w.stat().st_size}
    parts = gpu_wheels.split_file(w, part_bytes=30_000)
    for p in parts:
        p.rename(stash / p.name)
    broken = stash / parts[1].name
    data = broken.read_bytes()
    broken.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one bit pattern changed
    (stash / "MANIFEST.json").write_text(json.dumps({"wheels": {w.name: {**entry, "parts": [p.name for p in parts]}}}))
    with pytest.raises(ValueError, match="SHA-256 differs"):
        gpu_wheels.assemble(stash)


def test_the_requirements_leave_torch_to_the_device_and_pin_what_ran_here():
    reqs = gpu_wheels.requirements()
    names = [gpu_wheels.canonical(r.split("[")[0].split("=")[0].split(">")[0]) for r in reqs]
    assert "torch" not in names and "torchvision" not in names
    assert {"ray", "zarr", "pydantic"} <= set(names)
    import ray

    assert f"ray[default]=={ray.__version__}" in reqs


def test_the_cpu_dry_run_goes_through_every_step(tmp_path):
    """Install (skipped: importable), the GPU tests (skipped on CPU), a Ray head, the evaluator's own rate,
    `landscape run` on one actor and on two sharing a device, the table and the raw rows."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu", "--out", str(out),
         "--only", "digits-mlp-fp32,resnet20-bf16-2-per-gpu"],
        cwd=tmp_path, env={**env, "RAY_USAGE_STATS_ENABLED": "0"}, capture_output=True, text=True, timeout=400,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "nothing to install" in r.stderr
    rows = [json.loads(line) for line in (out / "gpu-check.jsonl").read_text().splitlines()]
    assert rows[0]["mode"] == "cpu" and rows[1]["step"] == "gpu-tests" and rows[1]["exit"] == 0
    scans = {row["scan"]: row for row in rows if "scan" in row}
    assert set(scans) == {"digits-mlp-fp32", "resnet20-bf16-2-per-gpu"}
    for row in scans.values():
        assert row["status"] == "complete" and row["tiles_once"] and row["actor_deaths"] == 0
        assert row["e2e_evals_per_s"] > 0 and row["evaluator_evals_per_s"] > 0 and 0 <= row["outside_evaluator"] < 1
        assert row["max_rel_dev"] < 1e-5  # the stored values are the evaluator's, at the right (x, y)
        assert all(a["device"] == "cpu" and a["plan"] == 0 for a in row["actors"])
        assert row["plans"][0]["precision"] == row["precision"]
    assert scans["resnet20-bf16-2-per-gpu"]["actors_asked"] == 2
    table = (out / "gpu-check.md").read_text()
    assert "| digits-mlp-fp32 | 1 x 1 | 24x24 |" in table and "| resnet20-bf16-2-per-gpu | 2 x 0.5" in table
    assert "gpu-tests:" in table and table.strip() in r.stdout

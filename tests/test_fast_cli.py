"""A fast CLI: `landscape --help`, every `landscape <command> --help` and `landscape validate --spec-only`
load no torch, Ray, Zarr, matplotlib or xarray (they cost seconds to import). Checked on sys.modules
in a fresh interpreter, not timed (benchmarks/cli_startup.py measures the time)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "zarr", "matplotlib", "xarray")
EXAMPLES = sorted(str(p) for p in (REPO / "jobs" / "examples").glob("*.yaml"))

# Runs in a fresh interpreter: the commands through jobs.cli.main, then which heavy packages got loaded.
PROBE = """
import contextlib, io, json, sys
from jobs.cli import MODULES, main, parser
codes = {}
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    for argv in json.loads(sys.argv[1]):
        codes[" ".join(argv)] = main(argv)
print(json.dumps({"codes": codes, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))}))
"""


def _probe(argvs: list[list[str]]) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs), json.dumps(HEAVY)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _commands() -> list[str]:
    from jobs.cli import parser

    sub = next(a for a in parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def test_help_and_spec_only_validation_load_no_torch_or_ray():
    commands = _commands()
    assert {"validate", "run", "submit", "status", "hessian", "sharpness", "export", "view"} <= set(commands)
    argvs = [["--help"]] + [[c, "--help"] for c in commands] + [["validate", "--spec-only", e] for e in EXAMPLES]
    out = _probe(argvs)
    assert out["heavy"] == [], f"loaded by --help or validate --spec-only: {out['heavy']}"
    assert all(code == 0 for code in out["codes"].values()), out["codes"]
    assert len(EXAMPLES) > 20  # every example spec kind: scan, train, curve, animate, hessian, gradients, lr-scan


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check can fail: a command that reads a result (export) loads Zarr, and the probe shows it."""
    out = _probe([["export", str(tmp_path / "missing.zarr"), "--format", "npz"]])
    assert "zarr" in out["heavy"] and list(out["codes"].values()) == [2]

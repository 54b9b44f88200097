"""How long the `landscape` command line takes to start, against the code before lazy imports.

Each row is a fresh interpreter running one command; per row: the median wall time over N runs and
the median import time (the sum of the top-level entries of `python -X importtime`, in separate runs
so that its own overhead stays out of the wall time). Rows of this checkout and of `--old REV` (that
commit's tree, exported to a temporary folder) alternate within each repeat, so a loaded machine
slows both alike; ratios are old / new. Reference rows: a bare interpreter and `import torch, ray`.

    python benchmarks/cli_startup.py --runs 3 --old 635ed31 --out benchmarks/results/cli-startup-cpu-DATE.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "jobs/examples/digits_random_plane.yaml"

# (row name, python arguments, run by the old tree too)
ROWS = [
    ("python -c pass (interpreter only)", ["-c", "pass"], False),
    ("import torch, ray (reference)", ["-c", "import torch, ray"], False),
    ("import jobs.cli", ["-c", "import jobs.cli"], True),
    ("landscape --help", ["-m", "jobs.cli", "--help"], True),
    ("landscape run --help", ["-m", "jobs.cli", "run", "--help"], True),
    ("landscape validate --spec-only EXAMPLE", ["-m", "jobs.cli", "validate", "--spec-only", EXAMPLE], False),
]
# `validate EXAMPLE` without --spec-only builds the model and reads the data (seconds of work, torch): --full adds it.
FULL = ("landscape validate EXAMPLE (full)", ["-m", "jobs.cli", "validate", EXAMPLE], True)


def _env(tree: Path) -> dict:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _wall(args: list[str], tree: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=tree, env=_env(tree), capture_output=True, timeout=300)
    return time.perf_counter() - t


def _import_s(args: list[str], tree: Path) -> float:
    r = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=tree, env=_env(tree), capture_output=True,
                       text=True, timeout=300)
    total = 0
    for line in r.stderr.splitlines():  # "import time: self | cumulative | name", nesting indents the name
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|", 2)
            if cumulative.strip().isdigit() and not name.startswith("  "):
                total += int(cumulative)
    return total / 1e6


def _export(rev: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _cpu() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--old", help="a git revision to compare with (e.g. the commit before lazy imports)")
    ap.add_argument("--out", help="append the raw rows (JSON lines) here")
    ap.add_argument("--full", action="store_true", help="also time the full `validate EXAMPLE` (slow: torch, the data)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"new": REPO}
        if a.old:
            trees["old"] = Path(tmp)
            _export(a.old, trees["old"])
        for tree in trees.values():  # byte-compile once, so that no row pays for it
            subprocess.run([sys.executable, "-m", "compileall", "-q", "jobs", "cluster", "landscape"], cwd=tree,
                           env=_env(tree), capture_output=True)
        measured = ROWS + ([FULL] if a.full else [])
        cases = [(name, args, which) for name, args, both in measured for which in trees if which == "new" or both]
        walls: dict[tuple[str, str], list[float]] = {(n, w): [] for n, _, w in cases}
        imports: dict[tuple[str, str], list[float]] = {(n, w): [] for n, _, w in cases}
        for _ in range(a.runs):
            for name, args, which in cases:  # old and new side by side in every repeat
                walls[name, which].append(_wall(args, trees[which]))
                imports[name, which].append(_import_s(args, trees[which]))
    load = os.getloadavg()
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    print(f"CPU {_cpu()}, {os.cpu_count()} cores, load average {load[0]:.1f}; median of {a.runs} runs; "
          f"python {platform.python_version()}; old = {a.old or '-'}")
    print(f"{'command':58} {'tree':4} {'wall s':>7} {'import s':>8} {'old/new wall':>12} {'old/new import':>14}")
    rows = []
    for name, args, which in cases:
        w, i = statistics.median(walls[name, which]), statistics.median(imports[name, which])
        ratio_w = ratio_i = ""
        if which == "new" and (name, "old") in walls:
            ratio_w = f"{statistics.median(walls[name, 'old']) / w:.1f}x"
            ratio_i = f"{statistics.median(imports[name, 'old']) / max(i, 1e-6):.1f}x"
        print(f"{name:58} {which:4} {w:7.2f} {i:8.2f} {ratio_w:>12} {ratio_i:>14}")
        rows.append({"date": stamp, "cpu": _cpu(), "load1": round(load[0], 1), "command": name, "tree": which,
                     "old_rev": a.old, "runs": a.runs, "wall_s": walls[name, which], "import_s": imports[name, which],
                     "median_wall_s": w, "median_import_s": i})
    if a.out:
        with open(a.out, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parallel efficiency: the same scan end to end (`landscape run`) with 1, 2, ... CPU actors.

Each run is a fresh `landscape run` with its own local Ray; the figures are the
scan's own (the result's wall_seconds and evals_per_second: from the first tile
queued to the last stored, Ray's start excluded). Runs are interleaved over the
actor counts, so drifting load hits every count alike; medians are reported.
Efficiency = rate(A) / (A x rate(1)).

    python benchmarks/scaling.py --actors 1,2 --grid 300 --repeats 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def spec_for(grid: int, checkpoint: str) -> dict:
    """The README's digits MLP 64-64 (fp32) on a grid x grid random plane."""
    return {
        "name": f"scaling-{grid}",
        "model": {"kind": "mlp", "options": {"widths": [64, 64]}},
        "data": {"kind": "digits"},
        "slice": {"kind": "random_plane", "checkpoint": checkpoint, "seed": 0},
        "grid": {"x": {"min": -1, "max": 1, "num": grid}, "y": {"min": -1, "max": 1, "num": grid}},
        "tile": 50,
        "precision": "fp32",
    }


def run(spec_path: Path, out: Path, actors: int) -> dict:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "jobs.cli", "run", str(spec_path), "--out", str(out), "--actors", str(actors),
           "--no-plot", "--overwrite"]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    import zarr

    meta = dict(zarr.open_group(str(out), mode="r").attrs["landscape"])
    return {"actors": actors, "evals_per_s": meta["evals_per_second"], "wall_s": meta["wall_seconds"],
            "evaluator_s": meta["evaluator_seconds"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--actors", default="1,2")
    p.add_argument("--grid", type=int, default=300)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--checkpoint", default="runs/digits-mlp/epoch_020.pt",
                   help="from `landscape train jobs/examples/train_digits_mlp.yaml`")
    p.add_argument("--jsonl", help="append every run here")
    args = p.parse_args(argv)
    counts = [int(a) for a in args.actors.split(",")]
    ckpt = str((REPO / args.checkpoint).resolve())
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec_for(args.grid, ckpt)))
        for r in range(args.repeats):
            for a in counts:
                row = {"round": r, "grid": args.grid, **run(spec_path, Path(tmp) / f"a{a}.zarr", a)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if args.jsonl:
                    with open(args.jsonl, "a") as f:
                        f.write(json.dumps({"date": dt.date.today().isoformat(), **row}) + "\n")
    rate = {a: statistics.median(r["evals_per_s"] for r in rows if r["actors"] == a) for a in counts}
    import platform

    import torch

    print(f"# scaling: {dt.date.today().isoformat()}, {platform.machine()} CPU ({os.cpu_count()} cores, "
          f"{torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, CPU actors x 1 thread, fp32, "
          f"{args.grid}x{args.grid} digits-MLP random plane")
    print(f"| actors | evals/s (median of {args.repeats}) | speed-up | parallel efficiency |")
    print("|---|---|---|---|")
    for a in counts:
        print(f"| {a} | {rate[a]:,.0f} | {rate[a] / rate[counts[0]]:.2f} | {rate[a] / (a * rate[counts[0]]):.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

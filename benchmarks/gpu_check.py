"""The device check: install offline, run the GPU tests, run real scans through Ray on CUDA, one table.

On a bare GPU machine that has PyTorch but not Ray, Zarr or pydantic (run it as
`benchmarks/gpu_check.sh`; BENCHMARKS.md, "GPU check", says how to carry the wheels):

1. installs the project and its wheels from the carried batches (benchmarks/gpu_wheels.py),
   unless they are importable already; exits 3 if a batch is still to come;
2. runs the GPU-marked tests (skipped without CUDA);
3. starts one Ray head on 127.0.0.1 (benchmarks/ray_head.py) and, per scan, measures
   the evaluator's own rate for the same spec (model, data, precision, plan) with
   benchmarks/throughput.py's `rate_once`, sizes the grid to its share of the time
   budget (never above the one asked for), computes 3 grid points in this process,
   then runs `landscape run --address ...` into Zarr and reads the result's own
   record: rate, wall time, time in the evaluator, actor deaths, retries, writes,
   each actor's node, GPUs and plan;
4. prints one table and writes raw rows (JSONL), the table and logs under --out ($OUT).

`--cpu` runs the same steps on CPU at toy sizes (GPU fractions become CPU actors:
--gpus-per-actor F -> --actors 1/F); tests/test_gpu_check.py runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_wheels  # noqa: E402  (standard library only)
from ray_head import start_head, stop_head  # noqa: E402

GPU_TEST_FILES = ["tests/test_gpu.py", "tests/test_curves.py", "tests/test_trajectory.py"]  # those with gpu marks


@dataclass(frozen=True)
class Scan:
    name: str
    model: dict
    data: dict
    grid: int  # side of the square grid asked for
    tile: int
    precision: str
    gpus_per_actor: float = 1.0
    share: float = 0.1  # of the scans' time budget

    def spec(self, side: int, checkpoint: Path) -> dict:
        axis = {"min": -1.0, "max": 1.0, "num": side}
        return {
            "name": self.name, "model": self.model, "data": self.data, "precision": self.precision,
            "slice": {"kind": "random_plane", "checkpoint": str(checkpoint), "seed": 0},
            "grid": {"x": axis, "y": {**axis, "min": -0.8}}, "tile": self.tile,
            # Compiling costs 1-3 minutes per actor (max-autotune): more than this check's budget.
            "evaluator": {"compile": False},
        }


MLP = {"kind": "mlp", "options": {"widths": [64, 64]}, "seed": 0}
DIGITS = {"kind": "digits"}
RESNET = {"kind": "resnet20", "seed": 0}
CIFAR = {"kind": "synthetic", "n": 2500, "shape": [3, 32, 32], "classes": 10, "seed": 0}

GPU_SCANS = [
    Scan("digits-mlp-fp32", MLP, DIGITS, 1000, 100, "fp32", 1.0, 0.08),
    Scan("digits-mlp-fp32-2-per-gpu", MLP, DIGITS, 1000, 100, "fp32", 0.5, 0.08),
    Scan("resnet20-bf16", RESNET, CIFAR, 240, 16, "bf16", 1.0, 0.24),
    Scan("resnet20-fp32", RESNET, CIFAR, 240, 16, "fp32", 1.0, 0.16),
    Scan("resnet20-bf16-2-per-gpu", RESNET, CIFAR, 240, 16, "bf16", 0.5, 0.22),
    Scan("resnet20-bf16-4-per-gpu", RESNET, CIFAR, 240, 16, "bf16", 0.25, 0.22),
]
TOY_RESNET = {"kind": "resnet20", "options": {"width": 4}, "seed": 0}
TOY_CIFAR = {"kind": "synthetic", "n": 48, "shape": [3, 8, 8], "classes": 10, "seed": 0}
CPU_SCANS = [
    replace(GPU_SCANS[0], data={"kind": "digits", "subset": 300, "seed": 0}, grid=24, tile=8),
    replace(GPU_SCANS[1], data={"kind": "digits", "subset": 300, "seed": 0}, grid=24, tile=8),
    *(replace(s, model=TOY_RESNET, data=TOY_CIFAR, grid=8, tile=4) for s in GPU_SCANS[2:]),
]


def deps_importable() -> bool:
    try:
        for mod in ("ray", "zarr", "pydantic", "jobs.cli"):
            importlib.import_module(mod)
        return True
    except ImportError:
        return False


def install_step(sources: list[Path], log) -> None:
    if deps_importable():
        log("install: ray, zarr, pydantic and the project are importable; nothing to install")
        return
    gpu_wheels.gather(sources)
    lost = gpu_wheels.missing()
    if lost:
        log(f"install: the stash {gpu_wheels.STASH} still lacks {', '.join(lost)}: run again carrying the other batch")
        sys.exit(3)
    t0 = time.monotonic()
    gpu_wheels.install()
    importlib.invalidate_caches()
    log(f"install: done in {time.monotonic() - t0:.0f} s")


def model_checkpoint(scan: Scan, work: Path) -> Path:
    """The model's seeded initial weights (the rate does not depend on them; a scan needs a checkpoint)."""
    import torch

    from jobs.common.build import prepare  # the data set's shape and classes, as a scan sizes the model
    from jobs.specs import ScanSpec

    path = work / f"{scan.name}-init.pt"
    spec = ScanSpec.model_validate(scan.spec(2, path))  # validated only: the file is written here
    torch.save(prepare(spec.data, spec.model).factory().state_dict(), path)
    return path


def measure(scan: Scan, spec_dict: dict, device, seconds: float) -> tuple[float, dict, object]:
    """The evaluator's own evaluations/s on this spec's problem (throughput.py's measurement), its plan, the evaluator."""
    import numpy as np

    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec
    from landscape.evaluator import Evaluator
    from throughput import rate_once, sync

    problem = build_problem(ScanSpec.model_validate(spec_dict)).problem
    ev = Evaluator(problem, device=device)
    k = ev.plan.points_per_pass
    coords = np.random.default_rng(0).uniform(-1, 1, (max(k, 64), 2))  # one pass group; fp32 ResNet-20: 2 s a call
    ev.evaluate(coords)  # warm-up: CUDA graph capture
    sync(device)
    return rate_once(ev, coords, seconds, device), ev.describe(), ev


def sized(scan: Scan, rate: float, seconds: float) -> int:
    """The largest grid side (a multiple of the tile, at most the one asked for) done in `seconds` at `rate`."""
    side = int((rate * seconds / 1.2) ** 0.5)  # y spans 0.9 of x: a little fewer points; 1.2: start-up, tails
    return max(scan.tile, min(scan.grid, side // scan.tile * scan.tile))


def check_points(side: int) -> list[tuple[int, int]]:
    return [(0, 0), (side // 2, side // 3), (side - 1, side - 1)]


def plan_text(plan: dict) -> str:
    """One evaluator plan (Evaluator.describe()) in a few words."""
    bits = [plan.get("device"), plan.get("precision"), f"K={plan.get('points_per_pass')}", f"chunk={plan.get('data_chunk')}"]
    bits += [name for name in ("shortcut", "cuda_graphs", "channels_last", "compile", "class_major_head") if plan.get(name)]
    return " ".join(str(b) for b in bits)


def run_scan(scan: Scan, args, address: str, env: dict, work: Path, device, budget_s: float, log) -> dict:
    import numpy as np
    import torch
    import yaml

    row = {"scan": scan.name, "precision": scan.precision, "gpus_per_actor": scan.gpus_per_actor, "grid_asked": scan.grid,
           "actors_asked": round(1 / scan.gpus_per_actor)}
    ckpt = model_checkpoint(scan, work)
    rate, plan, ev = measure(scan, scan.spec(scan.grid, ckpt), device, args.rate_seconds)
    side = sized(scan, rate, budget_s) if not args.cpu else scan.grid
    spec = scan.spec(side, ckpt)
    xs, ys = np.linspace(-1.0, 1.0, side), np.linspace(-0.8, 1.0, side)
    pts = check_points(side)
    expected = ev.evaluate(np.array([[xs[i], ys[j]] for j, i in pts]))["loss"]  # (x, y) at row j, column i
    del ev
    if device.type == "cuda":
        torch.cuda.empty_cache()
    row.update(evaluator_evals_per_s=rate, evaluator_plan=plan, grid=side, points=side * side)
    spec_path = work / f"{scan.name}.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = work / f"{scan.name}.zarr"
    share = ["--gpus-per-actor", f"{scan.gpus_per_actor:g}"] if not args.cpu else ["--actors", str(round(1 / scan.gpus_per_actor))]
    argv = [sys.executable, "-m", "jobs.cli", "run", str(spec_path), "--address", address, "--out", str(out), "--no-plot", *share]
    t0 = time.monotonic()
    r = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=max(60, budget_s * 3))
    row["command_wall_s"] = time.monotonic() - t0
    log(f"$ landscape {' '.join(argv[3:])}\n{r.stdout}{r.stderr}")
    if r.returncode != 0:
        row["error"] = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        return row
    import zarr

    group = zarr.open_group(str(out), mode="r")
    meta = dict(group.attrs["landscape"])
    done = np.asarray(group["tile_done"][...])
    loss = np.asarray(group["loss"][...])
    got = np.array([loss[j, i] for j, i in pts])
    actors = meta.get("actors", [])
    n_actors = max(1, len(actors) - meta.get("actor_deaths", 0))  # started and not dead (a fast scan may end first)
    row.update(
        status=meta.get("status"), e2e_evals_per_s=meta.get("evals_per_second"), scan_wall_s=meta.get("wall_seconds"),
        evaluator_s=meta.get("evaluator_seconds"), actors=actors, actor_deaths=meta.get("actor_deaths"),
        retries=meta.get("retries"), work_items=meta.get("work_items"), writes=meta.get("writes"),
        plans=meta.get("evaluator_plans"), devices=meta.get("devices"),
        all_tiles_done=bool(done.all()),
        max_rel_dev=float(np.max(np.abs(got - expected) / np.abs(expected))),
    )
    row["outside_evaluator"] = 1 - row["evaluator_s"] / (n_actors * row["scan_wall_s"])
    row["e2e_over_evaluator"] = row["e2e_evals_per_s"] / rate
    row["tiles_once"] = row["all_tiles_done"] and row["writes"] == row["work_items"] and row["retries"] == 0
    return row


def table(rows: list[dict]) -> str:
    head = ("| scan | actors x GPU each | grid | e2e evals/s | evaluator evals/s | e2e / evaluator | command s | scan s | "
            "outside evaluator | deaths | tiles written once | max rel. dev. | plans (actors) |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        if "e2e_evals_per_s" not in r:
            lines.append(f"| {r['scan']} | | | | {r.get('evaluator_evals_per_s', float('nan')):,.1f} | | | | | | | | "
                         f"{r.get('error') or r.get('skipped')} |")
            continue
        counts = {}
        for a in r["actors"]:
            counts[a.get("plan")] = counts.get(a.get("plan"), 0) + 1
        plans = "; ".join(f"{plan_text(p)} ({counts.get(i, 0)})" for i, p in enumerate(r["plans"] or []))
        started = len(r["actors"])
        share = f"{r['actors_asked']} x {r['gpus_per_actor']:g}" + (f" ({started} started)" if started != r["actors_asked"] else "")
        lines.append(
            f"| {r['scan']} | {share} | {r['grid']}x{r['grid']} | {r['e2e_evals_per_s']:,.1f} | "
            f"{r['evaluator_evals_per_s']:,.1f} | {r['e2e_over_evaluator']:.2f} | {r['command_wall_s']:.1f} | "
            f"{r['scan_wall_s']:.1f} | {r['outside_evaluator']:.1%} | {r['actor_deaths']} | "
            f"{'yes' if r['tiles_once'] else 'NO'} ({r['writes']}/{r['work_items']}) | {r['max_rel_dev']:.1e} | {plans} |"
        )
    return "\n".join(lines)


def gpu_tests(out: Path, log) -> dict:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", *GPU_TEST_FILES],
                       cwd=REPO, capture_output=True, text=True)
    (out / "gpu-tests.txt").write_text(r.stdout + r.stderr)
    summary = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    log(f"gpu tests: {summary} ({time.monotonic() - t0:.0f} s)")
    return {"step": "gpu-tests", "exit": r.returncode, "summary": summary, "seconds": time.monotonic() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", "--dry-run", dest="cpu", action="store_true", help="the same steps on CPU at toy sizes")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "results/gpu-check"))
    p.add_argument("--wheels", type=Path, action="append", default=[], help="a carried batch folder (repeatable)")
    p.add_argument("--budget-s", type=float, default=540, help="the whole check, install included (default 9 minutes)")
    p.add_argument("--rate-seconds", type=float, default=None, help="per evaluator-rate measurement (default 3 GPU, 0.3 CPU)")
    p.add_argument("--only", default="", help="comma-separated scan names (default: all)")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--keep-work", action="store_true", help="keep the specs, checkpoints and results (in /tmp/lsgc*)")
    args = p.parse_args(argv)
    t_start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    logfile = open(args.out / "gpu-check.log", "a")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
        logfile.write(msg + "\n")
        logfile.flush()

    install_step(args.wheels or sorted((REPO / "benchmarks" / "wheels").glob("batch-*")), log)
    import torch

    device = torch.device("cpu" if args.cpu else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        log("no CUDA device here: run with --cpu for the dry run")
        return 2
    args.rate_seconds = args.rate_seconds or (0.3 if args.cpu else 3.0)
    env_row = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "mode": "cpu" if args.cpu else "cuda",
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__, "python": sys.version.split()[0],
    }
    rows: list[dict] = [env_row]
    if not args.skip_tests:
        rows.append(gpu_tests(args.out, log))
    scans = CPU_SCANS if args.cpu else GPU_SCANS
    if args.only:
        scans = [s for s in scans if s.name in args.only.split(",")]
    import ray

    env_row["ray"] = ray.__version__
    work = Path(tempfile.mkdtemp(prefix="lsgc", dir="/tmp"))  # short: Ray's socket paths live under it
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    cpus = 4 if args.cpu else max(4, os.cpu_count() or 4)
    address, head = start_head(work, env, cpus=cpus, gpus=0 if args.cpu else None, log=work / "head.log")
    log(f"ray head at {address} ({time.monotonic() - t_start:.0f} s so far)")
    try:
        for scan in scans:
            left = args.budget_s - (time.monotonic() - t_start)
            own = left * scan.share / sum(s.share for s in scans[scans.index(scan):])  # its share of what is left
            if left < 30:
                rows.append({"scan": scan.name, "skipped": f"budget: {left:.0f} s left"})
                log(f"{scan.name}: skipped, {left:.0f} s of the budget left")
                continue
            try:
                row = run_scan(scan, args, address, env, work, device, max(own - 15, 5), log)  # 15 s: command start-up
            except Exception as e:  # one scan failing must not lose the others' rows
                row = {"scan": scan.name, "error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"}
            rows.append(row)
            log(json.dumps(row, default=str))
    finally:
        stop_head(head)
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    text = table([r for r in rows if "scan" in r])
    env_row["seconds"] = time.monotonic() - t_start
    header = f"GPU check {json.dumps(env_row)}\n" + "\n".join(f"{r['step']}: {r['summary']}" for r in rows if "step" in r)
    print(header + "\n\n" + text, flush=True)
    (args.out / "gpu-check.md").write_text(header + "\n\n" + text + "\n")
    with open(args.out / "gpu-check.jsonl", "a") as f:
        for r in rows:
            f.write(json.dumps(r, default=str) + "\n")
    failed = [r["scan"] for r in rows if r.get("error")] + [r["step"] for r in rows if r.get("exit")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""`landscape run`: a scan from a spec, through Ray, into a Zarr result and plots."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import torch

from cluster.driver import evaluate_tiles
from cluster.session import plan_actors, ray_session
from cluster.store import ResultStore, check_writable, now
from cluster.tiling import make_tiles
from landscape.errors import ResultError
from landscape.evaluator import Evaluator

from .build import build_problem
from .spec import ScanSpec


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def axis_values(axis) -> np.ndarray:
    return np.linspace(axis.min, axis.max, axis.num, dtype=np.float64)


def default_output(spec: ScanSpec) -> str:
    return spec.output or f"results/{spec.name}.zarr"


def plots_dir_for(url: str, name: str) -> Path:
    """Plots go beside a local result (foo.zarr -> foo-plots/), else under results/."""
    if "://" in url:
        return Path("results") / f"{name}-plots"
    p = Path(url)
    return p.with_name(p.name.removesuffix(".zarr") + "-plots")


def versions() -> dict:
    import pydantic
    import ray
    import zarr

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "zarr": zarr.__version__,
        "numpy": np.__version__,
        "pydantic": pydantic.__version__,
    }


def _meta(spec: ScanSpec, problem, extras: dict) -> dict:
    sl = problem.slice
    return {
        "name": spec.name,
        "identity": spec.identity(),
        "spec": spec.model_dump(mode="json"),
        "dims": spec.dims,
        "grid_shape": list(spec.grid_shape),
        "tile_shape": list(spec.tile_shape),
        "loss_kind": spec.loss,
        "slice_kind": sl.kind,
        "checkpoints": sl.checkpoints,
        "precision": spec.precision,
        "batchnorm": "eval mode: running statistics",
        "layout": sl.layout.to_json(),
        "non_float_state": {k: v.tolist() for k, v in extras.items()},
        "data": {"samples": len(problem.inputs), "input_shape": list(problem.inputs.shape[1:])},
        "versions": versions(),
    }


def existing_result(spec: ScanSpec, url: str, overwrite: bool) -> ResultStore | None:
    """The same scan already at `url` (to resume), None; refuses a different one."""
    existing = None if overwrite else ResultStore.probe(url)
    if existing is not None and existing.meta.get("identity") != spec.identity():
        raise ResultError(
            f"output {url!r} holds a different scan ({existing.meta.get('name')!r}, another spec); "
            "choose another --out or pass --overwrite to replace it"
        )
    return existing


def create_result(spec: ScanSpec, url: str, problem, extras) -> ResultStore:
    return ResultStore.create(
        url,
        grid_shape=spec.grid_shape,
        tile_shape=spec.tile_shape,
        x=axis_values(spec.grid.x),
        y=axis_values(spec.grid.y) if spec.dims == 2 else None,
        origin=problem.slice.origin.numpy(),
        directions=problem.slice.directions.numpy(),
        meta=_meta(spec, problem, extras),
    )


def _distinct(items) -> list:
    """The different values among `items` (dicts included), in first-seen order."""
    out = []
    for item in items:
        if item is not None and item not in out:
            out.append(item)
    return out


def _use_stored_slice(store: ResultStore, problem) -> None:
    """On resume the stored directions are authoritative (same seed, same bits)."""
    problem.slice.origin = torch.from_numpy(store.group["origin"][...])
    problem.slice.directions = torch.from_numpy(store.group["directions"][...])


def run_scan(
    spec: ScanSpec,
    *,
    out: str | None = None,
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    overwrite: bool = False,
    plot: bool = True,
    fmt: str = "png",
) -> str:
    """Run (or resume) the scan; returns the result's path or URL."""
    url = str(out or default_output(spec))
    problem, extras = build_problem(spec)  # every bad input fails here, before anything is written
    store = existing_result(spec, url, overwrite)
    tiles = make_tiles(spec.grid_shape, spec.tile_shape)
    pending = store.pending(tiles) if store is not None else tiles
    if pending:
        check_writable(url)  # a missing bucket or bad credentials fail here, before Ray starts
    if store is not None:
        _use_stored_slice(store, problem)
        say(f"resuming {url}: {len(pending)} of {len(tiles)} tiles left to evaluate")
    else:
        say(f"scan {spec.name!r}: {int(np.prod(spec.grid_shape)):,} points in {len(tiles)} tiles -> {url}")
    if pending:
        c = spec.cluster
        gpus = gpus_per_actor if gpus_per_actor is not None else c.gpus_per_actor
        with ray_session(address):
            request = plan_actors(actors or c.actors, gpus, c.cpus_per_actor)  # fails before writing anything
            say(f"{request.actors} actor(s), each CPU {request.cpus:g} GPU {request.gpus:g}")
            if request.gpus == 0 and spec.precision != "fp32":
                # CPUs without bf16 matrix units emulate it (BENCHMARKS.md: ~10x slower than fp32).
                say(f"note: precision {spec.precision} on CPU actors; fp32 is usually faster on CPUs")
            store = store or create_result(spec, url, problem, extras)
            x = np.asarray(store.group["x"][...])
            y = np.asarray(store.group["y"][...]) if spec.dims == 2 else None
            report = evaluate_tiles(
                problem,
                Evaluator,
                store,
                pending,
                x,
                y,
                request,
                max_attempts=c.max_attempts,
                placement_timeout_s=c.placement_timeout_s,
                label=spec.name,
            )
        store.update_meta(
            status="complete",
            finished_at=now(),
            evals_per_second=report.evals_per_second,
            wall_seconds=report.wall_seconds,
            evaluator_seconds=report.evaluator_seconds,
            actor_deaths=report.actor_deaths,
            retries=report.retries,
            devices=sorted({a["device"] for a in report.actors}),
            evaluator_plans=_distinct(a.get("evaluator") for a in report.actors),
        )
        say(f"done: {report.points:,} points in {report.wall_seconds:.1f} s ({report.evals_per_second:,.0f} evals/s)")
    elif store.meta.get("status") != "complete":
        store.update_meta(status="complete", finished_at=now())
    else:
        say(f"{url} is already complete; nothing to evaluate")
    print(f"result: {url}")
    if plot:
        from .plot import plot_result

        for path in plot_result(url, plots_dir_for(url, spec.name), fmt):
            print(f"plot: {path}")
    return url

"""`landscape run`: a scan from a spec, through Ray, into a Zarr result and plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from cluster.driver import evaluate_tiles, store_tiles
from cluster.preview import empty_pairs, evaluated_points, item_coords, preview_items, strides_of
from cluster.session import plan_actors, ray_session
from cluster.store import ArrayDef, ResultStore, ResultWriter
from cluster.refine import RefinedItems
from cluster.progress import every_nth
from cluster.tiling import iter_tiles, tile_coords, tile_grid_shape
from landscape.errors import ResultError
from landscape.splits import evaluator_for, split_prefix
from landscape.metrics import ARRAYS, array_names
from landscape.sequential import SAMPLES

from ..common.provenance import actor_device, provenance, scan_data, spec_inputs
from ..common.report import plot_and_say, say, versions
from ..specs import ScanSpec
from ..specs.subset_rule import former_identities
from .problem import Built, build_problem


def axis_values(axis) -> np.ndarray:
    return np.linspace(axis.min, axis.max, axis.num, dtype=np.float64)


def default_output(spec: ScanSpec) -> str:
    return spec.output or f"results/{spec.name}.zarr"


def _batchnorm_note(spec: ScanSpec, problem) -> str:
    if spec.batchnorm_mode == "recompute" and not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in problem.model_factory().modules()
    ):
        return "recompute: the model has no BatchNorm layer, so there was nothing to re-estimate"
    if spec.batchnorm_mode == "recompute":
        n = len(problem.bn_inputs) if problem.bn_inputs is not None else len(problem.inputs)
        source = f" of the {spec.batchnorm_data} split (for every split scanned)" if spec.batchnorm_data else ""
        return (f"recompute: statistics re-estimated at every grid point from {n} samples{source} in batches of "
                f"{spec.batchnorm_batch}, then eval mode")
    return "eval: eval mode with the running statistics the slice carries"


def result_metrics(spec: ScanSpec, sl) -> dict[str, str]:
    """name -> description of every per-point array: the spec's metrics, then each companion path's copy of them."""
    base = array_names(spec.metrics) + ([SAMPLES] if spec.data.tolerance is not None else [])
    out = {n: ARRAYS[n].description for n in base}
    for c in sl.companions:
        what = sl.info.get("companions", {}).get(c, f"the companion path {c!r}")
        out.update({f"{c}_{n}": f"{ARRAYS[n].description}; on {what}, at the same coordinates" for n in base})
    main = dict(out)
    for split in (spec.eval or [])[1:]:  # landscape/splits.py: the same arrays on each other split
        out.update({split_prefix(split) + n: f"{d}; on the {split} split" for n, d in main.items()})
    return out


def _meta(spec: ScanSpec, built: Built) -> dict:
    problem = built.problem
    sl = problem.slice
    info = result_metrics(spec, sl)
    names = list(info)
    return {
        "name": spec.name,
        "spec": spec.model_dump(mode="json"),
        "dims": spec.dims,
        "grid_shape": list(spec.grid_shape),
        "tile_shape": list(spec.tile_shape),
        "loss_kind": spec.loss,
        "slice_kind": sl.kind,
        "coef_map": sl.coef_map.to_json(),
        "slice_info": sl.info,
        **{k: sl.info[k] for k in ("x_label", "y_label") if k in sl.info},  # axis labels the plots read
        **built.meta,
        "checkpoints": sl.checkpoints,
        "metrics": names,
        "metric_info": info,
        "metric_options": problem.metric_options,
        "companions": {c: m.to_json() for c, m in sl.companions.items()},
        "precision": spec.precision,
        "preview": strides_of(spec.preview) if spec.preview else None,
        "batchnorm": _batchnorm_note(spec, problem),
        "notes": built.notes,
        "layout": sl.layout.to_json(),
        "non_float_state": {k: v.tolist() for k, v in built.extras.items()},
        "data": {"samples": len(problem.inputs), "input_shape": list(problem.inputs.shape[1:]),
                 **({"splits": {spec.eval[0]: len(problem.inputs), **{k: len(x) for k, (x, _) in problem.splits.items()}}}
                    if spec.eval else {})},
        "versions": versions(),
    }


def scan_arrays(spec: ScanSpec, problem, grid=None) -> list[ArrayDef]:
    """A scan's arrays: one per metric, the axes, tile_done, and the slice (origin, directions).

    `grid`: the spec's grid with a fitted range resolved (default: spec.grid)."""
    grid = grid or spec.grid
    dims = ("y", "x") if spec.dims == 2 else ("x",)
    arrays = [
        ArrayDef(n, dims, spec.grid_shape, "float32", spec.tile_shape, np.nan, attrs={"description": text})
        for n, text in result_metrics(spec, problem.slice).items()
    ]
    arrays.append(ArrayDef("x", ("x",), data=axis_values(grid.x), dtype="float64"))
    if spec.dims == 2:
        arrays.append(ArrayDef("y", ("y",), data=axis_values(grid.y), dtype="float64"))
    tdims = ("tile_y", "tile_x") if spec.dims == 2 else ("tile_x",)
    arrays.append(ArrayDef("tile_done", tdims, tile_grid_shape(spec.grid_shape, spec.tile_shape), "uint8", fill=0))
    if spec.preview:
        strides = strides_of(spec.preview)
        arrays.append(ArrayDef("preview_stride", ("preview_stride",), data=np.array(strides), dtype="int32"))
        empty = empty_pairs(spec.grid_shape, spec.tile_shape, strides)  # pairs without points: done from the start
        arrays.append(ArrayDef("preview_done", ("preview_stride", *tdims), data=empty.astype("uint8"), dtype="uint8"))
    origin, directions = problem.slice.origin.numpy(), problem.slice.directions.numpy()
    chunk = min(len(origin), 1 << 20)
    arrays.append(ArrayDef("origin", ("param",), data=origin, chunks=(chunk,)))
    arrays.append(ArrayDef("directions", ("direction", "param"), data=directions, chunks=(1, chunk)))
    return arrays


def points_left(spec: ScanSpec, done: np.ndarray | None) -> tuple[int, int]:
    """(tiles, grid points) not yet marked done, counted without listing tiles."""
    sizes = [np.diff(np.minimum(np.arange(0, n + t, t), n))[: -(-n // t)] for n, t in zip(spec.grid_shape, spec.tile_shape)]
    per_tile = np.multiply.outer(*sizes) if len(sizes) == 2 else sizes[0]
    todo = np.ones(per_tile.shape, bool) if done is None else ~done
    return int(todo.sum()), int(per_tile[todo].sum())


@dataclass
class Work:
    """What is left of a scan: the queue's items and how to evaluate and store each."""

    items: Iterator
    count: int
    points: int
    total: int  # items of the whole scan
    args_of: Callable
    write: Callable
    unit: str


def pending_work(spec: ScanSpec, store: ResultStore | None, x: np.ndarray, y: np.ndarray | None) -> Work:
    """Whole tiles in order, or with `preview`, (level, tile) pairs level by level (cluster/preview.py)."""
    if not spec.preview:
        done = store.done_mask() if store is not None else None
        count, points = points_left(spec, done)
        total = int(np.prod(tile_grid_shape(spec.grid_shape, spec.tile_shape)))
        return Work(iter_tiles(spec.grid_shape, spec.tile_shape, done), count, points, total,
                    lambda t: (tile_coords(t, x, y),), store_tiles(store), "tiles")
    strides = strides_of(spec.preview)
    empty = empty_pairs(spec.grid_shape, spec.tile_shape, strides)
    done = np.asarray(store.group["preview_done"][...], bool) if store is not None else empty
    points = int((~evaluated_points(done, spec.grid_shape, spec.tile_shape, strides)).sum())
    items = preview_items(spec.grid_shape, spec.tile_shape, strides, done)
    if spec.refine is not None and store is not None:
        r = spec.refine
        items = RefinedItems(spec.grid_shape, spec.tile_shape, strides, done, lambda: np.asarray(store.group[r.metric][...]),
                             r.fraction, ARRAYS[r.metric].log_scale if r.metric in ARRAYS else False)

    def write(it, result) -> int:
        complete = int(store.write_points(it.tile, it.mask(strides), result, it.index))
        if isinstance(items, RefinedItems):
            items.stored(it)
        return complete

    return Work(items, int((~done).sum()), points, int((~empty).sum()), lambda it: (item_coords(it, strides, x, y),), write,
                "tile passes")


def _cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic natively (AVX-512 BF16 or AMX), as oneDNN sees it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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


def actor_placements(actors: list[dict], plans: list) -> list[dict]:
    """Where each actor that started ran (node, GPUs Ray gave it, device) and which of `plans` it chose.

    Replacements of dead actors are listed too, so there can be more entries than actors."""
    keys = ("host", "node_ip", "pid", "gpu_ids", "device")
    return [{**{k: a.get(k) for k in keys}, "plan": plans.index(a["evaluator"]) if a.get("evaluator") in plans else None}
            for a in actors]


def finish_run(w: ResultWriter, url: str, report) -> None:
    """Mark the result complete with the run's figures, after checking that every tile is stored;
    report None: nothing was left to evaluate."""
    if report is None:
        if w.store.meta.get("status") == "complete":
            say(f"{url} is already complete; nothing to evaluate")
        w.finish()
        return
    missing = int((~w.store.done_mask()).sum())
    if missing:  # never call a result complete that is not
        raise ResultError(f"{url}: {missing} tile(s) are not stored after the run; run the same command again")
    w.finish(
        evals_per_second=report.evals_per_second,
        wall_seconds=report.wall_seconds,
        evaluator_seconds=report.evaluator_seconds,
        actor_deaths=report.actor_deaths,
        retries=report.retries,
        devices=sorted({a["device"] for a in report.actors}),
        evaluator_plans=(plans := _distinct(a.get("evaluator") for a in report.actors)),
        actors=actor_placements(report.actors, plans),
        work_items=report.tiles,
        writes=report.writes,
    )
    say(f"done: {report.points:,} points in {report.wall_seconds:.1f} s ({report.evals_per_second:,.0f} evals/s)")
    line = hessian_line(w.store)
    if line:
        say(line)


def record_curve_summary(store, problem) -> None:
    """A `curve` scan's eval_curve summary (landscape/curve_stats.py) into the result's attributes, and said."""
    if problem.slice.kind != "curve":
        return
    from landscape.curve_stats import curve_summary, segment_lengths

    sl = problem.slice
    t = np.asarray(store.group["x"][...], dtype=np.float64)
    dl = segment_lengths(t, sl.coef_map, sl.directions, sl.layout.param_mask())
    names = [n for n in store.meta["metrics"] if n.endswith(("loss", "accuracy", "nll")) and "line_" not in n]
    summary = curve_summary(t, {n: np.asarray(store.group[n][...]) for n in names}, dl)
    store.update_meta(curve_summary=summary)
    for line in curve_summary_lines(summary):
        say(line)


def curve_summary_lines(summary: dict) -> list[str]:
    out = [f"curve summary (Garipov et al.'s eval_curve): length {summary['length']:.4g} over {summary['points']} points"]
    for name, q in summary["quantities"].items():
        out.append(f"  {name:>14}: min {q['min']:.4g}  max {q['max']:.4g}  mean {q['mean']:.4g}  integral {q['integral']:.4g}")
    return out


def hessian_line(store) -> str | None:
    """The count of unconverged curvature points of a result with the hessian metric (None: no such metric)."""
    from landscape.hessian import unconverged_summary

    tol = store.meta.get("metric_options", {}).get("hessian", {}).get("tol")
    if tol is None or "hessian_residual" not in store.group:
        return None
    return unconverged_summary(store.group["hessian_residual"][...], tol)


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
    built = build_problem(spec, url)  # every bad input fails here, before anything is written
    problem = built.problem
    for note in built.notes:
        say(f"note: {note}")
    gpus = gpus_per_actor if gpus_per_actor is not None else spec.cluster.gpus_per_actor
    prov = provenance(checkpoints=spec_inputs(spec), data=scan_data(spec), device=actor_device(gpus),
                      precision=spec.precision, spec=spec)
    with ResultWriter(url, identity=spec.identity(), overwrite=overwrite, command=f"landscape run {spec.name}",
                      provenance=prov, former=former_identities(spec.identity)) as w:
        if w.store is not None:
            _use_stored_slice(w.store, problem)
        left = pending_work(spec, w.store, None, None)  # counts only; the items are made below
        if w.store is not None and left.count:
            say(f"resuming {url}: {left.count} of {left.total} {left.unit} left to evaluate")
        elif w.store is None:
            passes = f", {every_nth(spec.preview)} point first" if spec.preview else ""
            say(f"scan {spec.name!r}: {int(np.prod(spec.grid_shape)):,} points in {left.total} {left.unit}{passes} -> {url}")
        if left.count:
            c = spec.cluster
            with ray_session(address):
                request = plan_actors(actors or c.actors, gpus, c.cpus_per_actor)  # fails before writing anything
                say(f"{request.actors} actor(s), each CPU {request.cpus:g} GPU {request.gpus:g}")
                if request.gpus == 0 and spec.precision == "bf16" and not _cpu_has_bf16():
                    # CPUs without bf16 units (AVX2 only) emulate it: ~10x slower than fp32 (BENCHMARKS.md).
                    say("note: precision bf16 on CPU actors, and this CPU has no bf16 units: fp32 will be faster")
                elif request.gpus == 0 and spec.precision == "tf32":
                    say("note: tf32 is a GPU format; on CPU actors it computes in fp32")
                if w.store is None:
                    w.create(scan_arrays(spec, problem, built.grid), _meta(spec, built))
                else:
                    w.resume()
                store = w.store
                for step in built.before_tiles:
                    step(store, request, c)
                x = np.asarray(store.group["x"][...])
                y = np.asarray(store.group["y"][...]) if spec.dims == 2 else None
                work = pending_work(spec, store, x, y)
                report = evaluate_tiles(
                    problem,
                    evaluator_for,
                    store,
                    work.items,
                    work.count,
                    work.points,
                    work.args_of,
                    work.write,
                    request,
                    max_attempts=c.max_attempts,
                    placement_timeout_s=c.placement_timeout_s,
                    label=spec.name,
                )
            record_curve_summary(w.store, problem)
            finish_run(w, url, report)
        else:
            finish_run(w, url, None)
    print(f"result: {url}")
    if plot:
        plot_and_say(url, spec.name, fmt)
    return url

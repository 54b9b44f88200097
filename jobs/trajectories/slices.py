"""A trajectory scan's driver side: read the checkpoints into the slice, fit the grid to the path,
and evaluate the checkpoints themselves beside their projections (how much the plane lies)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from landscape.checkpoints import load_state, nonfinite_entries
from landscape.errors import CheckpointError, SpecError
from landscape.param_select import entry_mask, moved, select
from landscape.params import StateLayout, non_float_state
from landscape.slices import Slice, combine
from landscape.state_eval import StateEvaluator
from landscape.trajectory import path_slice, pca_slice, trajectory_plane

from ..specs import Axis, ScanSpec
from ..specs.base import format_validation_error


def _labels(paths: list[Path]) -> list[str]:
    """File stems; whole paths where stems repeat (a glob over several runs)."""
    stems = [p.stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [str(p) for p in paths]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def build_trajectory_slice(spec: ScanSpec, model, layout: StateLayout, notes: list[str]) -> tuple[Slice, dict]:
    """The slice of a trajectory spec (checkpoints read one at a time) and its origin's non-float state."""
    s = spec.slice
    paths = s.paths()
    labels = _labels(paths)

    def load(path: Path, field: str) -> dict:
        try:
            state = load_state(path, model)
        except CheckpointError as e:
            raise CheckpointError(f"{field}: {e}") from None
        bad = nonfinite_entries(state)
        if bad:  # allow_nonfinite cannot help: 0 * NaN is NaN, so every point of the slice would be NaN
            raise CheckpointError(
                f"{field}: checkpoint {str(path)!r} holds NaN or inf in {', '.join(bad[:3])}; a trajectory through it "
                "has no plane and no finite point: leave it out"
            )
        return state

    clock = {"last": time.monotonic()}

    def read(i: int, out):
        layout.flatten(load(paths[i], "slice.checkpoints"), out=out)  # (P,) float32, into its row
        if time.monotonic() - clock["last"] > 5 or (i + 1 == len(paths) and len(paths) >= 50):  # long runs: progress
            clock["last"] = time.monotonic()
            print(f"[{spec.name}] read {i + 1}/{len(paths)} checkpoints", file=sys.stderr, flush=True)

    if s.kind == "trajectory":
        sl = path_slice(layout, read, len(paths), labels)
        extras = non_float_state(load(paths[-1], "slice.checkpoints"))
    else:
        given = s.origin_path()
        index = len(paths) - 1 if given is None else next((i for i, p in enumerate(paths) if _same_file(p, given)), None)
        origin_file = paths[index] if index is not None else given
        origin_state = load(origin_file, "slice.origin")
        origin = layout.flatten(origin_state)  # (P,)
        chosen = select(layout, s.params, "slice.params") if s.params else None
        restrict = entry_mask(layout, chosen) if chosen else None
        plane = trajectory_plane(read, len(paths), origin, layout, s.ignore, labels, restrict)
        origin_label = labels[index] if index in (0, len(paths) - 1) else f"origin: {origin_file.stem}"
        sl = pca_slice(layout, origin, plane, labels, origin_label, index, s.ignore)
        sl.info["origin"]["path"] = str(origin_file)
        sl.info["params"], sl.info["moved"] = s.params, moved(layout, sl.directions)
        extras = non_float_state(origin_state)
    for entry, p in zip(sl.info["trajectory"], paths):
        entry["path"] = str(p)
    return sl, extras


def build_slice(spec: ScanSpec, factory, notes: list[str], data=None) -> tuple[Slice, dict]:
    """The slice-kind builder (jobs/scan/problem.py) of `trajectory` and `trajectory_pca`."""
    model = factory()
    return build_trajectory_slice(spec, model, StateLayout.of(model), notes)


def after_build(spec: ScanSpec, built) -> None:
    """The grid fitted to the path (grid.fit: path), and a PCA plane's checkpoints evaluated before the tiles."""
    if spec.grid.fit:
        built.grid, built.meta["grid_fit"] = fit_grid(spec, built.problem.slice)
    if spec.slice.kind == "trajectory_pca":
        built.before_tiles.append(checkpoint_values(spec, built))


def fit_grid(spec: ScanSpec, sl: Slice):
    """spec.grid with the range of each axis covering the projected path (and the origin) plus the margin."""
    g = spec.grid
    path = sl.info["trajectory"]
    if spec.dims == 2:
        spans = {"x": [p["x"] for p in path] + [0.0], "y": [p["y"] for p in path] + [0.0]}
    else:
        spans = {"x": [p["t"] for p in path]}
    axes, ranges = {}, {}
    for name, values in spans.items():
        lo, hi = min(values), max(values)
        pad = g.fit_margin * (hi - lo)
        try:
            axes[name] = Axis(min=lo - pad, max=hi + pad, num=getattr(g, name).num)
        except ValidationError as e:
            raise SpecError(format_validation_error(e, f"grid.{name} fitted to the path")) from None
        ranges[name] = [axes[name].min, axes[name].max]
    return g.model_copy(update=axes), {"fit": g.fit, "margin": g.fit_margin, **ranges}


@dataclass(frozen=True)
class StateItem:
    """One whole state to evaluate: checkpoint i itself, or its projection on the plane."""

    index: tuple[str, int]  # ("checkpoint" | "projection", i)
    name: str  # the Ray task's name
    extent: str  # what error messages say it is


def checkpoint_values(spec: ScanSpec, built):
    """The work a trajectory_pca scan does before its tiles: each checkpoint's loss and accuracy, and the
    landscape's at its projection (the same weights the map has there), recorded as meta trajectory_values."""

    def run(store, request, cluster) -> None:
        if "trajectory_values" in store.meta:  # a resumed scan did this already
            return
        from cluster.driver import run_work  # imports ray: only when the scan runs, not for validate

        sl = built.problem.slice
        path = sl.info["trajectory"]
        paths = [Path(p["path"]) for p in path]
        model = built.problem.model_factory()
        items = [StateItem((kind, i), f"{kind}-{i}", f"{kind} of {p['label']}" if kind == "projection" else p["label"])
                 for i, p in enumerate(path) for kind in ("checkpoint", "projection")]

        def args_of(item: StateItem) -> tuple:
            kind, i = item.index
            if kind == "checkpoint":
                return (sl.layout.flatten(load_state(paths[i], model)).numpy(),)  # (P,) the checkpoint itself
            return (combine(sl.origin, sl.directions, (path[i]["x"], path[i]["y"])).numpy(),)  # (P,) as the map forms it

        values = [{"label": p["label"]} for p in path]

        def on_result(item: StateItem, result: dict, stats) -> None:
            kind, i = item.index
            values[i][kind] = {k: (float(v) if np.isfinite(v) else None) for k, v in result.items()}  # JSON: no NaN

        t0 = time.monotonic()
        print(f"[{spec.name}] evaluating the {len(path)} checkpoints themselves and their projections "
              f"({len(items)} passes over the data)", file=sys.stderr, flush=True)
        run_work(built.problem, StateEvaluator, items, len(items), args_of, on_result, request,
                 max_attempts=cluster.max_attempts, placement_timeout_s=cluster.placement_timeout_s)
        gap = [abs(v["projection"]["loss"] - v["checkpoint"]["loss"]) for v in values
               if v["projection"]["loss"] is not None and v["checkpoint"]["loss"] is not None]
        worst = f"; largest |loss(checkpoint) - loss(projection)| = {max(gap):.4g}" if gap else ""
        print(f"[{spec.name}] checkpoints done in {time.monotonic() - t0:.1f} s{worst}", file=sys.stderr, flush=True)
        store.update_meta(trajectory_values=values)

    return run

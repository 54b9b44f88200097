"""`landscape animate`: a curve_plane scan per epoch of a curve run, as ONE job, then a video.

All frames' tiles go into one queue (`evaluate_tiles` -> `run_work`) on the same
actors; each actor keeps one frame's evaluator and switches when a tile of
another frame comes (landscape/frames.py). The result is one Zarr group: every
metric with dims (frame, y, x), `tile_done` per (frame, tile), `origin` (w1),
`directions` per frame (frame, direction, param), the curve's plane coordinates
per frame (`curve_points`: w1, theta, w2) and the epochs (`frame`). It resumes
per tile like any scan. Then a video (jobs/plot/video.py) with one colour scale
and one set of log contour levels across all frames.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cluster.driver import evaluate_tiles, store_tiles
from cluster.session import plan_actors, ray_session
from cluster.storage import check_parent_folders
from cluster.store import ArrayDef, ResultWriter
from cluster.tiling import Tile, iter_tiles, tile_coords, tile_grid_shape
from landscape.checkpoints import is_curve_checkpoint, read_checkpoint
from landscape.errors import CheckpointError, SpecError
from landscape.frames import FrameEvaluator, FrameSeries

from ..common.report import plots_dir_for, say
from ..scan.problem import build_problem
from ..scan.run import _meta, finish_run, points_left, scan_arrays
from ..specs.animate import AnimateSpec
from ..common.provenance import actor_device, provenance, scan_data
from ..specs.base import identity_of
from ..specs.subset_rule import former_identities
from .slices import build_curve_slice

_EPOCH = re.compile(r"^epoch_(\d+)\.pt$")


class FrameTile(Tile):
    """A tile of one frame: index (frame, row, col), bounds over (frame, y, x)."""

    @property
    def name(self) -> str:
        return "frame-{}-tile-{}-{}".format(*self.index)

    @property
    def extent(self) -> str:
        (f, _), (y0, y1), (x0, x1) = self.bounds
        return f"frame {f}, y {y0}:{y1}, x {x0}:{x1}"

    @property
    def plane(self) -> Tile:
        return Tile(self.index[1:], self.bounds[1:])


def list_frames(spec: AnimateSpec) -> list[tuple[int, Path]]:
    """(epoch, curve checkpoint) per frame, in epoch order; SpecError when there are none."""
    src = Path(spec.slice.curve)
    if src.is_dir():
        found = sorted((int(m[1]), p) for p in src.iterdir() if (m := _EPOCH.match(p.name)))
        curves = [(e, p) for e, p in found if is_curve_checkpoint(_peek(p))]
        if not curves:
            what = (f"its {len(found)} epoch_NNN.pt files are model checkpoints (a `landscape train` run?)" if found
                    else "it has no epoch_NNN.pt files")
            raise SpecError(f"slice.curve {str(src)!r} holds no curve checkpoints ({what}); give the folder of a "
                            "`landscape train-curve` run")
    elif src.is_file():
        record = _peek(src)
        if not is_curve_checkpoint(record):
            raise SpecError(f"slice.curve {str(src)!r} is not a curve checkpoint; give the folder of a `landscape train-curve` run")
        curves = [(int(record.get("epoch") or 0), src)]
    else:
        raise SpecError(f"slice.curve {str(src)!r} does not exist; give the folder of a `landscape train-curve` run")
    if spec.frames == "all":
        return curves
    by_epoch = dict(curves)
    missing = [e for e in spec.frames if e not in by_epoch]
    if missing:
        raise SpecError(f"frames: no curve checkpoint for epoch(s) {missing} in {str(src)!r}; it has epochs "
                        f"{sorted(by_epoch)[:10]}{' ...' if len(by_epoch) > 10 else ''}")
    return [(e, by_epoch[e]) for e in spec.frames]


def _peek(path: Path):
    try:
        return read_checkpoint(path, "slice.curve")
    except CheckpointError as e:
        raise SpecError(str(e)) from None


def build_frames(spec: AnimateSpec) -> tuple[FrameSeries, dict, list[dict]]:
    """The frames' series, the meta of the result (frame 0's scan meta), and per frame what the result records."""
    frames = list_frames(spec)
    first = spec.model_copy(update={"slice": spec.slice.model_copy(update={"curve": frames[0][1]})})
    built = build_problem(first)  # data, model, options, checks: once
    factory, notes = built.problem.model_factory, built.notes
    slices = [built.problem.slice]
    known: dict = {}  # the endpoints, read and hashed once for all the other frames
    for _, path in frames[1:]:
        s = spec.model_copy(update={"slice": spec.slice.model_copy(update={"curve": path})})
        sl, _ = build_curve_slice(s, factory, notes, known=known)
        if [e["sha256"] for e in sl.info["endpoints"]] != [e["sha256"] for e in slices[0].info["endpoints"]]:
            raise CheckpointError(f"curve checkpoint {str(path)!r} joins other endpoints than {str(frames[0][1])!r}; "
                                  "every frame of an animation must be a checkpoint of the same curve run")
        if not torch.equal(sl.origin, slices[0].origin):  # one origin per animation (FrameSeries)
            raise SpecError(f"curve checkpoint {str(path)!r} has another w1 than {str(frames[0][1])!r}: the curve run "
                            "trained its start (fix_start: false), so each epoch's plane has its own origin; animate "
                            "keeps one: scan single epochs with slice kind curve_plane, or train with fix_start: true")
        slices.append(sl)
    records = [
        {"epoch": e, "curve": str(p), "sha256": sl.info["curve_checkpoint"]["sha256"], "checkpoints": sl.checkpoints,
         "curve_info": sl.info["curve"]}
        for (e, p), sl in zip(frames, slices)
    ]
    series = FrameSeries(built.problem, torch.stack([sl.directions for sl in slices]))
    meta = _meta(first, built)
    meta.update(job="animation", frames=records, frame_count=len(frames), spec=spec.model_dump(mode="json"), name=spec.name)
    return series, meta, records


def identity(spec: AnimateSpec, records: list[dict]) -> str:
    """The spec's identity and the content of every frame: a curve run trained on must not resume into it."""
    return identity_of(spec.identity() + "".join(r["sha256"] for r in records))


def frame_arrays(spec: AnimateSpec, series: FrameSeries, records: list[dict]) -> list[ArrayDef]:
    """A scan's arrays with a leading frame axis, every frame's basis, the curve per frame and the epochs."""
    f = series.frames
    out = []
    for a in scan_arrays(spec, series.problem):
        if a.name == "directions":
            p = a.data.shape[-1]
            a = replace(a, dims=("frame", "direction", "param"), data=series.directions.numpy(), chunks=(1, 1, min(p, 1 << 20)))
        elif a.name == "tile_done":
            a = replace(a, dims=("frame", *a.dims), shape=(f, *a.shape))
        elif a.data is None:  # a metric
            a = replace(a, dims=("frame", *a.dims), shape=(f, *a.shape), chunks=(1, *a.chunks))
        out.append(a)
    out.append(ArrayDef("frame", ("frame",), data=np.array([r["epoch"] for r in records]), dtype="int64",
                        attrs={"description": "the epoch of each frame's curve checkpoint"}))
    points = np.array([r["curve_info"]["points"] for r in records], dtype=np.float64)  # (F, 3, 2)
    out.append(ArrayDef("curve_points", ("frame", "point", "coord"), data=points, dtype="float64",
                        attrs={"description": "plane coordinates (x, y) of w1, theta, w2 in each frame"}))
    return out


def run_animate(spec: AnimateSpec, *, out: str | None = None, address: str | None = None, actors: int | None = None,
                gpus_per_actor: float | None = None, overwrite: bool = False, video: bool = True,
                video_path: str | None = None) -> str:
    """Evaluate (or resume) every frame, then write the video; returns the result's path."""
    url = str(out or spec.output or f"results/{spec.name}.zarr")
    series, meta, records = build_frames(spec)  # every bad input fails here, before anything is written
    if video and video_path:  # a video under a file is refused now, not after the whole evaluation
        check_parent_folders(video_path, "--video")
    for note in meta["notes"]:
        say(f"note: {note}")
    f, grid, tile = series.frames, spec.grid_shape, spec.tile_shape
    shape, tshape = (f, *grid), (1, *tile)
    total_tiles = f * int(np.prod(tile_grid_shape(grid, tile)))
    ends = [("endpoint", e["path"]) for e in meta["slice_info"].get("endpoints", [])]
    prov = provenance(checkpoints=[("frame", r["curve"]) for r in records] + ends, data=scan_data(spec),
                      device=actor_device(gpus_per_actor if gpus_per_actor is not None else spec.cluster.gpus_per_actor),
                      precision=spec.precision, spec=spec)
    with ResultWriter(url, identity=identity(spec, records), overwrite=overwrite, command=f"landscape animate {spec.name}",
                      what="animation", provenance=prov, former=former_identities(lambda: identity(spec, records))) as w:
        done = w.store.done_mask() if w.store is not None else None
        left = [points_left(spec, None if done is None else done[i]) for i in range(f)]
        tiles_left, todo_points = sum(t for t, _ in left), sum(p for _, p in left)
        if w.store is not None and tiles_left:
            say(f"resuming {url}: {tiles_left} of {total_tiles} tiles left to evaluate")
        elif w.store is None:
            say(f"animation {spec.name!r}: {f} frames x {int(np.prod(grid)):,} points in {total_tiles} tiles -> {url}")
        if tiles_left:
            c = spec.cluster
            with ray_session(address):
                request = plan_actors(actors or c.actors, gpus_per_actor if gpus_per_actor is not None else c.gpus_per_actor,
                                      c.cpus_per_actor)
                say(f"{request.actors} actor(s), each CPU {request.cpus:g} GPU {request.gpus:g}")
                if w.store is None:
                    w.create(frame_arrays(spec, series, records), meta)
                else:
                    w.resume()
                store = w.store
                x, y = np.asarray(store.group["x"][...]), np.asarray(store.group["y"][...])
                tiles = (FrameTile(t.index, t.bounds) for t in iter_tiles(shape, tshape, done))
                report = evaluate_tiles(
                    series, FrameEvaluator, store, tiles, tiles_left, todo_points,
                    lambda t: (t.index[0], tile_coords(t.plane, x, y)), store_tiles(store), request,
                    max_attempts=c.max_attempts, placement_timeout_s=c.placement_timeout_s, label=spec.name,
                )
            finish_run(w, url, report)
        else:
            finish_run(w, url, None)
    print(f"result: {url}")
    if video:
        from ..plot.video import write_video

        target = Path(video_path) if video_path else plots_dir_for(url, spec.name) / spec.name
        path, note = write_video(url, target, spec.video.format, spec.video.fps, spec.video.dpi, spec.video.plane)
        if note:
            say(f"note: {note}")
        print(f"video: {path}")
    return url


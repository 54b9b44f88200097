"""The Zarr v3 result store: one group per job, written by one process at a time.

Layout of a scan: one array per metric (`loss`, `accuracy`, ...; dims ("y", "x")
or ("x",), one chunk per tile, NaN = not evaluated), coordinate arrays `x`/`y`,
`tile_done` (1 once a tile's data is stored; never inferred from chunk
existence), `origin` and `directions` (so any grid point's weights can be
rebuilt), and the attribute `landscape` with the spec, checkpoint positions,
versions, timings and `status`:
  creating -> running -> complete | interrupted | stopped | failed (-> running on resume).
Other jobs (gradients, learning-rate scans, Hessians) declare their own arrays.

Writing goes through `ResultWriter`: it refuses an output that is not a landscape
result (whatever --overwrite says), takes the result's lease (cluster/lease.py)
before writing anything, creates the group with status "creating" and its
arrays, and only then marks it "running": a driver killed half-way leaves a
group recognisably unfinished, which the next run replaces. On exit it records
how the run ended and releases the lease.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from landscape.errors import ResultError, Terminated

from .lease import LEASE_NAME, Lease
from .leasing import take_lease
from .provenance import resumed_provenance
from .storage import entries, exists, filesystem, io_errors, is_dir, is_remote, remove, storage_error, storage_errors
from .tiling import Tile

ATTR = "landscape"
FORMAT = "landscape-result/1"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ArrayDef:
    """One array of a result: shape and chunks, or the data itself."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...] | None = None
    dtype: str = "float32"
    chunks: tuple[int, ...] | None = None
    fill: Any = None
    data: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)


# CF-style names: xarray, Panoply and CF tools label axes with `long_name` and `units`.
# What this tool stores is dimensionless (losses, accuracies, eigenvalues, multiples of a
# direction, counts, flags) unless an ArrayDef says otherwise with attrs={"units": ...}.
LONG_NAMES = {
    "x": "coordinate along the slice's first direction (multiples of it)",
    "y": "coordinate along the slice's second direction (multiples of it)",
    "tile_done": "1 where the tile's values are stored",
    "preview_stride": "stride of a preview pass (every n-th row and column)",
    "preview_done": "1 where the tile's preview pass is stored",
    "origin": "parameters at the slice's origin (flattened)",
    "directions": "the slice's directions in parameter space (flattened)",
}


def cf_attrs(a: ArrayDef) -> dict:
    """`a.attrs` with `long_name` (from its description, else a known name) and, for numbers, `units`."""
    attrs = dict(a.attrs)
    attrs.setdefault("long_name", attrs.get("description") or LONG_NAMES.get(a.name) or a.name.replace("_", " "))
    if np.dtype(a.dtype).kind in "biuf":  # numbers; strings have no units
        attrs.setdefault("units", "1")
    return attrs


class ResultStore:
    def __init__(self, group: zarr.Group, url: str | None = None, lease: Lease | None = None):
        self.group = group
        self.url = str(url) if url is not None else str(group.store_path)  # for messages
        self.lease = lease

    # -- opening (read) --------------------------------------------------------
    @classmethod
    def open(cls, url: str, mode: str = "r", storage_options: dict | None = None) -> "ResultStore":
        """An existing result; ResultError if there is none or it is not ours."""
        url = str(url)
        if not exists(url, storage_options):
            raise ResultError(f"no result at {url!r}; run `landscape run SPEC --out {url}` first")
        if not is_dir(url, storage_options):
            raise ResultError(f"{url!r} is a file, not a result (a result is a Zarr folder)")
        try:
            group = zarr.open_group(url, mode=mode, storage_options=storage_options)
        except FileNotFoundError as e:  # it exists (checked above) but has no zarr.json
            raise ResultError(f"{url!r} is not a landscape result (no Zarr group there)") from e
        except io_errors() as e:
            raise storage_error(url, "read", e) from None
        except Exception as e:  # metadata zarr does not understand
            raise ResultError(f"{url!r} is not a landscape result: {(str(e).splitlines() or [type(e).__name__])[0]}") from e
        meta = group.attrs.get(ATTR, {})
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ResultError(f"{url!r} is not a landscape result (a Zarr group without '{ATTR}' attributes)")
        if meta.get("status") == "creating":
            raise ResultError(f"{url!r} is an unfinished result: its creation was interrupted; run its job again")
        return cls(group, url)

    # -- reading ---------------------------------------------------------------
    @property
    def meta(self) -> dict:
        return dict(self.group.attrs[ATTR])

    @property
    def metric_names(self) -> list[str]:
        """The per-point metric arrays (results written before metrics were named hold loss and accuracy)."""
        return list(self.meta.get("metrics", ["loss", "accuracy"]))

    def done_mask(self) -> np.ndarray:
        return self.group["tile_done"][...].astype(bool)

    # -- writing (the lease holder only) ---------------------------------------------
    def _consolidate(self) -> None:
        # xarray.open_zarr reads consolidated metadata first: keep it current.
        with warnings.catch_warnings():  # "not yet part of the v3 spec": known, wanted here
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(self.group.store, path=self.group.path or None)

    def update_meta(self, **changes) -> None:
        with storage_errors(self.url, "update"):
            self.group.attrs[ATTR] = {**self.meta, **changes}
            self._consolidate()

    def write_tile(self, tile: Tile, results: dict[str, np.ndarray]) -> None:
        """Store a tile's values, then mark it done; repeating it is harmless."""
        if self.lease is not None:
            self.lease.check()
        with storage_errors(self.url, f"write tile {tile.index} to"):  # tiles already done stay done: resumable
            for name in self.metric_names:
                self.group[name][tile.slices] = np.asarray(results[name], dtype="float32").reshape(tile.shape)
            self.group["tile_done"][tile.index] = 1

    def write_points(self, tile: Tile, mask: np.ndarray, results: dict[str, np.ndarray], pair: tuple[int, ...]) -> bool:
        """Store values at `mask` (tile shape) of a tile, mark the (level, tile) `pair` in `preview_done`;
        once all its levels are stored, mark the tile done. True if the tile is now complete."""
        if self.lease is not None:
            self.lease.check()
        with storage_errors(self.url, f"write tile {tile.index} to"):
            for name in self.metric_names:
                block = np.asarray(self.group[name][tile.slices])  # read-modify-write: we are the only writer
                block[mask] = np.asarray(results[name], dtype="float32")
                self.group[name][tile.slices] = block
            levels = self.group["preview_done"]
            levels[pair] = 1
            if np.asarray(levels[(slice(None), *tile.index)]).all():
                self.group["tile_done"][tile.index] = 1
                return True
        return False


# -- what is at an output ------------------------------------------------------------


def _root_meta(url: str, storage_options: dict | None) -> dict | None:
    """The `landscape` attributes of the group at `url`; {} if it is another Zarr group; None if unreadable."""
    try:
        if is_remote(url):
            fs, path = filesystem(url, storage_options)
            raw = fs.cat_file(f"{path.rstrip('/')}/zarr.json")
        else:
            raw = (Path(url) / "zarr.json").read_bytes()
        doc = json.loads(raw)
    except (OSError, ValueError):
        return None
    meta = (doc.get("attributes") or {}).get(ATTR) if isinstance(doc, dict) else None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else {}


def _scratch(name: str) -> bool:
    """Files a killed writer may leave: its lease files, zarr's half-written temporaries."""
    return _lease_file(name) or name.endswith(".partial")


def _lease_file(name: str) -> bool:
    return name.startswith(LEASE_NAME)


@dataclass
class Output:
    """What an output location holds: nothing, an unfinished creation, a result, or something else."""

    state: str  # "absent" | "unfinished" | "result" | "foreign"
    meta: dict = field(default_factory=dict)
    detail: str = ""


def inspect_output(url: str, storage_options: dict | None = None) -> Output:
    url = str(url)
    if not exists(url, storage_options):
        return Output("absent")
    if not is_dir(url, storage_options):
        return Output("foreign", detail="it is a file")
    names = entries(url, storage_options)
    if "zarr.json" not in names:
        if all(_scratch(n) for n in names):
            return Output("absent")  # empty, or only a killed writer's lease
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return Output("foreign", detail=f"it holds {shown}")
    meta = _root_meta(url, storage_options)
    if meta is None:  # the root metadata is unreadable: ours only if nothing else was written yet
        if all(n == "zarr.json" or _scratch(n) for n in names):
            return Output("unfinished")
        return Output("foreign", detail="its zarr.json is unreadable")
    if not meta:
        return Output("foreign", detail="it is a Zarr group that is not a landscape result")
    if meta.get("status") == "creating":
        return Output("unfinished", meta)
    return Output("result", meta)


def zarr_members(url: str, storage_options: dict | None = None) -> list[str]:
    """Entries that belong to the Zarr group (its metadata, its arrays) and scratch files; never a user's file."""
    out = []
    for name in entries(url, storage_options):
        if name == "zarr.json" or (_scratch(name) and not _lease_file(name)):
            out.append(name)
        elif "zarr.json" in entries(_join(url, name), storage_options):
            out.append(name)
    return out


def _join(url: str, name: str) -> str:
    return f"{url.rstrip('/')}/{name}" if is_remote(url) else str(Path(url) / name)


# -- one run's hold on a result ---------------------------------------------------------


def _ended_as(exc: BaseException | None) -> tuple[str, str | None]:
    if exc is None:
        return "complete", None
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted (Ctrl-C); run the same command again to resume"
    if isinstance(exc, Terminated):
        return "stopped", "stopped (SIGTERM); run the same command again to resume"
    return "failed", (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ResultWriter:
    """`with ResultWriter(url, identity=..., overwrite=...) as w:` one run's exclusive hold on a result.

    `w.store` is the existing result of the same identity (to resume) or None
    (call `w.create(arrays, meta)`). Whatever ends the block is recorded in the
    result's status: complete only via `w.finish()`, else interrupted (Ctrl-C),
    stopped (SIGTERM) or failed (with the error's first line). `resumable=False`: a job
    that cannot continue part-way (gradients, hessian) gets an unfinished result of its
    identity replaced (said in a note), a complete one as `w.store` to report.
    `provenance` (jobs/common/provenance.py): recorded by `create`; an existing result's is
    checked against it on entering (cluster/provenance.py: a changed input file is refused).
    """

    def __init__(self, url: str, *, identity: str, overwrite: bool = False, command: str = "landscape run",
                 what: str = "scan", storage_options: dict | None = None, resumable: bool = True,
                 provenance: dict | None = None, former: dict[str, str] | None = None):
        self.url = str(url)
        self.identity = identity
        self.former = former or {}  # identities this spec had before a change of its numbers -> why it changed
        self.overwrite = overwrite
        self.command = command
        self.what = what
        self.storage_options = storage_options
        self.resumable = resumable
        self.provenance = provenance
        self.store: ResultStore | None = None
        self.lease: Lease | None = None
        self._made_dir = False
        self._finished = False

    def _check(self, out: Output) -> None:
        if out.state == "foreign":
            raise ResultError(
                f"output {self.url!r} exists and is not a landscape result ({out.detail}); it is left alone: choose another --out"
            )
        if out.state == "result" and out.meta.get("identity") != self.identity and not self.overwrite:
            if why := self.former.get(out.meta.get("identity")):
                raise ResultError(
                    f"output {self.url!r} holds a {out.meta.get('job', 'scan')} ({out.meta.get('name')!r}) of this spec, but {why}; "
                    "choose another --out or pass --overwrite to replace it"
                )
            raise ResultError(
                f"output {self.url!r} holds a different {out.meta.get('job', 'scan')} ({out.meta.get('name')!r}, another spec); "
                "choose another --out or pass --overwrite to replace it"
            )

    def __enter__(self) -> "ResultWriter":
        self._check(inspect_output(self.url, self.storage_options))  # refuse before creating anything
        self._made_dir = not exists(self.url, self.storage_options)
        self.lease = take_lease(self.url, self.command, self.storage_options)
        try:
            out = inspect_output(self.url, self.storage_options)  # again: it may have changed while we waited
            self._check(out)
            same = out.state == "result" and out.meta.get("identity") == self.identity and not self.overwrite
            if same and not self.resumable and out.meta.get("status") != "complete":
                print(f"note: {self.url} holds an unfinished run of this spec; a {self.what} run does not resume part-way: "
                      "starting again", file=sys.stderr, flush=True)
                same = False
            if same:
                self.provenance = resumed_provenance(out.meta.get("provenance"), self.provenance, self.url,
                                                     computing=out.meta.get("status") != "complete")
                with storage_errors(self.url, "open"):
                    group = zarr.open_group(self.url, mode="r+", storage_options=self.storage_options)
                self.store = ResultStore(group, self.url, self.lease)
            elif out.state in ("result", "unfinished"):
                if out.state == "unfinished":
                    print(f"note: {self.url} holds an unfinished creation (a killed run); it is replaced", file=sys.stderr)
                with storage_errors(self.url, "replace"):
                    for name in zarr_members(self.url, self.storage_options):
                        remove(self.url, name, self.storage_options)
        except BaseException:
            self._release(created=False)
            raise
        return self

    def create(self, arrays: list[ArrayDef], meta: dict) -> ResultStore:
        """A new result: the group (status "creating"), its arrays, then status "running"."""
        if self.store is not None:
            raise RuntimeError("this result exists already")
        self.lease.check()
        prov = {"provenance": self.provenance} if self.provenance is not None else {}
        attrs = {ATTR: {**meta, **prov, "format": FORMAT, "job": self.what, "identity": self.identity, "status": "creating",
                        "started_at": now()}}
        with storage_errors(self.url, "write"):
            g = zarr.create_group(store=self.url, attributes=attrs, overwrite=False, storage_options=self.storage_options)
            for a in arrays:
                kw = dict(dimension_names=a.dims, attributes=cf_attrs(a))
                if a.data is not None:
                    g.create_array(a.name, data=np.asarray(a.data, dtype=a.dtype), chunks=a.chunks or "auto", **kw)
                else:
                    g.create_array(a.name, shape=a.shape, chunks=a.chunks or a.shape, dtype=a.dtype, fill_value=a.fill, **kw)
            store = ResultStore(g, self.url, self.lease)
            store.update_meta(status="running")
        self.store = store
        return store

    def resume(self, **changes) -> None:
        """Mark an existing result as running again (a resumed run)."""
        prov = {"provenance": self.provenance} if self.provenance is not None else {}
        self.store.update_meta(**{"status": "running", "resumed_at": now(), "error": None, **prov, **changes})

    def finish(self, **changes) -> None:
        """Record success (and anything else about the run) in the result."""
        self.store.update_meta(status="complete", finished_at=now(), error=None, **changes)
        self._finished = True

    def __exit__(self, exc_type, exc, tb) -> None:
        self._release(created=self.store is not None, exc=exc)

    def _release(self, created: bool, exc: BaseException | None = None) -> None:
        try:
            if created and not self._finished and self.lease is not None and not self.lease.lost:
                status, why = _ended_as(exc)
                if status == "complete":  # left the block without finish(): say so rather than claim success
                    status, why = "interrupted", "the run ended before it finished"
                try:
                    self.store.update_meta(status=status, error=why, ended_at=now())
                except Exception as e:  # storage gone: the lease and the error still matter more
                    print(f"note: could not record status {status!r} in {self.url}: {e}", file=sys.stderr)
        finally:
            if self.lease is not None:
                self.lease.release()
            if not created and self._made_dir and not is_remote(self.url):
                try:
                    Path(self.url).rmdir()  # nothing was written: leave nothing behind
                except OSError:
                    pass

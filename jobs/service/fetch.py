"""`landscape fetch`: copy a result (local path, s3:// URL or Ray job id) into a local Zarr folder."""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from cluster.lease import LEASE_NAME
from cluster.storage import filesystem, storage_errors
from cluster.store import ResultStore, inspect_output
from landscape.errors import ResultError

BATCH = 64  # files per fs.get call: async filesystems (s3fs) fetch a batch concurrently


def is_location(src: str) -> bool:
    """A path or URL, as opposed to a Ray job id (ids have no '/' and no '.zarr')."""
    return "://" in src or "/" in src or os.sep in src or src.endswith(".zarr") or Path(src).exists()


def resolve_source(src: str, address: str | None = None) -> str:
    """The result's path or URL; a Ray job id is asked for the output its `landscape run` recorded."""
    if is_location(src):
        return src
    from .remote import job_output

    return job_output(src, address)


def _first(rel: str) -> int:
    # Copy order for a result that may still be running: the group's zarr.json
    # (status) first, then tile_done, then the data. A tile marked done was
    # fully written before its mark, hence before the copy of its data starts.
    if rel == "zarr.json":
        return 0
    return 1 if rel.startswith("tile_done/") else 2


class _Counter:
    """files/bytes copied, on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, files: int, nbytes: int, stream=None):
        self.files, self.nbytes = files, nbytes
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = 0.2 if self.tty else 5.0
        self.done_files = self.done_bytes = 0
        self.last = time.monotonic()

    def update(self, files: int, nbytes: int) -> None:
        self.done_files += files
        self.done_bytes += nbytes
        now = time.monotonic()
        end = self.done_files == self.files
        if end or now - self.last >= self.every:
            self.last = now
            line = f"fetch: {self.done_files}/{self.files} files, {_mb(self.done_bytes)}/{_mb(self.nbytes)}"
            self.stream.write(("\r" if self.tty else "") + line + ("\n" if end or not self.tty else ""))
            self.stream.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _copy_tree(src: str, dest: Path) -> int:
    """Copy every file under `src` into the (new) folder `dest`; returns the number of files."""
    fs, root = filesystem(src)
    root = root.rstrip("/")
    with storage_errors(src, "list"):
        listing = fs.find(root, detail=True)  # files only
    files = sorted(
        (
            (p[len(root) + 1 :], int(info.get("size") or 0))
            for p, info in listing.items()
            if p.startswith(root + "/") and not p[len(root) + 1 :].startswith(LEASE_NAME)  # the writer's lease is not data
        ),
        key=lambda f: (_first(f[0]), f[0]),
    )
    counter = _Counter(len(files), sum(size for _, size in files))
    dest.mkdir(parents=True)
    for rel in {os.path.dirname(rel) for rel, _ in files} - {""}:
        (dest / rel).mkdir(parents=True, exist_ok=True)
    with storage_errors(src, "copy"):
        for i in range(0, len(files), BATCH):
            batch = files[i : i + BATCH]
            fs.get([f"{root}/{rel}" for rel, _ in batch], [str(dest / rel) for rel, _ in batch])
            counter.update(len(batch), sum(size for _, size in batch))
    return len(files)


def fetch_result(src: str, dest: str | os.PathLike, *, overwrite: bool = False, address: str | None = None) -> Path:
    """Copy the result at `src` (path, URL or Ray job id) to the local folder `dest`; returns `dest`.

    The copy is made in `DEST.partial-*` and renamed into place only once it
    opens as a landscape result, so an interrupted fetch never leaves a DEST
    that looks complete."""
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        there = inspect_output(str(dest))
        if there.state == "foreign":  # a user's folder or file: never replaced, whatever --overwrite says
            raise ResultError(f"{dest} exists and is not a landscape result ({there.detail}); it is left alone: choose another -o")
        if there.state == "result" and not overwrite:
            raise ResultError(f"{dest} already holds a result; pass --overwrite to replace it, or choose another -o")
    url = resolve_source(str(src), address)
    source = ResultStore.open(url)  # fails clearly if it is not a result, before anything is copied
    if "://" not in url and Path(url).resolve() == dest.resolve():
        raise ResultError(f"{url} is already at {dest}; choose another -o")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    staging = dest.with_name(f"{dest.name}.partial-{tag}")
    try:
        n = _copy_tree(url, staging)
        copy = ResultStore.open(str(staging))
        if copy.meta.get("identity") != source.meta.get("identity"):
            raise ResultError(f"the copy of {url} in {staging} does not match its source; fetch again")
        if dest.exists() or dest.is_symlink():  # --overwrite: move the old one aside, so DEST is never half there
            old = dest.with_name(f"{dest.name}.old-{tag}")
            dest.rename(old)
            try:
                staging.rename(dest)
            except BaseException:
                old.rename(dest)
                raise
            _remove(old)
        else:
            staging.rename(dest)
    except BaseException:
        _remove(staging)
        raise
    status = copy.meta.get("status")
    if status != "complete":
        done = copy.done_mask()
        print(f"note: {url} is {status}: {int(done.sum())} of {done.size} tiles were done", file=sys.stderr)
    print(f"fetched {n} files from {url}", file=sys.stderr)
    return dest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()

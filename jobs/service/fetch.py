"""`landscape fetch`: copy a result (local path, s3:// URL or Ray job id) into a local Zarr folder."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

from cluster.lease import LEASE_NAME, LeaseHeld, LocalLease
from cluster.leasing import take_lease
from cluster.storage import (check_parent_folders, entries, filesystem, io_errors, is_remote, remove, storage_error,
                             storage_errors)
from cluster.store import ResultStore, inspect_output, zarr_members
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


def _listing(src: str) -> tuple[object, str, list[tuple[str, int]]]:
    """(filesystem, root, [(relative path, size)]) of the files under `src`, in copy order."""
    fs, root = filesystem(src)
    root = root.rstrip("/")
    with storage_errors(src, "list"):
        listing = fs.find(root, detail=True)  # files only
    files = sorted(
        (
            (p[len(root) + 1 :], int(info.get("size") or 0))
            for p, info in listing.items()
            # the writer's lease is not data; nor is a folder marker (an empty object 'name/') some S3 tools make
            if p.startswith(root + "/") and not p[len(root) + 1 :].startswith(LEASE_NAME)
            and not (p.endswith("/") and not info.get("size"))
        ),
        key=lambda f: (_first(f[0]), f[0]),
    )
    return fs, root, files


def check_contained(src: str, root: str, rels: list[str], dest: Path) -> None:
    """ResultError unless every path lands inside `dest`: no '..', '.', empty ('//') or absolute part,
    and, for a local source, no symlink leading out of it (its target would be copied in)."""
    real_root = os.path.realpath(root) if not is_remote(src) else None
    for rel in rels:
        parts = rel.split("/")
        bad = not rel or rel.startswith("/") or "\0" in rel or any(p in ("", ".", "..") for p in parts)
        if not bad:
            bad = os.path.commonpath([dest.absolute(), (dest / rel).absolute()]) != str(dest.absolute())
        if not bad and real_root is not None:
            bad = os.path.commonpath([real_root, os.path.realpath(os.path.join(root, rel))]) != real_root
        if bad:
            raise ResultError(
                f"{src} holds {rel!r}, which would be copied from or written outside {dest} ('..', an absolute "
                "path or a symlink leading out); nothing was fetched: a landscape result never holds such names"
            )


def _copy_tree(src: str, fs, root: str, files: list[tuple[str, int]], dest: Path) -> int:
    """Copy the listed files under `src` into the (new, empty) folder `dest`; returns the number of files."""
    counter = _Counter(len(files), sum(size for _, size in files))
    for rel in {os.path.dirname(rel) for rel, _ in files} - {""}:
        (dest / rel).mkdir(parents=True, exist_ok=True)
    try:
        for i in range(0, len(files), BATCH):
            batch = files[i : i + BATCH]
            fs.get([f"{root}/{rel}" for rel, _ in batch], [str(dest / rel) for rel, _ in batch])
            counter.update(len(batch), sum(size for _, size in batch))
    except io_errors() as e:
        if isinstance(e, OSError) and str(getattr(e, "filename", "") or "").startswith(str(dest)):
            raise ResultError(f"cannot write {e.filename}: {e.strerror or e}; free space or choose another -o") from None
        raise storage_error(src, f"copy to {dest} from", e) from None
    return len(files)


PARTIAL = re.compile(r"\.partial-[0-9a-f]{8}")  # DEST.partial-TAG: a copy under way, renamed to DEST when complete


def clean_partials(dest: Path) -> list[Path]:
    """Remove the DEST.partial-* copies that killed fetches left: only folders holding the lease of a
    fetch (so made by one) whose holder is gone; a running fetch's copy and anything else stay."""
    removed = []
    if not dest.parent.is_dir():
        return removed
    for p in sorted(dest.parent.iterdir()):
        if not (p.name.startswith(dest.name) and PARTIAL.fullmatch(p.name[len(dest.name):])):
            continue
        if p.is_symlink() or not p.is_dir() or not (p / LEASE_NAME).is_file():
            continue
        lease = LocalLease(str(p), "landscape fetch")
        try:
            lease.acquire()  # free: its fetch died; held: a fetch is copying into it now
        except LeaseHeld:
            continue
        try:
            shutil.rmtree(p)
            removed.append(p)
        finally:
            lease.release()
    return removed


def _user_entries(dest: Path) -> list[str]:
    """What in a result at `dest` is not the result's (a user's notes, folders): kept by --overwrite."""
    ours = set(zarr_members(str(dest)))
    return [n for n in entries(str(dest)) if n not in ours and not n.startswith(LEASE_NAME)]


def fetch_result(src: str, dest: str | os.PathLike, *, overwrite: bool = False, address: str | None = None) -> Path:
    """Copy the result at `src` (path, URL or Ray job id) to the local folder `dest`; returns `dest`.

    The copy is made in `DEST.partial-*` (holding a fetch's lease while it copies) and renamed into place
    only once it opens as a landscape result, so an interrupted fetch never leaves a DEST that looks
    complete; the next fetch to DEST removes such leftovers. Every path copied must land inside DEST.
    --overwrite replaces a result's Zarr group only: a file or folder of yours inside it stays."""
    dest = Path(dest)
    check_parent_folders(dest, "-o")
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
    fs, root, files = _listing(url)
    tag = uuid.uuid4().hex[:8]
    staging = dest.with_name(f"{dest.name}.partial-{tag}")
    check_contained(url, root, [rel for rel, _ in files], staging)  # before anything is written
    for old in clean_partials(dest):
        print(f"note: removed {old.name}, the copy of a fetch that was killed", file=sys.stderr)
    with contextlib.ExitStack() as held:
        keep: list[str] = []
        if dest.exists():  # a result (or an unfinished creation): one writer, and the user's entries stay
            held.callback(take_lease(str(dest), "landscape fetch").release)
            keep = _user_entries(dest)
            clash = sorted(set(keep) & {rel.split("/")[0] for rel, _ in files})
            if clash:
                raise ResultError(f"{dest} holds {', '.join(clash)} of yours, and the fetched result has entries of that name; "
                                  "move them, or choose another -o")
        lease = take_lease(str(staging), "landscape fetch")  # creates the folder; marks it as a fetch's copy
        held.callback(lease.release)
        try:
            n = _copy_tree(url, fs, root, files, staging)
            copy = ResultStore.open(str(staging))
            if copy.meta.get("identity") != source.meta.get("identity"):
                raise ResultError(f"the copy of {url} in {staging} does not match its source; fetch again")
            _put_in_place(staging, dest, keep, tag)
        except BaseException:
            if staging.exists():
                _remove(staging)
            raise
        (dest / LEASE_NAME).unlink(missing_ok=True)  # the copy's lease came along; its lock is released on exit
    status = copy.meta.get("status")
    if status != "complete":
        done = copy.done_mask()
        print(f"note: {url} is {status}: {int(done.sum())} of {done.size} tiles were done", file=sys.stderr)
    print(f"fetched {n} files from {url}", file=sys.stderr)
    return dest


def _put_in_place(staging: Path, dest: Path, keep: list[str], tag: str) -> None:
    """Rename the finished copy to `dest`. A result already there is moved aside first (so DEST is never
    half there), the user's entries `keep` are moved from it into the new one, then only its Zarr group
    and lease are deleted."""
    if not (dest.exists() or dest.is_symlink()):
        staging.rename(dest)
        return
    old = dest.with_name(f"{dest.name}.old-{tag}")
    dest.rename(old)
    try:
        staging.rename(dest)
    except BaseException:
        old.rename(dest)
        raise
    for name in keep:
        (old / name).rename(dest / name)
    for name in zarr_members(str(old)) + [n for n in entries(str(old)) if n.startswith(LEASE_NAME)]:
        remove(str(old), name)
    old.rmdir()  # empty now: anything else would have been moved, never deleted


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()

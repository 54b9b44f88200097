"""Which lease a result's URL takes (a local file under flock, or an object on S3 or another remote
store), and who holds it. Above lease.py (the lease record, the base class, the local lease) and
remote_lease.py, which both stay free of each other's imports."""

from __future__ import annotations

import sys
from pathlib import Path

from .lease import LEASE_NAME, Lease, LocalLease, _parse, _read_json, describe_holder
from .remote_lease import AdvisoryLease, S3Lease
from .storage import filesystem, is_remote, is_s3, storage_errors


def take_lease(url: str, command: str, storage_options: dict | None = None) -> Lease:
    """The lease on the result at `url` (its folder is created); LeaseHeld naming the holder if taken."""
    url = str(url)
    if not is_remote(url):
        with storage_errors(url, "create"):
            Path(url).mkdir(parents=True, exist_ok=True)
        lease: Lease = LocalLease(url, command)
    else:
        lease = (S3Lease if is_s3(url) else AdvisoryLease)(url, command, storage_options)
    lease.acquire()
    if lease.taken_over:
        print(
            f"note: took over the stale lease of {describe_holder(lease.taken_over)} on {url} (its holder is gone)",
            file=sys.stderr,
            flush=True,
        )
    return lease


def read_lease(url: str, storage_options: dict | None = None) -> dict | None:
    """Who holds (or last held) the result's lease, for status displays; None if nobody."""
    try:
        if not is_remote(url):
            p = Path(url) / LEASE_NAME
            return _read_json(p) if p.exists() else None
        fs, path = filesystem(url, storage_options)
        target = f"{path.rstrip('/')}/{LEASE_NAME}"
        return _parse(fs.cat_file(target)) if fs.exists(target) else None
    except OSError:
        return None

"""The lease on remote storage (cluster/lease.py says what a lease is).

- S3: an object created with a conditional write (If-None-Match: *), renewed and
  released only while its ETag is still ours (If-Match); a stale one is taken
  over by If-Match, so of two takers exactly one wins.
- Other fsspec file systems: a lease file written without an atomic create (best
  effort; said when taken).
"""

from __future__ import annotations

import datetime as dt
import socket
import sys
import time

from .lease import (
    LEASE_NAME,
    Lease,
    LeaseHeld,
    _parse,
    _pid_alive,
    describe_holder,
    ttl_seconds,
)
from .storage import filesystem, storage_errors


class S3Lease(Lease):
    def __init__(self, url: str, command: str, storage_options: dict | None = None):
        super().__init__(url, command)
        self.fs, path = filesystem(url, storage_options)
        self.bucket, _, prefix = path.rstrip("/").partition("/")
        self.key = f"{prefix}/{LEASE_NAME}" if prefix else LEASE_NAME
        self.etag: str | None = None

    def _put(self, **condition) -> str:
        resp = self.fs.call_s3("put_object", Bucket=self.bucket, Key=self.key, Body=self._body(), **condition)
        return resp["ETag"]

    def _get(self) -> tuple[dict, str, float]:
        """(holder's info, ETag, seconds since its last write by the server's clock), from one GET."""
        from fsspec.asyn import sync

        async def fetch():
            resp = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.key)
            async with resp["Body"] as stream:
                return resp, await stream.read()

        resp, body = sync(self.fs.loop, fetch)
        headers = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        server_now = _http_date(headers.get("date")) or time.time()
        modified = resp.get("LastModified")
        age = server_now - modified.timestamp() if modified is not None else 0.0
        return _parse(body), resp["ETag"], max(age, 0.0)

    def _stale(self, info: dict, age: float) -> bool:
        if age > ttl_seconds():
            return True
        return info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"])

    def _put_if(self, **condition) -> bool:
        """One conditional write; False when its precondition failed (another writer got there first)."""
        try:
            self.etag = self._put(**condition)
            return True
        except OSError as e:
            if not _precondition_failed(e):
                raise
            return False

    def _acquire(self) -> None:
        with storage_errors(self.url, "take the lease on"):
            if self._put_if(IfNoneMatch="*"):
                return
            for _ in range(3):
                try:
                    info, etag, age = self._get()
                except FileNotFoundError:  # released meanwhile: try to create it again
                    if self._put_if(IfNoneMatch="*"):
                        return
                    continue
                if not self._stale(info, age):
                    raise LeaseHeld(
                        f"{self.url} is being written by {describe_holder(info, age)}; wait for it to finish or stop it "
                        f"(a lease not renewed for {ttl_seconds():.0f} s is taken over)"
                    )
                if self._put_if(IfMatch=etag):
                    self.taken_over = info
                    return
            raise LeaseHeld(f"cannot take the lease on {self.url}: another writer took it first")

    def _verify(self) -> None:
        try:
            etag = self.fs.call_s3("head_object", Bucket=self.bucket, Key=self.key)["ETag"]
        except FileNotFoundError:
            raise LeaseHeld("the lease was deleted") from None
        if etag != self.etag:
            info, _, age = self._get()
            raise LeaseHeld(f"taken over by {describe_holder(info, age)}")

    def _renew(self) -> None:
        try:
            self.etag = self._put(IfMatch=self.etag)
        except OSError as e:
            if _precondition_failed(e) or isinstance(e, FileNotFoundError):
                try:
                    info, _, age = self._get()
                    raise LeaseHeld(f"taken over by {describe_holder(info, age)}") from None
                except FileNotFoundError:
                    raise LeaseHeld("the lease was deleted") from None
            raise

    def _release(self) -> None:
        try:
            self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except OSError as e:
            if not _precondition_failed(e):
                raise


class AdvisoryLease(Lease):
    """Other fsspec file systems: a lease file written without an atomic create (best effort)."""

    def __init__(self, url: str, command: str, storage_options: dict | None = None):
        Lease.__init__(self, url, command)
        self.fs, path = filesystem(url, storage_options)
        self.target = f"{path.rstrip('/')}/{LEASE_NAME}"

    def _acquire(self) -> None:
        with storage_errors(self.url, "take the lease on"):
            if self.fs.exists(self.target):
                info = _parse(self.fs.cat_file(self.target))
                age = time.time() - _http_date_iso(info.get("heartbeat_at"))
                if age <= ttl_seconds():
                    raise LeaseHeld(f"{self.url} is being written by {describe_holder(info, age)}")
                self.taken_over = info
            print(f"note: {self.url}: this storage has no atomic create; the lease is advisory", file=sys.stderr)
            self.fs.pipe_file(self.target, self._body())

    def _renew(self) -> None:
        self.fs.pipe_file(self.target, self._body())

    def _release(self) -> None:
        self.fs.rm_file(self.target)


def _precondition_failed(e: BaseException) -> bool:
    """A conditional S3 write lost (412, or 409 for two racing conditional writes)."""
    if isinstance(e, FileExistsError):
        return True
    cause = e.__cause__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code") if cause is not None else None
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _http_date_iso(value: str | None) -> float:
    try:
        return dt.datetime.fromisoformat(value).timestamp() if value else 0.0
    except ValueError:
        return 0.0


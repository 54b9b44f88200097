"""One writer per result: a lease file inside it, taken before anything is written.

The lease (`landscape.lease`, JSON: owner host, pid, start time, heartbeat) is
- on local disk: a file held under an exclusive `flock`. The kernel drops the
  lock when its holder dies, however it dies, so a dead holder's lease is free;
  a live one's is refused. The file is checked to be the one at the path after
  locking (a releasing holder unlinks it), so two processes never both hold it.
- on S3: an object created with a conditional write (If-None-Match: *), renewed
  and released only if its ETag is still ours (If-Match). A lease whose last
  renewal is older than the time-to-live (by the server's clock), or whose holder
  ran on this host and is dead, is stale and taken over, again by If-Match, so of
  two takers exactly one wins.
A background thread renews the heartbeat; a holder that finds its lease taken
(it was paused beyond the time-to-live) stops before its next write. Which lease a URL takes:
leasing.py (take_lease, read_lease).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from landscape.errors import ResultError

LEASE_NAME = "landscape.lease"
TAKEOVER_NAME = "landscape.lease.takeover"
TTL_ENV = "LANDSCAPE_LEASE_TTL_S"
DEFAULT_TTL_S = 120.0


def ttl_seconds() -> float:
    try:
        return max(float(os.environ.get(TTL_ENV, DEFAULT_TTL_S)), 1.0)
    except ValueError:
        return DEFAULT_TTL_S


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseHeld(ResultError):
    """Another live writer holds the result."""


def describe_holder(info: dict, age_s: float | None = None) -> str:
    who = f"{info.get('command', 'landscape')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('started_at', '?')}"
    if age_s is not None:
        who += f", last heartbeat {age_s:.0f} s ago"
    return who + ")"


class Lease:
    """Base: what every backend records and how it renews in the background."""

    def __init__(self, url: str, command: str):
        self.url = str(url)
        self.info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": _now(),
            "heartbeat_at": _now(),
            "command": command,
            "token": uuid.uuid4().hex,
        }
        self.taken_over: dict | None = None  # the stale lease we replaced, if any
        self.lost: str | None = None  # why we no longer hold it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps(self.info, indent=1).encode()

    # -- backend ---------------------------------------------------------------
    def _acquire(self) -> None:
        raise NotImplementedError

    def _renew(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    # -- public ----------------------------------------------------------------
    def acquire(self) -> "Lease":
        self._acquire()
        interval = ttl_seconds() / 4
        self._thread = threading.Thread(target=self._beat, args=(interval,), name="landscape-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.info["heartbeat_at"] = _now()
                self._renew()
            except LeaseHeld as e:
                self.lost = str(e)
                return
            except Exception as e:  # storage trouble: try again next beat; the time-to-live covers a few misses
                print(f"note: could not renew the lease on {self.url}: {e}", file=sys.stderr, flush=True)

    def _verify(self) -> None:
        """LeaseHeld if the lease is no longer ours (cheap: one stat or one HEAD)."""

    def check(self) -> None:
        """ResultError if another writer has taken the result over; call before each write."""
        if not self.lost:
            try:
                self._verify()
            except LeaseHeld as e:
                self.lost = str(e)
        if self.lost:
            raise ResultError(f"this run lost its lease on {self.url}: {self.lost}; it stops here, its stored tiles are kept")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.lost:
            try:
                self._release()
            except Exception:  # a lease left behind is stale and will be taken over; never mask the real outcome
                pass


class LocalLease(Lease):
    def __init__(self, url: str, command: str):
        super().__init__(url, command)
        self.path = Path(url) / LEASE_NAME
        self._guard = Path(url) / TAKEOVER_NAME  # serializes takeovers of a silent holder
        self._fd: int | None = None

    def _acquire(self) -> None:
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self._take_over_silent(fd):
                    return
                continue
            if not self._at_path(fd):  # its holder released (unlinked) it between our open and our lock
                os.close(fd)
                continue
            previous = os.read(fd, 1 << 16)
            if previous.strip():  # a holder that died without releasing: the kernel dropped its lock
                self.taken_over = _parse(previous)
            self._fd = fd
            self._write()
            return
        raise ResultError(f"cannot take the lease on {self.url}: it keeps changing hands; try again")

    def _take_over_silent(self, fd: int) -> bool:
        """The lock is held. If its holder has not renewed within the time-to-live (it hangs, or was
        stopped), put a fresh lease file in its place; it notices before its next write. Else refuse."""
        try:
            age = time.time() - os.fstat(fd).st_mtime
            holder = _parse(os.pread(fd, 1 << 16, 0))
            if age <= ttl_seconds():
                raise LeaseHeld(
                    f"{self.url} is being written by {describe_holder(holder, age)}; wait for it to finish or stop it "
                    f"(a lease not renewed for {ttl_seconds():.0f} s is taken over)"
                )
            guard = os.open(self._guard, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(guard, fcntl.LOCK_EX)  # one taker at a time; held for microseconds
                if not self._at_path(fd):
                    return False  # someone else replaced it first: look again
                new = f"{self.path}.{uuid.uuid4().hex}"
                self._fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._write()
                os.replace(new, self.path)
                self.taken_over = holder
                return True
            finally:
                os.close(guard)
        finally:
            os.close(fd)

    def _at_path(self, fd: int) -> bool:
        """Is the file behind `fd` still the one at the lease's path?"""
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _write(self) -> None:
        body = self._body()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, body, 0)
        os.fsync(self._fd)

    def _verify(self) -> None:
        if self._fd is not None and not self._at_path(self._fd):
            holder = _read_json(self.path)
            raise LeaseHeld(f"taken over by {describe_holder(holder)}" if holder else "its lease file was removed")

    def _renew(self) -> None:
        self._verify()
        if self._fd is not None:
            self._write()

    def _release(self) -> None:
        if self._fd is None:
            return
        try:
            if self._at_path(self._fd):
                self.path.unlink(missing_ok=True)  # while still locked: a waiter then sees a new file
        finally:
            os.close(self._fd)  # drops the lock
            self._fd = None


# -- helpers -----------------------------------------------------------------------------


def _parse(raw: bytes | str) -> dict:
    try:
        d = json.loads(raw)
        return d if isinstance(d, dict) else {}
    except (ValueError, TypeError):
        return {}


def _read_json(path: Path) -> dict:
    try:
        return _parse(path.read_bytes())
    except OSError:
        return {}

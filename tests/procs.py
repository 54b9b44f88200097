"""Process-tree helpers for tests that SIGKILL parts of Ray (Linux /proc; psutil is not a dependency)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _stats() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, process group) of every live process."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ')'.
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":  # a zombie has exited; only its parent's wait() is missing
                    out[int(d.name)] = (int(fields[1]), int(fields[2]))
            except (OSError, IndexError, ValueError):
                pass  # exited while we looked
    return out


def descendants(pid: int) -> set[int]:
    stats = _stats()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (pp, _) in stats.items() if pp in frontier} - found
        found |= frontier
    return found


def group(pgid: int) -> set[int]:
    return {p for p, (_, g) in _stats().items() if g == pgid}


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reap(pids: set[int], grace_s: float, pgid: int | None = None) -> set[int]:
    """Wait up to `grace_s` for `pids` (and the process group `pgid`) to exit, then SIGKILL what is left.

    The group is looked at again each time: a dying Ray may still start a process
    (an agent) after `pids` was listed. Returns the pids that had to be killed.
    """
    def left() -> set[int]:
        return {p for p in pids if alive(p)} | (group(pgid) if pgid is not None else set())

    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and left():
        time.sleep(0.1)
    killed: set[int] = set()
    deadline = time.monotonic() + 10
    while (rest := left()) and time.monotonic() < deadline:
        for p in rest - killed:
            try:
                os.kill(p, signal.SIGKILL)  # asynchronous: loop until they are gone
            except ProcessLookupError:
                pass
        killed |= rest
        time.sleep(0.05)
    return killed


def kill_driver(p) -> set[int]:
    """SIGKILL a driver subprocess (`p`, a Popen in its own session) and reap what its Ray leaves.

    Ray's reaper stops most of its processes once the driver is gone; its agents may linger
    (they stay in the driver's process group; the actors have their own, hence the listing).
    Returns the pids that were the driver's descendants, all gone by now.
    """
    leftovers = descendants(p.pid)  # its Ray: GCS, raylet, agents, actors
    try:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        reap(leftovers | descendants(p.pid), grace_s=1, pgid=p.pid)
    return leftovers

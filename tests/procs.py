"""Process-tree helpers for tests that SIGKILL parts of Ray (Linux /proc; psutil is not a dependency)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _ppids() -> dict[int, int]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
                out[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass  # exited while we looked
    return out


def descendants(pid: int) -> set[int]:
    ppids = _ppids()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in ppids.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait() is missing


def reap(pids: set[int], grace_s: float) -> set[int]:
    """Wait up to `grace_s` for `pids` to exit, SIGKILL the rest; returns those that had to be killed."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    stragglers = {p for p in pids if alive(p)}
    for p in stragglers:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return stragglers

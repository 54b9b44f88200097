"""Which landscape computed: its version, and its git commit when it runs from a checkout.

Apart from jobs/common/provenance.py so that `landscape submit` (jobs/service/bundle.py) records the
submitting side's commit without importing what provenance hashes files with.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


@functools.cache
def checkout_source() -> dict:
    """landscape's version, and its git commit when it runs from a checkout (else commit None)."""
    import landscape

    root = Path(landscape.__file__).resolve().parents[1]
    commit = _git(root, "rev-parse", "HEAD") if (root / ".git").exists() else None
    dirty = None
    if commit is not None:
        changes = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(changes) if changes is not None else None
    return {"version": landscape.__version__, "commit": commit, "dirty": dirty, "commit_from": "checkout" if commit else None}

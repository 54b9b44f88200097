"""What every job says and records about its run: progress lines, library versions, where plots go."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def plots_dir_for(url: str, name: str) -> Path:
    """Plots go beside a local result (foo.zarr -> foo-plots/), else under results/."""
    if "://" in url:
        return Path("results") / f"{name}-plots"
    p = Path(url)
    return p.with_name(p.name.removesuffix(".zarr") + "-plots")


def plot_and_say(url: str, name: str, fmt: str, out: str | Path | None = None, opts=None) -> None:
    """Draw the result's figures (into `out`, else beside it as <name>-plots) and print each path."""
    from ..plot import plot_result

    for path in plot_result(url, out or plots_dir_for(url, name), fmt, opts):
        print(f"plot: {path}")


def versions() -> dict:
    import pydantic
    import ray
    import zarr

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "zarr": zarr.__version__,
        "numpy": np.__version__,
        "pydantic": pydantic.__version__,
    }


class StepPrinter:
    """Progress of the long phases (Lanczos steps, trace probes), a line every few seconds."""

    def __init__(self, label: str, every: float = 3.0):
        self.label, self.every, self.last, self.t0 = label, every, 0.0, time.monotonic()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.every or done == total:
            self.last = now
            say(f"[{self.label}] {phase} {done}/{total} ({now - self.t0:.1f} s)")

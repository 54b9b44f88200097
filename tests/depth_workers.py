"""Evaluators for tests/test_in_flight.py, importable by Ray workers (tests/ is on their PYTHONPATH)."""

from __future__ import annotations

import os
import time
from pathlib import Path


class DieOnce:
    """Records each item it starts; the process exits (a dead actor) at `die_at` the first time it is seen."""

    def __init__(self, problem: dict):
        self.log, self.die_at, self.seconds = Path(problem["log"]), problem["die_at"], problem["seconds"]

    def evaluate(self, i: int) -> dict:
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {i}\n")
        marker = self.log.with_suffix(".died")
        if i == self.die_at and not marker.exists():
            marker.write_text("x")
            os._exit(1)
        time.sleep(self.seconds)
        return {"item": i}

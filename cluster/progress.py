"""A progress line for long scans: tiles done/total, evaluations per second, ETA."""

from __future__ import annotations

import sys
import time


def _hms(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """Redraws one line on a terminal; prints a line every `every` seconds otherwise."""

    def __init__(self, total_tiles: int, total_points: int, label: str = "scan", stream=None, every: float = 5.0,
                 unit: str = "tiles"):
        self.total_tiles, self.total_points, self.label, self.unit = total_tiles, total_points, label, unit
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = 0.2 if self.tty else every
        self.t0 = time.monotonic()
        self.last = 0.0
        self.tiles = self.points = 0

    def update(self, tiles: int = 1, points: int = 0, force: bool = False) -> None:
        self.tiles += tiles
        self.points += points
        now = time.monotonic()
        if force or now - self.last >= self.every or self.tiles == self.total_tiles:
            self.last = now
            self._draw(now)

    @property
    def rate(self) -> float:
        return self.points / max(time.monotonic() - self.t0, 1e-9)

    def _draw(self, now: float) -> None:
        rate = self.rate
        eta = (self.total_points - self.points) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.tiles / max(self.total_tiles, 1)
        line = (
            f"[{self.label}] {self.unit} {self.tiles}/{self.total_tiles} ({pct:.0f}%) | "
            f"{rate:,.0f} evals/s | elapsed {_hms(now - self.t0)} | "
            f"ETA {_hms(eta) if eta == eta else '?'}"
        )
        end = "\n" if not self.tty or self.tiles == self.total_tiles else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()

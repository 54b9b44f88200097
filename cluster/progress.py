"""A progress line for long scans: tiles stored/total (as `landscape status` counts them), points per
second smoothed over recent results, and an ETA that ignores the warm-up."""

from __future__ import annotations

import sys
import time


def _hms(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def every_nth(stride: int) -> str:
    """"every 2nd", "every 3rd", "every 11th", ...: the preview passes' names."""
    suffix = "th" if stride % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(stride % 10, "th")
    return f"every {stride}{suffix}"


class SmoothedRate:
    """Points per second as an exponential moving average over recent results.

    Points and seconds are averaged separately (rate = EMA(points) / EMA(seconds),
    as tqdm does), so results that arrive in bursts from parallel actors do not
    make spikes. The clock starts at the first result: the time before it (Ray
    starting actors, models built, data loaded) is warm-up, not speed. `known`
    once `min_results` results after that one were averaged.
    """

    def __init__(self, smoothing: float = 0.2, min_results: int = 3):
        self.alpha, self.min_results = smoothing, min_results
        self.last: float | None = None
        self.points = self.seconds = 0.0
        self.results = 0

    def add(self, points: int, now: float) -> None:
        if self.last is None:  # the first result ends the warm-up
            self.last = now
            return
        dt, self.last = now - self.last, now
        if self.results == 0:
            self.points, self.seconds = float(points), dt
        else:
            self.points += self.alpha * (points - self.points)
            self.seconds += self.alpha * (dt - self.seconds)
        self.results += 1

    @property
    def known(self) -> bool:
        return self.results >= self.min_results and self.seconds > 0

    @property
    def value(self) -> float:
        """Points per second; 0 until known."""
        return self.points / self.seconds if self.known else 0.0


class Progress:
    """Redraws one line on a terminal; prints a plain line every `every` seconds otherwise (Ray job logs)."""

    def __init__(self, total_tiles: int, total_points: int, label: str = "scan", stream=None, every: float = 5.0,
                 tiles_done: int = 0, clock=time.monotonic):
        """`total_tiles`, `tiles_done`: the whole scan's tiles, and those stored before this run (a resume);
        `total_points`: the grid points this run evaluates."""
        self.total_tiles, self.total_points, self.label = total_tiles, total_points, label
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = 0.2 if self.tty else every
        self.clock = clock
        self.t0 = clock()
        self.last = float("-inf")
        self.tiles, self.points = tiles_done, 0
        self.smoothed = SmoothedRate()

    def update(self, tiles: int = 1, points: int = 0, force: bool = False) -> None:
        """`tiles` stored by this result (0 for a preview pass that completes no tile), `points` evaluated."""
        now = self.clock()
        self.tiles += tiles
        self.points += points
        self.smoothed.add(points, now)
        if force or now - self.last >= self.every or self.points >= self.total_points:
            self.last = now
            self._draw(now)

    @property
    def rate(self) -> float:
        """Points per second, smoothed; 0 until a few results after the first."""
        return self.smoothed.value

    def eta(self) -> float | None:
        """Seconds left, or None while the rate is not known yet."""
        rate = self.rate
        return max(self.total_points - self.points, 0) / rate if rate > 0 else None

    def line(self, now: float) -> str:
        pct = 100.0 * self.tiles / max(self.total_tiles, 1)
        eta = self.eta()
        speed = f"{self.rate:,.0f} points/s" if self.smoothed.known else "points/s: measuring"
        return (
            f"[{self.label}] tiles {self.tiles}/{self.total_tiles} ({pct:.0f}%) | "
            f"points {self.points:,}/{self.total_points:,} | {speed} | elapsed {_hms(now - self.t0)} | "
            f"ETA {_hms(eta) if eta is not None else '?'}"
        )

    def _draw(self, now: float) -> None:
        finished = self.points >= self.total_points
        end = "\n" if not self.tty or finished else ""
        self.stream.write(("\r" if self.tty else "") + self.line(now) + end)
        self.stream.flush()

"""The progress line: a smoothed rate and an ETA that ignore the warm-up, stored tiles as `status`
counts them, plain lines off a terminal, and the preview passes' ordinals."""

from __future__ import annotations

import io

import pytest

from cluster.progress import Progress, SmoothedRate, every_nth


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_ordinals():
    got = {n: every_nth(n) for n in (1, 2, 3, 4, 8, 11, 12, 13, 21, 22, 23, 101, 112)}
    assert got == {1: "every 1st", 2: "every 2nd", 3: "every 3rd", 4: "every 4th", 8: "every 8th", 11: "every 11th",
                   12: "every 12th", 13: "every 13th", 21: "every 21st", 22: "every 22nd", 23: "every 23rd",
                   101: "every 101st", 112: "every 112th"}


def test_warm_up_is_not_speed_and_no_eta_until_a_few_results():
    clock, out = Clock(), io.StringIO()
    p = Progress(total_tiles=20, total_points=2000, stream=out, every=0.0, clock=clock)
    clock.t = 60.0  # a minute of Ray starting actors before the first result
    p.update(points=100)
    assert p.rate == 0 and p.eta() is None and out.getvalue().splitlines()[-1].endswith("ETA ?")
    for k in range(1, 4):  # then 100 points every 2 s: 50 points/s
        clock.t = 60.0 + 2 * k
        p.update(points=100)
        if k < 3:
            assert p.eta() is None, k
    assert p.rate == pytest.approx(50.0)
    assert p.eta() == pytest.approx((2000 - 400) / 50.0)  # 32 s; the all-time average would say 2000/400*66 - 66 = 264 s
    assert "50 points/s" in out.getvalue().splitlines()[-1] and "ETA 0:00:32" in out.getvalue().splitlines()[-1]


def test_the_rate_follows_a_change_of_speed_and_ignores_bursts():
    r = SmoothedRate(smoothing=0.2, min_results=3)
    t = 0.0
    r.add(10, t)
    for _ in range(10):
        t += 1.0
        r.add(10, t)
    assert r.value == pytest.approx(10.0)
    seen = []
    for _ in range(30):  # twice as fast, arriving in bursts: two results at once, then a 1 s gap
        r.add(10, t)
        seen.append(r.value)  # right after a 0 s gap: no spike
        t += 1.0
        r.add(10, t)
        seen.append(r.value)
    assert max(seen) < 25 and r.value == pytest.approx(20.0, rel=0.15)


def test_tiles_count_the_stored_tiles_as_status_does_and_lines_are_plain_off_a_terminal():
    clock, out = Clock(), io.StringIO()
    p = Progress(total_tiles=9, total_points=30, label="resumed", stream=out, every=5.0, tiles_done=6, clock=clock)
    clock.t = 1.0
    p.update(tiles=0, points=10)  # a preview pass: points, no tile stored
    clock.t = 2.0
    p.update(tiles=1, points=10)  # under `every`: no line
    clock.t = 7.0
    p.update(tiles=2, points=10)  # the last: a line at once
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[resumed] tiles 6/9 (67%) | points 10/30 |")
    assert lines[1].startswith("[resumed] tiles 9/9 (100%) | points 30/30 |")


def test_a_terminal_gets_one_redrawn_line():
    clock, out = Clock(), Tty()
    p = Progress(total_tiles=2, total_points=20, stream=out, clock=clock)
    for k in range(2):
        clock.t = k + 1.0
        p.update(points=10)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.count("\n") == 1 and text.endswith("\n")

"""lr-scan summaries that mean something: collapsed rates excluded, gains only above the probe set's noise,
rates printed by increasing learning rate. Checked by hand on small arrays (no training needed)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from jobs.health.lr_scan import gain_meta, say_rates_in_order
from landscape.lr_search import best_gain, gain_noise

LRS = np.array([1.0, 0.01, 0.1, 0.001])  # completion order, not sorted
ACC = np.array([[0.10, 0.90], [0.10, 0.60], [0.10, 0.70], [0.10, 0.1030]])  # (rates, epochs + 1)
DIV = np.array([0, 0, 0, 0])
COL = np.array([1, 0, 0, 0])  # lr 1 collapsed (its accuracy jumped anyway)


def test_collapsed_rates_are_not_the_best_gain():
    b = best_gain(LRS, ACC, DIV, COL, samples=1797)
    assert b.lr == 0.1 and b.gain == np.float64(0.70 - 0.10) and b.candidates == 3
    assert "lr 0.1" in b.describe() and "did not collapse" in b.describe()
    assert best_gain(LRS, ACC, DIV, None, samples=1797).lr == 1.0  # without the collapse flags lr 1 would win


def test_a_gain_within_the_probe_sets_noise_is_not_reported():
    acc = np.array([[0.950, 0.953], [0.950, 0.951]])  # +0.003 on 1,797 samples: about 5 samples
    b = best_gain(np.array([0.01, 0.1]), acc, np.zeros(2), np.zeros(2), samples=1797)
    want = 2 * math.sqrt((0.95 * 0.05 + 0.953 * 0.047) / 1797)
    assert b.noise == gain_noise(0.95, 0.953, 1797) and abs(b.noise - want) < 1e-12
    assert b.lr is None and b.gain > 0 and "no accuracy gain above the probe set's noise" in b.describe()
    assert gain_meta(b)["best_gain_lr"] is None
    everything_collapsed = best_gain(np.array([0.01, 0.1]), acc, np.zeros(2), np.ones(2), samples=1797)
    assert everything_collapsed.lr is None and everything_collapsed.candidates == 0


def test_rates_are_printed_by_increasing_learning_rate(capsys):
    group = {"lr": LRS, "accuracy": ACC, "lr_done": np.ones(4, np.uint8), "diverged": DIV, "collapsed": COL}
    say_rates_in_order(SimpleNamespace(group=group))
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip().startswith("lr ")]
    assert [float(ln.split()[1].rstrip(":")) for ln in lines] == [0.001, 0.01, 0.1, 1.0]
    assert lines[-1].endswith("(collapsed)") and "+0.003" in lines[0]

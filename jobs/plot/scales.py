"""Colour scales a reader can read: round contour levels and colour-bar ticks, a colour bar exactly as
tall as its axes, values outside [vmin, vmax] clipped to the end colours."""

from __future__ import annotations

import numpy as np
from matplotlib import ticker
from matplotlib.colors import LogNorm, Normalize

from .style import value_range


def round_sig(v: np.ndarray, digits: int = 2) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    with np.errstate(divide="ignore"):
        mag = np.where(v != 0, np.floor(np.log10(np.abs(np.where(v != 0, v, 1)))), 0)
    scale = 10.0 ** (digits - 1 - mag)
    return np.round(v * scale) / scale


def scale_for(z: np.ma.MaskedArray, log: bool, vmin: float | None = None, vmax: float | None = None):
    """(lo, hi, log) of the colour scale: the data's range (at most 6 decades when log) unless given."""
    lo, hi, log = value_range(z, log) if z.count() else (0.0, 1.0, False)
    lo = lo if vmin is None else vmin
    hi = hi if vmax is None else vmax
    if log and lo <= 0:
        log = False  # a log scale needs positive values
    if not hi > lo:
        hi = lo + (abs(lo) or 1.0)
    return lo, hi, log


def make_norm(lo: float, hi: float, log: bool) -> Normalize:
    return LogNorm(lo, hi, clip=True) if log else Normalize(lo, hi, clip=True)


def round_ticks(lo: float, hi: float, log: bool, most: int = 9) -> np.ndarray:
    """Ticks at round values inside [lo, hi], at most `most`: on a log scale the first of 1, 1-2-5, 1..9 per
    decade that gives three (every k-th when that is too many), else a 1-2-2.5-5 step; at least two."""
    if log:
        decades = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
        for subs in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            t = np.array([s * 10.0 ** d for d in decades for s in subs])
            t = round_sig(t[(t >= lo * (1 - 1e-9)) & (t <= hi * (1 + 1e-9))])
            if len(t) >= 3:
                break
        if len(t) > most:
            t = t[:: int(np.ceil(len(t) / most))]
        if len(t) >= 2:
            return t
    t = ticker.MaxNLocator(min(most, 7), steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    return round_sig(t[(t >= lo - 1e-12 * abs(hi - lo)) & (t <= hi + 1e-12 * abs(hi - lo))], 6)


def tick_text(v: float) -> str:
    return f"{v:.6g}"


def contour_levels(lo: float, hi: float, log: bool, levels) -> np.ndarray:
    """Explicit values as given; a count: that many levels spaced evenly (log or linear), rounded to 2 digits."""
    if isinstance(levels, tuple):
        return np.array(levels, dtype=np.float64)
    if levels is None and log:  # round values, about 6 per decade: 1, 1.5, 2, 3, 5, 7 x 10^k
        decades = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
        t = round_sig(np.array([m * 10.0 ** d for d in decades for m in (1, 1.5, 2, 3, 5, 7)]))
        t = t[(t >= lo) & (t <= hi)]
        if len(t) >= 4:
            return t
    n = levels or 14
    if not log:  # round steps (1, 2, 2.5, 5 x 10^k), about n of them
        t = ticker.MaxNLocator(n, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        t = round_sig(t[(t >= lo) & (t <= hi)], 6)
        if len(t) >= 2:
            return t
    raw = np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)
    lv = np.unique(round_sig(raw, 2))
    return lv if len(lv) >= 2 else raw


def colorbar(fig, ax, mappable, label: str, lo: float, hi: float, log: bool, clip_top: bool = False):
    """A colour bar exactly as tall as `ax` (an inset in its axes coordinates, so it follows an equal
    aspect), with round ticks; `clip_top`: the top tick reads '> vmax' (values above share its colour)."""
    cax = ax.inset_axes([1.03, 0.0, 0.045, 1.0], label="<colorbar>")
    cb = fig.colorbar(mappable, cax=cax)
    cb.set_label(label)
    ticks = round_ticks(lo, hi, log)
    if clip_top:  # the top tick at vmax itself; round ticks too close below it would collide with it
        pos = make_norm(lo, hi, log)(ticks)
        ticks = np.append(ticks[np.asarray(pos) < 0.9], hi)
    if not clip_top:
        cb.set_ticks(ticks, labels=[tick_text(t) for t in ticks])
    else:
        cb.set_ticks(ticks, labels=[tick_text(t) for t in ticks[:-1]] + [f"> {tick_text(hi)}"])
    cb.ax.yaxis.set_minor_locator(ticker.NullLocator())
    return cb

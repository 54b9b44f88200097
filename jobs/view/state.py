"""What the live page shows, read from the result each time it asks: the heatmap of the metric as drawn
(a running preview scan's finest complete sub-grid: the whole plane early), how many points are done,
and an ETA from the rate this viewer has seen points land."""

from __future__ import annotations

import math
import time

import numpy as np

from cluster.progress import _hms
from jobs.plot.data import load
from jobs.plot.html import _thin
from jobs.plot.labels import axis_labels
from jobs.plot.maps import _values
from jobs.plot.options import PlotOptions, resolved
from jobs.plot.scales import round_ticks, tick_text
from jobs.plot.style import title


def _clean(a: np.ma.MaskedArray) -> list:
    """Rows of floats, None where masked (JSON has no NaN)."""
    f = np.ma.filled(a.astype(np.float64), np.nan)
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in f.tolist()]


class Watch:
    """Snapshots of one result; remembers when it first saw how many points, for the ETA."""

    def __init__(self, result: str, opts: PlotOptions | None = None):
        self.result, self.opts = result, resolved(opts)
        self.first: tuple[float, int] | None = None

    def snapshot(self) -> dict:
        ls = load(self.result)
        if ls.loss.ndim != 2:
            raise ValueError("landscape view draws planes; this result is a line")
        total = int(np.prod(ls.meta.get("grid_shape") or ls.loss.shape))
        done = int(ls.meta["points_evaluated"]) if ls.meta.get("preview_view") else ls.finished
        status = ls.meta.get("status", "?")
        now = time.monotonic()
        if self.first is None or done < self.first[1]:  # first look, or the result was started over
            self.first = (now, done)
        t0, d0 = self.first
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        s = _thin(ls)
        if ls.loss.count():
            z, label, lo, hi, log = _values(ls, self.opts)
            shown = np.ma.clip(z, lo, hi)
            c = np.ma.log10(shown) if log else shown
            ticks = round_ticks(lo, hi, log)
            scale = {"zmin": math.log10(lo) if log else lo, "zmax": math.log10(hi) if log else hi,
                     "tickvals": [float(v) for v in (np.log10(ticks) if log else ticks)], "ticktext": [tick_text(t) for t in ticks]}
            values, z_text = _clean(c[::s, ::s]), _clean(z[::s, ::s])
        else:
            label, scale, values, z_text = self.opts.metric, None, None, None
        xl, yl = axis_labels(ls.meta)
        xl, yl = self.opts.xlabel or xl, self.opts.ylabel or yl
        return {
            "title": self.opts.title or title(ls), "status": status, "done": done, "total": total,
            "progress": f"{done:,} / {total:,} points ({100 * done / max(total, 1):.0f}%)"
                        + ("" if status != "complete" else ", complete")
                        + (f", ETA {_hms(eta)}" if eta is not None and status != "complete" else ""),
            "eta_s": eta, "rate": rate, "x": ls.x[::s].tolist(), "y": ls.y[::s].tolist(), "z": values, "value": z_text,
            "label": label, "scale": scale, "xlabel": xl, "ylabel": yl,
            "shown": int(ls.loss[::s, ::s].count()),
        }

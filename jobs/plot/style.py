"""Shared look: colour scales, contour levels, titles, the missing/diverged shading."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless service: never try to open a display

import matplotlib.patheffects as pe  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm, Normalize  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from cluster.progress import every_nth  # noqa: E402
from landscape.metrics import ARRAYS  # noqa: E402

from .data import Landscape  # noqa: E402

CMAP = "viridis"
OUTLINE = [pe.withStroke(linewidth=2.5, foreground="white")]
UNFINISHED, DIVERGED = "0.85", "#8b1a1a"


def title(ls: Landscape) -> str:
    """Model, data, split and slice; a second line says how much of a running scan is drawn."""
    from .labels import base_title

    m = ls.meta
    t = base_title(m)
    if m.get("preview_view"):
        s = m["preview_view"]
        total = int(np.prod(m.get("grid_shape") or [ls.loss.size * s ** ls.loss.ndim]))
        t += f"\n(preview: {every_nth(s)} point; {m.get('points_evaluated', 0):,}/{total:,} evaluated)"
    elif m.get("status", "complete") != "complete":
        t += f"\n(partial: {ls.finished}/{ls.loss.size} points)"
    return t


class PlainLog(ticker.LogFormatterSciNotation):
    # '0.2', '40' instead of 2x10^-1; matplotlib still picks which ticks get labels.
    def __call__(self, x, pos=None):
        return f"{x:.3g}" if super().__call__(x, pos) else ""


def plain_log(axis) -> None:
    axis.set_major_formatter(PlainLog())
    axis.set_minor_formatter(PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def value_range(z: np.ma.MaskedArray, log: bool = True) -> tuple[float, float, bool]:
    """(lo, hi, use_log). Log scales span at most 6 decades: one near-zero loss
    (1e-33 at an exact fit) would otherwise flatten everything else."""
    lo, hi = float(z.min()), float(z.max())
    if log and lo > 0 and hi > lo:
        return max(lo, hi * 1e-6), hi, True
    return lo, (hi if hi > lo else lo + 1.0), False


def norm_for(z: np.ma.MaskedArray, log: bool = True) -> Normalize:
    # Log scale shows the basin and the walls at once; only valid for positive losses.
    lo, hi, use_log = value_range(z, log)
    return LogNorm(lo, hi) if use_log else Normalize(lo, hi)


def metric_norm(name: str, z: np.ma.MaskedArray) -> Normalize:
    info = ARRAYS.get(name)
    return norm_for(z, log=bool(info and info.log_scale))


def levels(z: np.ma.MaskedArray, n: int = 14) -> np.ndarray | None:
    if not float(z.max()) > float(z.min()):
        return None  # flat surface: no contour lines to draw
    lo, hi, use_log = value_range(z)
    return np.geomspace(lo, hi, n) if use_log else np.linspace(lo, hi, n)


def diverged_label(ls: Landscape) -> str:
    if ls.has_batchnorm and str(ls.meta.get("batchnorm", "eval")).startswith("eval"):
        # line_between past its endpoints extrapolates running variances below zero.
        if ls.meta.get("slice_kind") == "line_between" and ls.diverged.any():
            out = ls.x[ls.diverged] if ls.diverged.ndim == 1 else np.array([])
            if out.size and ((out < 0) | (out > 1)).all():
                return "blank (NaN): past an endpoint the interpolated BatchNorm variances go below zero; batchnorm: recompute avoids it"
        return "diverged: NaN/inf (BatchNorm statistics out of range? try batchnorm: recompute)"
    return "diverged: NaN/inf loss"


def shade_missing(ax, ls: Landscape) -> None:
    # Not-evaluated cells light grey, diverged cells dark red: both are masked out
    # of the colour scales but should still be visible as what they are.
    code = np.ma.masked_array(ls.diverged.astype(float), mask=~(ls.unfinished | ls.diverged))
    if code.count() == 0:
        return
    ax.pcolormesh(ls.x, ls.y, code, shading="nearest", vmin=0, vmax=1, cmap=ListedColormap([UNFINISHED, DIVERGED]))
    handles = [
        Patch(color=c, label=t)
        for c, t, m in ((UNFINISHED, "not evaluated yet", ls.unfinished), (DIVERGED, diverged_label(ls), ls.diverged))
        if m.any()
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)

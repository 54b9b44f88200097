"""Figures for a loss-landscape result (Zarr v3 group), finished or still running:
contour / heatmap / surface / accuracy for 2D scans, a loss curve for 1D scans.
NaN (unfinished) and inf (diverged) points are masked out of every colour scale."""
import os
import pathlib
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # headless service: never try to open a display

import matplotlib.patheffects as pe  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import zarr  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm, Normalize  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

FORMATS = ("png", "pdf", "svg")
_CMAP = "viridis"
_OUTLINE = [pe.withStroke(linewidth=2.5, foreground="white")]


@dataclass
class Landscape:
    loss: np.ma.MaskedArray  # (ny, nx) or (nx,), row 0 <-> y[0]
    accuracy: np.ma.MaskedArray
    x: np.ndarray
    y: np.ndarray | None
    meta: dict
    unfinished: np.ndarray  # NaN loss
    diverged: np.ndarray  # +-inf loss

    @property
    def finished(self) -> int:  # a diverged point is finished too
        return int(self.loss.size - np.count_nonzero(self.unfinished))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        y = self.y if self.y is not None else np.zeros(1)
        return float(self.x.min()), float(self.x.max()), float(y.min()), float(y.max())


def load(result) -> Landscape:
    """Read a result group (path or open zarr.Group) into masked arrays."""
    g = result if isinstance(result, zarr.Group) else zarr.open_group(str(result), mode="r")
    raw = np.asarray(g["loss"][...], dtype=np.float64)
    acc = np.asarray(g["accuracy"][...], dtype=np.float64) if "accuracy" in g else np.full_like(raw, np.nan)
    y = np.asarray(g["y"][...], dtype=np.float64) if raw.ndim == 2 else None
    return Landscape(
        loss=np.ma.masked_invalid(raw), accuracy=np.ma.masked_invalid(acc),
        x=np.asarray(g["x"][...], dtype=np.float64), y=y,
        meta=dict(g.attrs.get("landscape", {})), unfinished=np.isnan(raw), diverged=np.isinf(raw),
    )


def grid_image(result) -> tuple[np.ma.MaskedArray, tuple[float, float, float, float]]:
    """The 2D loss image exactly as drawn: (masked (ny, nx) array with row i at
    y[i] and column j at x[j], extent (xmin, xmax, ymin, ymax))."""
    ls = result if isinstance(result, Landscape) else load(result)
    if ls.loss.ndim != 2:
        raise ValueError(f"grid_image needs a 2D result, got shape {ls.loss.shape}")
    return ls.loss, ls.extent


def _title(ls: Landscape) -> str:
    m = ls.meta
    t = f"{m.get('name', 'landscape')} - {m.get('slice_kind', '?')}, {m.get('precision', '?')}"
    if m.get("status", "complete") != "complete":
        t += f" (partial: {ls.finished}/{ls.loss.size} points)"
    return t


class _PlainLog(ticker.LogFormatterSciNotation):
    # '0.2', '40' instead of 2x10^-1; matplotlib still picks which ticks get labels.
    def __call__(self, x, pos=None):
        return f"{x:.3g}" if super().__call__(x, pos) else ""


def _plain_log(axis) -> None:
    axis.set_major_formatter(_PlainLog())
    axis.set_minor_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _map_figure(ls: Landscape):
    # Size the figure to the axes' shape so equal-aspect plots of elongated
    # grids don't float in whitespace next to a full-height colorbar.
    x0, x1, y0, y1 = ls.extent
    ratio = (y1 - y0) / (x1 - x0) if x1 > x0 and y1 > y0 else 0.75
    equal = 1 / 3 <= ratio <= 3
    fig, ax = plt.subplots(figsize=(7.5, float(np.clip(5.2 * ratio + 1.6, 3.4, 7)) if equal else 5),
                           layout="constrained")
    if equal:  # equal aspect keeps distances honest unless it squashes the plot
        ax.set_aspect("equal")
    return fig, ax


def _shade_missing(ax, ls: Landscape) -> None:
    # Unfinished cells light grey, diverged cells dark red: both are masked out
    # of the loss colour scale but should still be visible as such.
    code = np.ma.masked_array(ls.diverged.astype(float), mask=~(ls.unfinished | ls.diverged))
    if code.count() == 0:
        return
    ax.pcolormesh(ls.x, ls.y, code, shading="nearest", vmin=0, vmax=1,
                  cmap=ListedColormap(["0.85", "#8b1a1a"]))
    handles = [Patch(color=c, label=t) for c, t, m in
               (("0.85", "not finished", ls.unfinished), ("#8b1a1a", "diverged", ls.diverged)) if m.any()]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)


def _range(z: np.ma.MaskedArray, log: bool = True) -> tuple[float, float, bool]:
    """(lo, hi, use_log). Log scales span at most 6 decades: one near-zero loss
    (1e-33 at an exact fit) would otherwise flatten everything else."""
    lo, hi = float(z.min()), float(z.max())
    if log and lo > 0 and hi > lo:
        return max(lo, hi * 1e-6), hi, True
    return lo, (hi if hi > lo else lo + 1.0), False


def _norm(z: np.ma.MaskedArray, log: bool = True) -> Normalize:
    # Log scale shows the basin and the walls at once; only valid for positive losses.
    lo, hi, use_log = _range(z, log)
    return LogNorm(lo, hi) if use_log else Normalize(lo, hi)


def _levels(z: np.ma.MaskedArray, n: int = 14) -> np.ndarray | None:
    if not float(z.max()) > float(z.min()):
        return None  # flat surface: no contour lines to draw
    lo, hi, use_log = _range(z)
    return np.geomspace(lo, hi, n) if use_log else np.linspace(lo, hi, n)


def _decorate_2d(ax, ls: Landscape) -> None:
    ax.set(xlabel="x", ylabel="y")
    ax.set_title(_title(ls), fontsize=10)
    for cp in ls.meta.get("checkpoints", []) or []:
        cx, cy = cp.get("x"), cp.get("y")
        if cx is None or cy is None:
            continue
        ax.plot(cx, cy, "o", ms=7, mfc="white", mec="black", mew=1.2, zorder=5)
        ax.annotate(str(cp.get("label", "")), (cx, cy), xytext=(6, 6), textcoords="offset points",
                    fontsize=9, color="black", path_effects=_OUTLINE, zorder=6)


def _message_figure(ls: Landscape, text: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(_title(ls), fontsize=10)
    return fig


def _heatmap(ls: Landscape, z: np.ma.MaskedArray, label: str, norm: Normalize):
    fig, ax = _map_figure(ls)
    # pcolormesh with the coordinate arrays: cells centred on (x[j], y[i]),
    # y grows upward, and non-uniform grids stay correct.
    mesh = ax.pcolormesh(ls.x, ls.y, z, shading="nearest", cmap=_CMAP, norm=norm)
    cb = fig.colorbar(mesh, ax=ax, label=label)
    if isinstance(norm, LogNorm):
        _plain_log(cb.ax.yaxis)
    _shade_missing(ax, ls)
    _decorate_2d(ax, ls)
    return fig


def _contour(ls: Landscape):
    fig, ax = _map_figure(ls)
    _shade_missing(ax, ls)
    z, levels = ls.loss, _levels(ls.loss)
    if levels is None or min(z.shape) < 2:
        ax.text(0.5, 0.5, "loss is flat: no contours", ha="center", transform=ax.transAxes)
    else:
        cs = ax.contour(ls.x, ls.y, z, levels=levels, cmap=_CMAP, norm=_norm(z), linewidths=1.0)
        # Label every other line so labels don't pile up in the basin.
        ax.clabel(cs, levels=cs.levels[::2], inline=True, fontsize=7, fmt="%.3g")
        fig.colorbar(cs, ax=ax, label="loss", format="%.3g")
    x0, x1, y0, y1 = ls.extent
    if x1 > x0 and y1 > y0:  # contours stop at the outermost grid points
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    _decorate_2d(ax, ls)
    return fig


def _surface(ls: Landscape):
    lo, hi, log = _range(ls.loss)
    zz = np.ma.log10(np.ma.maximum(ls.loss, lo)) if log else ls.loss
    fig = plt.figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    X, Y = np.meshgrid(ls.x, ls.y)
    lo, hi = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    surf = ax.plot_surface(X, Y, zz, cmap=_CMAP, vmin=lo, vmax=hi, linewidth=0, antialiased=False)
    for axis in (ax.xaxis, ax.yaxis):  # default 3D ticks overlap on the short axes
        axis.set_major_locator(ticker.MaxNLocator(5))
    label = "log10(loss)" if log else "loss"
    ax.set(xlabel="x", ylabel="y", zlabel=label)
    fig.colorbar(surf, ax=ax, label=label, shrink=0.6, pad=0.08)
    ax.set_title(_title(ls), fontsize=10)
    return fig


def _curve(ls: Landscape):
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.plot(ls.x, ls.loss, "-", color="C0", lw=1.5, label="loss")
    if float(ls.loss.min()) > 0:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    ax.set_xlabel("x")
    ax.set_ylabel("loss", color="C0")
    handles = ax.get_lines()
    if ls.accuracy.count():
        ax2 = ax.twinx()
        handles += ax2.plot(ls.x, ls.accuracy, "--", color="C1", lw=1.3, label="accuracy")
        ax2.set_ylabel("accuracy", color="C1")
    cps = [cp for cp in ls.meta.get("checkpoints", []) or [] if cp.get("x") is not None]
    for cp in cps:
        ax.axvline(cp["x"], color="0.3", ls=":", lw=1)
    if cps:  # labels on a top axis: inside the plot they collide with the curves
        ax.secondary_xaxis("top").set_xticks([cp["x"] for cp in cps],
                                             labels=[str(cp.get("label", "")) for cp in cps])
    if ls.diverged.any():  # diverged points have no y value; mark them on the floor
        ax.plot(ls.x[ls.diverged], np.zeros(np.count_nonzero(ls.diverged)), "x", color="#8b1a1a",
                transform=ax.get_xaxis_transform(), clip_on=False, label="diverged")
        handles = handles + ax.get_lines()[-1:]
    # Outside the axes: inside, it always covers one of the two curves.
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    ax.set_title(_title(ls), fontsize=10)
    return fig


def _builders(ls: Landscape) -> dict:
    """name -> callable building that figure; lazy so plot_result holds one at a time."""
    names = ["contour", "heatmap", "surface"] if ls.loss.ndim == 2 else ["curve"]
    empty = ("no finished points yet" if ls.finished == 0 else
             "no finite loss values (all finished points diverged)" if ls.loss.count() == 0 else None)
    if empty is not None:  # keep the usual file names so viewers find something
        return {n: (lambda: _message_figure(ls, empty)) for n in names}
    if ls.loss.ndim == 1:
        return {"curve": lambda: _curve(ls)}
    b = {"contour": lambda: _contour(ls), "heatmap": lambda: _heatmap(ls, ls.loss, "loss", _norm(ls.loss)),
         "surface": lambda: _surface(ls)}
    if ls.accuracy.count():
        b["accuracy"] = lambda: _heatmap(ls, ls.accuracy, "accuracy", _norm(ls.accuracy, log=False))
    return b


def figures(result) -> dict:
    """Build all figures (name -> matplotlib Figure) without saving them.
    The caller owns them and must plt.close() each."""
    ls = result if isinstance(result, Landscape) else load(result)
    return {name: build() for name, build in _builders(ls).items()}


def plot_result(result: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "png") -> list[pathlib.Path]:
    """Write the figures for `result` into `out_dir` as `<name>.<fmt>`; return their paths."""
    if fmt not in FORMATS:
        raise ValueError(f"unsupported figure format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ls = result if isinstance(result, Landscape) else load(result)
    paths = []
    for name, build in _builders(ls).items():
        path = out / f"{name}.{fmt}"
        fig = build()
        try:
            fig.savefig(path, dpi=120)
        finally:
            plt.close(fig)  # long-running services would otherwise leak figures
        paths.append(path)
    return paths

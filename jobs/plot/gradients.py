"""Figures of a `landscape gradients` result: the gradient diagram, lines per depth, the profile at initialization."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import zarr

from .style import CMAP, DIVERGED, UNFINISHED, plain_log


class GradientRun:
    """The arrays of a gradients result, the weight matrices in depth order (input side first)."""

    def __init__(self, g: zarr.Group):
        self.meta = dict(g.attrs.get("landscape", {}))
        self.names = [str(n) for n in np.asarray(g["parameter"][...])]
        self.step = np.asarray(g["step"][...])
        self.done = np.asarray(g["row_done"][...], bool)
        widx = np.asarray(g["weight_index"][...])
        self.order = [i for i in np.argsort(widx) if widx[i] >= 0]  # columns of the weight matrices, by depth
        self.weights = [self.names[i] for i in self.order]
        self.stats = {k: np.where(self.done[:, None], np.asarray(g[k][...], dtype=float), np.nan)
                      for k in ("median_log10_grad", "p10_log10_grad", "p90_log10_grad", "update_ratio")}

    def of(self, stat: str) -> np.ndarray:
        """(steps, weight matrices) of one statistic."""
        return self.stats[stat][:, self.order]

    def picks(self) -> list[int]:
        """Depth indices of the first, middle and last weight matrices."""
        k = len(self.order)
        return list(dict.fromkeys([0, k // 2, k - 1]))

    def title(self, what: str) -> str:
        m = self.meta
        t = f"{m.get('name', 'gradients')} - {what}"
        if m.get("status", "complete") != "complete":
            t += f" (partial: {int(self.done.sum())}/{len(self.done)} rows)"
        return t

    def mark_divergence(self, ax) -> None:
        s = self.meta.get("diverged_at_step")
        if s is not None:
            ax.axvline(s, color=DIVERGED, ls="--", lw=1.2, label=f"loss diverged at step {s}")


def diagram(run: GradientRun):
    """Median log10|grad| of every weight matrix (rows, input at the bottom) against the step."""
    z = np.ma.masked_invalid(run.of("median_log10_grad").T)  # (K, steps)
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    ax.set_facecolor(UNFINISHED)  # rows not recorded (yet), or without a statistic
    steps = run.step.astype(float)
    dx = float(np.median(np.diff(steps))) if len(steps) > 1 else 1.0
    extent = (steps[0] - dx / 2, steps[-1] + dx / 2, -0.5, len(run.order) - 0.5)
    if z.count():
        im = ax.imshow(z, aspect="auto", origin="lower", extent=extent, cmap=CMAP, interpolation="nearest")
        fig.colorbar(im, ax=ax, label="median log10|grad|")
    if len(steps) <= 12:
        ax.set_xticks(run.step)
    ticks = run.picks()
    ax.set_yticks(ticks, labels=[run.weights[i] for i in ticks], fontsize=8)
    ax.set(xlabel="step (optimizer steps taken)", ylabel="weight matrix (input side at the bottom)")
    run.mark_divergence(ax)
    if run.meta.get("diverged_at_step") is not None:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(run.title("gradient diagram"), fontsize=10)
    return fig


def lines(run: GradientRun):
    """First, middle and last weight matrices over the steps: median with its 10-90% band, and the update ratio."""
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, layout="constrained")
    med, lo, hi, upd = (run.of(k) for k in ("median_log10_grad", "p10_log10_grad", "p90_log10_grad", "update_ratio"))
    marker = "o" if len(run.step) <= 40 else None
    for c, i in enumerate(run.picks()):
        ax.plot(run.step, med[:, i], color=f"C{c}", marker=marker, ms=3, label=run.weights[i])
        ax.fill_between(run.step, lo[:, i], hi[:, i], color=f"C{c}", alpha=0.15, lw=0)
        u = np.where(upd[:, i] > 0, upd[:, i], np.nan)
        if np.isfinite(u).any():
            ax2.plot(run.step, u, color=f"C{c}", marker=marker, ms=3)
    ax.set_ylabel("log10|grad|: median, 10-90% band")
    ax2.set_yscale("log")
    plain_log(ax2.yaxis)
    ax2.set(xlabel="step (optimizer steps taken)", ylabel="update ratio |dw| / |w|")
    if not np.isfinite(upd).any():
        ax2.text(0.5, 0.5, "no optimizer step recorded (epochs: 0)", transform=ax2.transAxes, ha="center", color="0.4")
    for a in (ax, ax2):
        run.mark_divergence(a)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(run.title("first, middle and last weight matrices"), fontsize=10)
    return fig


def profile(run: GradientRun):
    """log10|grad| over depth at the first recorded row (initialization), and at the last one for comparison."""
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    med, lo, hi = (run.of(k) for k in ("median_log10_grad", "p10_log10_grad", "p90_log10_grad"))
    depth = np.arange(len(run.order))
    rows = np.flatnonzero(run.done)
    if not len(rows):
        ax.text(0.5, 0.5, "no row recorded yet", transform=ax.transAxes, ha="center")
    else:
        first = rows[0]
        ax.plot(depth, med[first], "o-", color="C0", ms=3, label=f"median at step {run.step[first]} (initialization)")
        ax.fill_between(depth, lo[first], hi[first], color="C0", alpha=0.2, lw=0, label="10-90% of the entries")
        if len(rows) > 1:
            last = rows[-1]
            ax.plot(depth, med[last], "s--", color="C3", ms=3, label=f"median at step {run.step[last]}")
        ok = np.isfinite(med[first])
        if ok.sum() >= 2:
            slope, icept = np.polyfit(depth[ok], med[first][ok], 1)
            span = slope * (depth[-1] - depth[0])
            ax.plot(depth, icept + slope * depth, ":", color="0.3",
                    label=f"least-squares fit over all weight matrices at initialization: {span:+.2f} decades across the depth")
    ax.set(xlabel="weight matrix (0 = input side)", ylabel="log10|grad|")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(run.title("gradient profile over depth"), fontsize=10)
    return fig


def figures(g: zarr.Group) -> dict:
    run = GradientRun(g)
    return {"gradient_diagram": lambda: diagram(run), "gradient_lines": lambda: lines(run), "gradient_profile": lambda: profile(run)}

"""Figures of a `landscape lr-scan` result: gradient ratio and accuracy gain against the learning rate, the range test."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import zarr

from .style import DIVERGED, plain_log

FLOOR = 1e-6  # ratios below this (a gradient gone to ~0) are drawn on the floor


class LRResult:
    """The rates stored so far, sorted by learning rate (a bisection stores them in the order probed)."""

    def __init__(self, g: zarr.Group):
        self.meta = dict(g.attrs.get("landscape", {}))
        lr = np.asarray(g["lr"][...], dtype=float)
        done = np.asarray(g["lr_done"][...], bool) & np.isfinite(lr)
        order = np.argsort(lr[done])
        self.lr = lr[done][order]
        self.total = len(lr) if self.meta.get("method") != "bisect" else int(np.isfinite(lr).sum())
        pick = lambda name: np.asarray(g[name][...])[done][order]  # noqa: E731
        self.ratio, self.gain, self.acc = pick("grad_ratio"), pick("accuracy_gain"), pick("accuracy")
        self.median = pick("median_log10_grad")
        self.diverged, self.collapsed = pick("diverged") > 0, pick("collapsed") > 0
        self.epochs = self.ratio.shape[1] - 1 if self.ratio.ndim == 2 else 0
        # No non-zero gradient entry left (no median), without a non-finite loss: the gradient vanished entirely.
        self.vanished = ~np.isfinite(self.median) & ~self.diverged[:, None]
        self.vanished[:, 0] = False
        self.range = None
        if "range_lr" in g and self.meta.get("range_test", {}).get("done"):
            self.range = {k: np.asarray(g[k][...], dtype=float) for k in ("range_lr", "range_loss", "range_smoothed_loss")}

    def style(self) -> dict:
        return {"marker": "o", "ms": 3.5 if self.meta.get("method") == "bisect" else 2.5}


def _vline(ax, x, color, label):
    if x is not None:
        ax.axvline(x, color=color, ls="--", lw=1.3, label=label)


def _log_x(ax):
    ax.set_xscale("log")
    plain_log(ax.xaxis)


def _diverged(ax, r: LRResult) -> None:
    if r.diverged.any():
        ax.plot(r.lr[r.diverged], np.zeros(int(r.diverged.sum())), "x", color=DIVERGED, ms=8, mew=2,
                transform=ax.get_xaxis_transform(), clip_on=False, label="diverged (NaN/inf loss)")


def _walls(m: dict) -> str:
    parts = []
    if m.get("scan_wall_seconds") is not None:
        parts.append(f"scan {m['scan_wall_seconds']:.1f} s")
    if m.get("bisect_wall_seconds") is not None:
        parts.append(f"bisection {m['bisect_wall_seconds']:.1f} s")
    if m.get("range_test", {}).get("wall_seconds") is not None:
        parts.append(f"range test {m['range_test']['wall_seconds']:.1f} s")
    return f"wall time: {', '.join(parts)} on {m.get('actors', '?')} actor(s)" if parts else ""


def lr_scan(r: LRResult):
    m = r.meta
    rows = 3 if r.range is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(8.5, 3.3 * rows + 0.6), sharex=True, layout="constrained")
    ax, ax2 = axes[0], axes[1]
    brk, first, best = m.get("breakthrough"), m.get("first_collapse"), m.get("best_gain_lr")
    cmap = plt.get_cmap("viridis")
    for e in range(1, r.epochs + 1):
        c = cmap((e - 1) / max(r.epochs - 1, 1) * 0.85)
        shown = np.where(r.vanished[:, e], FLOOR, np.clip(r.ratio[:, e], FLOOR, None))
        ax.plot(r.lr, shown, color=c, label=f"epoch {e}", **r.style())
        ax2.plot(r.lr, r.gain[:, e], color=c, label=f"epoch {e}", **r.style())
    total = r.acc[:, -1] - r.acc[:, 0]
    ax2.plot(r.lr, total, color="k", lw=1.6, label=f"total ({r.epochs} epochs)", **r.style())
    ax.axhline(m.get("collapse_ratio", 0.1), color="0.4", ls=":", lw=1.2, label=f"collapse threshold {m.get('collapse_ratio', 0.1):g}")
    ax.set_yscale("log")
    plain_log(ax.yaxis)
    if (r.vanished.any() or np.nanmin(r.ratio[:, 1:], initial=1) < FLOOR) if r.epochs else False:
        ax.text(0.99, 0.02, f"on the floor: ratio < {FLOOR:g}, or the gradient vanished (no non-zero entry)",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")
    ax.set_ylabel(f"median |grad| / epoch before\n({m.get('track', '?')})")
    if first is not None:
        for a in (ax, ax2):
            a.axvspan(first, r.lr.max() if len(r.lr) else first, color=DIVERGED, alpha=0.06, lw=0)
    _vline(ax, brk, "C3", f"breakthrough {brk:.3g}" if brk else None)
    noise = m.get("best_gain_noise")
    _vline(ax2, best, "C2", (f"largest accuracy gain {best:.3g}" + (f" (above the noise {noise:.3f})" if noise else ""))
           if best else None)
    _diverged(ax, r)
    ax2.axhline(0, color="0.6", lw=0.8)
    ax2.set_ylabel("accuracy change")
    ax.legend(fontsize=7, loc="lower left", ncols=2)
    ax2.legend(fontsize=7, loc="upper left", ncols=2)
    if r.range is not None:
        ax3 = axes[2]
        rt = m["range_test"]
        ax3.plot(r.range["range_lr"], r.range["range_loss"], color="0.7", lw=0.8, label="mini-batch loss")
        ax3.plot(r.range["range_lr"], r.range["range_smoothed_loss"], color="C0", lw=1.6, label="smoothed loss")
        _vline(ax3, rt.get("suggestion"), "C1", f"steepest descent {rt['suggestion']:.3g}" if rt.get("suggestion") else None)
        ok = np.isfinite(r.range["range_smoothed_loss"])
        if ok.any():  # the divergence tail can be orders of magnitude up: keep the useful part readable
            s = r.range["range_smoothed_loss"][ok]
            ax3.set_ylim(0.9 * np.nanmin(s), min(np.nanmax(s), 4.5 * np.nanmin(s)) * 1.05)
        stop = ", stopped on divergence" if rt.get("stopped_on_divergence") else ""
        ax3.set_ylabel("range test loss")
        ax3.legend(fontsize=7, loc="upper left", title=f"1 run, {rt['steps_run']} steps{stop}", title_fontsize=7)
    _log_x(axes[-1])
    axes[-1].set_xlabel("learning rate")
    method = "bisection" if m.get("method") == "bisect" else "scan"
    partial = f" (partial: {len(r.lr)}/{r.total} rates)" if m.get("status", "complete") != "complete" else ""
    fig.suptitle(f"{m.get('name', 'lr scan')} - learning-rate {method}, {r.epochs} epochs per rate{partial}\n{_walls(m)}", fontsize=10)
    return fig


def median_gradient(r: LRResult):
    """The tracked parameter's median log10|grad| after each epoch, against the learning rate."""
    fig, ax = plt.subplots(figsize=(8.5, 4.2), layout="constrained")
    cmap = plt.get_cmap("viridis")
    for e in range(r.epochs + 1):
        c = "0.3" if e == 0 else cmap((e - 1) / max(r.epochs - 1, 1) * 0.85)
        ax.plot(r.lr, r.median[:, e], color=c, ls="--" if e == 0 else "-", label="initialization" if e == 0 else f"after epoch {e}",
                **r.style())
    _vline(ax, r.meta.get("breakthrough"), "C3", "breakthrough")
    gone = r.vanished.any(axis=1)
    if gone.any():
        ax.plot(r.lr[gone], np.zeros(int(gone.sum())), "v", color="0.35", ms=7, transform=ax.get_xaxis_transform(),
                clip_on=False, label="gradient vanished (no non-zero entry)")
    _diverged(ax, r)
    _log_x(ax)
    ax.set(xlabel="learning rate", ylabel=f"median log10|grad| ({r.meta.get('track', '?')})")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"{r.meta.get('name', 'lr scan')} - median gradient after each epoch", fontsize=10)
    return fig


def figures(g: zarr.Group) -> dict:
    r = LRResult(g)
    if not len(r.lr):
        def empty():
            fig, ax = plt.subplots(figsize=(7, 3))
            ax.text(0.5, 0.5, "no learning rate finished yet", ha="center", va="center")
            ax.set_axis_off()
            return fig

        return {"lr_scan": empty}
    return {"lr_scan": lambda: lr_scan(r), "lr_median_gradient": lambda: median_gradient(r)}

"""Figures of mode-connecting curves.

- `curve` results (1D over t): loss and error along the curve beside the
  straight line between the same endpoints (Garipov et al.'s figure), and the
  ensembles of w1 with phi(t) / with the line's point, when the scan has them.
- `curve_plane` maps: the curve drawn over every contour and heatmap (OVERLAYS),
  the straight line between the endpoints dashed; w1, w2 and the bend theta are
  marked by the slice's checkpoint marks.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from landscape.curves import curve_xy

from .data import Landscape
from .labels import wrap
from .style import OUTLINE, diverged_label, plain_log, title

CURVE, LINE = "C0", "C3"


def draw_curve(ax, ls: Landscape) -> None:
    """OVERLAYS["curve_plane"]: the curve and the straight line between its endpoints, in plane coordinates."""
    info = (ls.meta.get("slice_info") or {}).get("curve")
    if not info:
        return
    pts = np.asarray(info["points"], dtype=np.float64)  # (3, 2): w1, theta, w2
    xy = curve_xy(info["kind"], pts)
    ax.plot(pts[[0, 2], 0], pts[[0, 2], 1], "--", color="0.25", lw=1.2, zorder=4, path_effects=OUTLINE, label="straight line")
    ax.plot(xy[:, 0], xy[:, 1], "-", color="#ff7f0e", lw=2.2, zorder=4, path_effects=OUTLINE, label=f"{info['kind']} curve")
    # (the axes are named by labels.axis_labels: distance along w2 - w1, distance orthogonal to it, towards θ)


def _paired(ax, ls: Landscape, curve: np.ma.MaskedArray, line: np.ma.MaskedArray, ylabel: str, log: bool) -> None:
    ax.plot(ls.x, curve, "-", color=CURVE, lw=1.8, label=f"{ls.meta.get('slice_info', {}).get('curve_kind', '')} curve")
    if line is not None:
        ax.plot(ls.x, line, "--", color=LINE, lw=1.5, label="straight line")
    both = np.ma.concatenate([curve.ravel(), (line if line is not None else curve).ravel()])
    if log and both.count() and float(both.min()) > 0:
        ax.set_yscale("log")
        plain_log(ax.yaxis)
    ax.set(xlabel="t", ylabel=ylabel, xlim=(float(ls.x.min()), float(ls.x.max())))
    cps = ls.meta.get("checkpoints", []) or []
    for cp in cps:
        ax.axvline(cp["x"], color="0.6", ls=":", lw=1)
    if cps:  # w1, w2 (and the chain's bend) named on a top axis
        ax.secondary_xaxis("top").set_xticks([cp["x"] for cp in cps], labels=[cp["label"] for cp in cps])
    ax.grid(alpha=0.3)


def _blank_note(fig, ls: Landscape, arrays) -> None:
    blank = ls.diverged | np.logical_or.reduce([np.ma.getmaskarray(a) & ~ls.unfinished for a in arrays if a is not None])
    notes = []
    if ls.unfinished.any():
        notes.append(f"{int(ls.unfinished.sum())} point(s) not evaluated yet")
    if blank.any():
        notes.append(f"{int(blank.sum())} blank point(s): {diverged_label(ls)}")
    if notes:
        fig.text(0.5, 0.005, "; ".join(notes), ha="center", va="bottom", fontsize=8, color="0.3")


def curve_vs_line(ls: Landscape):
    """Loss and error (1 - accuracy) along the curve and along the straight line, side by side."""
    m = ls.metrics
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    _paired(a1, ls, m["loss"], m.get("line_loss"), "loss (scan data)", log=True)
    has_acc = m["accuracy"].count() > 0
    if has_acc:
        err = lambda a: None if a is None else 100 * (1 - a)  # noqa: E731
        _paired(a2, ls, err(m["accuracy"]), err(m.get("line_accuracy")), "error (%)", log=False)
    else:
        a2.text(0.5, 0.5, "no accuracy (regression)", ha="center", transform=a2.transAxes)
    _paired_test(a1, a2, ls)
    a1.legend(fontsize=8)
    summary = ls.meta.get("curve_summary")
    fig.suptitle(wrap(title(ls), fig.get_figwidth() * 0.9, 10) + (f"\n{summary_text(summary)}" if summary else ""),
                 fontsize=10 if not summary else 9)
    _blank_note(fig, ls, [m["loss"], m.get("line_loss")])
    return fig


def _paired_test(a1, a2, ls: Landscape) -> None:
    """A test split's loss and error along the curve (scans with eval: [train, test]), dotted."""
    m = ls.metrics
    if "test_loss" in m:
        a1.plot(ls.x, m["test_loss"], ":", color=CURVE, lw=1.6, label="curve, test split")
    if "test_accuracy" in m and m["test_accuracy"].count():
        a2.plot(ls.x, 100 * (1 - m["test_accuracy"]), ":", color=CURVE, lw=1.6, label="curve, test split")


def summary_text(summary: dict) -> str:
    """Garipov et al.'s eval_curve summary in one line: length, and each quantity's max and integral over t."""
    q = summary["quantities"]
    parts = [f"length {summary['length']:.3g}"] + [
        f"{name} max {q[name]['max']:.3g} / int {q[name]['integral']:.3g}" for name in ("loss", "error", "test_loss", "test_error")
        if name in q]
    return "; ".join(parts)


def ensemble_figure(ls: Landscape):
    """The ensemble of w1 with phi(t) (curve) and with the line's point at t: error and NLL, beside the single models."""
    m = ls.metrics
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    err = lambda a: None if a is None else 100 * (1 - a)  # noqa: E731
    _paired(a1, ls, err(m["ensemble_accuracy"]), err(m.get("line_ensemble_accuracy")), "error (%)", log=False)
    a1.plot(ls.x, err(m["accuracy"]), ":", color=CURVE, lw=1.1, label="phi(t) alone")
    a1.set_title("ensemble of w1 and the point at t", fontsize=9)
    _paired(a2, ls, m["ensemble_nll"], m.get("line_ensemble_nll"), "ensemble NLL", log=True)
    a1.legend(fontsize=8, labels=["ensemble, curve", "ensemble, straight line", "phi(t) alone"])
    fig.suptitle(wrap(title(ls), fig.get_figwidth() * 0.9, 10), fontsize=10)
    _blank_note(fig, ls, [m["ensemble_nll"], m.get("line_ensemble_nll")])
    return fig


def curve_figures(ls: Landscape) -> dict:
    """FIGURES entry: for curve results, the paired figures replace the per-array line plots (None drops one)."""
    if ls.meta.get("slice_kind") != "curve" or ls.loss.ndim != 1 or ls.finished == 0:
        return {}
    out = {name: None for name in ls.metrics if name.startswith(("line_", "ensemble_"))}
    out["curve"] = lambda: curve_vs_line(ls)
    if "ensemble_accuracy" in ls.metrics:
        out["ensemble"] = lambda: ensemble_figure(ls)
    return out


def history_figure(history: list[dict], name: str):
    """A curve run's training history per epoch: the loss along the curve (each batch at its own t) and at t = 0.5
    (BatchNorm re-estimated there), with the test split's at t = 0.5 when recorded; accuracies likewise."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    epochs = [h["epoch"] for h in history]
    for ax, key, label in ((a1, "loss", "loss"), (a2, "accuracy", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", color=CURVE, ms=3, label="along the curve (training batches)")
        ax.plot(epochs, [h[f"{key}_t05"] for h in history], "s--", color="C2", ms=3, label="at t = 0.5, training data")
        if all(f"test_{key}_t05" in h for h in history):
            ax.plot(epochs, [h[f"test_{key}_t05"] for h in history], "^:", color="C3", ms=3, label="at t = 0.5, test data")
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
    a1.set_yscale("log")
    plain_log(a1.yaxis)
    a1.legend(fontsize=8)
    fig.suptitle(f"train-curve {name}: history", fontsize=10)
    return fig


def plot_history(folder, name: str, fmt: str = "png"):
    """Draw a curve run's history (its curve.json) beside the folder, as <folder>-plots/history.<fmt>; the path."""
    import json
    from pathlib import Path

    folder = Path(folder)
    history = json.loads((folder / "curve.json").read_text())["history"]
    out = folder.parent / f"{folder.name}-plots" / f"history.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = history_figure(history, name)
    try:
        fig.savefig(out, dpi=120)
    finally:
        plt.close(fig)
    return out

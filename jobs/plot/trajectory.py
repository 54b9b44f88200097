"""A training trajectory on its PCA plane: the path on every map, how far each checkpoint is off the
plane, and the checkpoints' own loss and accuracy against the map's value at their projections."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .data import Landscape
from .style import OUTLINE, plain_log, title

PATH_COLOR = "#e8402a"
MAX_ARROWS = 10


def _path(ls: Landscape) -> list[dict]:
    return list((ls.meta.get("slice_info") or {}).get("trajectory") or [])


def path_xy(ls: Landscape) -> tuple[np.ndarray, np.ndarray]:
    """The recorded checkpoint coordinates (x_i, y_i), in training order."""
    path = _path(ls)
    return np.array([p["x"] for p in path], dtype=float), np.array([p["y"] for p in path], dtype=float)


def _arrow_segments(xs: np.ndarray, ys: np.ndarray) -> list[int]:
    """Segments that get a direction arrow: spread evenly along the drawn length, zero-length ones skipped."""
    seg = np.hypot(np.diff(xs), np.diff(ys))  # (n-1,)
    if len(seg) <= MAX_ARROWS:
        return [i for i in range(len(seg)) if seg[i] > 0]
    ends = np.cumsum(seg)
    marks = ends[-1] * (np.arange(MAX_ARROWS) + 0.5) / MAX_ARROWS
    return sorted({int(i) for i in np.searchsorted(ends, marks) if seg[min(i, len(seg) - 1)] > 0})


def draw_path(ax, ls: Landscape) -> None:
    """OVERLAYS["trajectory_pca"]: the projected path, a marker per checkpoint, arrows for its direction.
    (The first and last checkpoint are labelled with the result's checkpoint marks.)"""
    xs, ys = path_xy(ls)
    if not len(xs):
        return
    xlim, ylim = ax.get_xlim(), ax.get_ylim()  # the grid's extent: a path leaving it is clipped, not rescaled
    ax.plot(xs, ys, "-o", color=PATH_COLOR, lw=1.4, ms=4.5, mec="white", mew=0.5, zorder=4,
            path_effects=OUTLINE, label="training path (projected)", gid="trajectory-path")
    for i in _arrow_segments(xs, ys):
        mid = ((xs[i] + xs[i + 1]) / 2, (ys[i] + ys[i + 1]) / 2)
        ax.annotate("", xy=mid, xytext=(xs[i], ys[i]), zorder=4,
                    arrowprops={"arrowstyle": "-|>", "color": PATH_COLOR, "lw": 1.2, "mutation_scale": 11,
                                "shrinkA": 0, "shrinkB": 0})
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    outside = np.count_nonzero((xs < min(xlim)) | (xs > max(xlim)) | (ys < min(ylim)) | (ys > max(ylim)))
    if outside:
        ax.text(0.01, 0.01, f"{outside} checkpoint(s) outside the grid (grid.fit: path covers them)",
                transform=ax.transAxes, fontsize=8, va="bottom", path_effects=OUTLINE)


def _index_axis(ax, path: list[dict]) -> None:
    n = len(path)
    ax.set_xlabel("checkpoint (training order)")
    ax.set_xticks([0, n - 1], labels=[path[0]["label"], path[-1]["label"]])
    ax.set_xlim(-0.5, n - 0.5)


def off_plane_figure(ls: Landscape):
    """Each checkpoint's distance off the plane: absolute (with its distance from the origin) and relative."""
    path = _path(ls)
    idx = np.arange(len(path))
    off = np.array([p["off_plane"] for p in path], dtype=float)
    dist = np.array([p["distance"] for p in path], dtype=float)
    rel = np.array([np.nan if p["off_plane_relative"] is None else p["off_plane_relative"] for p in path], dtype=float)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), sharex=True, layout="constrained")
    top.plot(idx, dist, "-", color="0.55", lw=1.2, label="distance from the origin")
    top.plot(idx, off, "-o", color=PATH_COLOR, ms=3, lw=1.3, label="distance off the plane", gid="off-plane")
    ignored = np.array([p.get("ignored", 0.0) for p in path], dtype=float)
    if ignored.any():  # biasbn: the plane cannot move 1-D parameters; show how much of the gap that is
        top.plot(idx, ignored, ":", color=PATH_COLOR, lw=1.3, gid="off-plane-ignored",
                 label="its part in 1-D parameters the plane ignores (biasbn; parts add in quadrature)")
    top.set_ylabel("Euclidean distance (parameters)")
    top.legend(fontsize=8)
    bottom.plot(idx, 100 * rel, "-o", color=PATH_COLOR, ms=3, lw=1.3, gid="off-plane-relative")
    bottom.set_ylabel("off the plane / distance from origin (%)")
    bottom.set_ylim(0, max(5.0, float(np.nanmax(100 * rel)) * 1.1) if np.isfinite(rel).any() else 5.0)
    _index_axis(bottom, path)
    ratio = (ls.meta.get("slice_info") or {}).get("explained_variance_ratio", [])
    explained = f"; PC1+PC2 explain {100 * sum(ratio):.1f}% of the path's variance" if ratio else ""
    top.set_title(f"{title(ls)}\nhow far each checkpoint lies off the plane{explained}", fontsize=10)
    return fig


def checkpoints_figure(ls: Landscape):
    """The checkpoints' own loss and accuracy against the map's value at their projections."""
    path = _path(ls)
    values = ls.meta.get("trajectory_values") or []
    idx = np.arange(len(values))

    def series(kind, metric):
        return np.array([np.nan if (v.get(kind) or {}).get(metric) is None else v[kind][metric] for v in values], dtype=float)

    panels = [m for m in ("loss", "accuracy") if np.isfinite(series("checkpoint", m)).any()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 3 + 2.6 * len(panels)), sharex=True, layout="constrained",
                             squeeze=False)
    for ax, metric in zip(axes[:, 0], panels):
        own, proj = series("checkpoint", metric), series("projection", metric)
        if metric == "accuracy":  # in %, as every figure shows fractions
            own, proj = 100 * own, 100 * proj
        ax.plot(idx, own, "-o", color="black", ms=3.5, lw=1.3, label="the checkpoint itself", gid=f"checkpoint-{metric}")
        ax.plot(idx, proj, "--s", color=PATH_COLOR, ms=3.5, lw=1.3, label="its projection on the plane (the map there)",
                gid=f"projection-{metric}")
        if metric == "loss" and np.nanmin(np.concatenate([own, proj])) > 0:
            ax.set_yscale("log")
            plain_log(ax.yaxis)
        ax.set_ylabel("accuracy (%)" if metric == "accuracy" else metric)
        ax.legend(fontsize=8)
    _index_axis(axes[-1, 0], path)
    axes[0, 0].set_title(f"{title(ls)}\nhow much the plane lies: the checkpoints against their projections", fontsize=10)
    return fig


def figures(ls: Landscape) -> dict:
    """FIGURES hook: the extra figures of a trajectory_pca result."""
    if ls.meta.get("slice_kind") != "trajectory_pca" or not _path(ls):
        return {}
    out = {"trajectory_off_plane": lambda: off_plane_figure(ls)}
    if ls.meta.get("trajectory_values"):
        out["trajectory_checkpoints"] = lambda: checkpoints_figure(ls)
    return out

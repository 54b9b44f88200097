"""Curvature figures: a `landscape hessian` result's spectrum, and a scan's |min/max| map beside its loss contour."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import zarr

from .data import Landscape
from .maps import contour, heatmap
from .style import metric_norm, title


def _spectrum_title(meta: dict) -> str:
    at = str(meta.get("at", "?"))
    at = at if len(at) <= 60 else "..." + at[-57:]  # long paths: their end says which checkpoint
    return f"{meta.get('name', 'hessian')} at {at} ({meta.get('precision', '?')})"


def _message(meta: dict, text: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, transform=ax.transAxes, wrap=True)
    ax.set_axis_off()
    ax.set_title(_spectrum_title(meta), fontsize=10)
    return fig


def density_figure(g: zarr.Group, meta: dict):
    grid, dens = np.asarray(g["eigenvalue"][...]), np.asarray(g["density"][...])
    if not np.isfinite(dens).any():
        return _message(meta, "density is NaN: Hessian-vector products were not finite at this point")
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    floor = max(float(dens[dens > 0].min()) if (dens > 0).any() else 1e-12, float(dens.max()) * 1e-8)
    ax.semilogy(grid, np.maximum(dens, floor), color="C0", lw=1.3, label="spectral density (SLQ)")
    top = [v for v in meta.get("eigenvalues", []) if np.isfinite(v)]
    for i, v in enumerate(top):
        ax.axvline(v, color="C3", ls="--", lw=0.9, label=f"top-{len(top)} eigenvalues" if i == 0 else None)
    low = meta.get("smallest_eigenvalue")
    if low is not None and np.isfinite(low):
        ax.axvline(low, color="C2", ls=":", lw=1.2, label=f"smallest {low:.3g}")
    ax.set(xlabel="eigenvalue", ylabel="density (log scale)", ylim=(floor, float(dens.max()) * 3))
    from landscape.slq import describe_broadening

    how = describe_broadening(meta["density_sigma"], meta.get("density_negative_mass"), meta.get("density_plotted_negative_mass"))
    sub = f"{meta['spec']['density']['runs']} runs x {meta['density_steps']} Lanczos steps, {how}"
    if meta.get("trace") is not None:
        sub += f"; trace {meta['trace']:.4g} +- {meta['trace_stderr']:.2g}"
    ax.set_title(f"{_spectrum_title(meta)}\n{sub}", fontsize=9)
    ax.legend(fontsize=8, loc="upper center")
    return fig


def top_k_figure(meta: dict):
    vals = np.asarray(meta.get("eigenvalues", []), dtype=float)
    res = np.asarray(meta.get("residuals", []), dtype=float)
    low, low_res = meta.get("smallest_eigenvalue"), meta.get("smallest_residual")
    if not np.isfinite(vals).any():
        return _message(meta, "eigenvalues are NaN: Hessian-vector products were not finite at this point")
    labels = [str(i + 1) for i in range(len(vals))] + ["min"]
    heights = np.append(vals, low)
    errs = np.append(res, low_res)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(labels) + 2.5), 4.5), layout="constrained")
    colors = ["C0"] * len(vals) + ["C2"]
    ax.bar(labels, heights, yerr=np.nan_to_num(errs), color=colors, capsize=3)
    ax.axhline(0, color="0.3", lw=0.8)
    for i, h in enumerate(heights):
        if np.isfinite(h):
            ax.annotate(f"{h:.3g}", (i, h), xytext=(0, 3 if h >= 0 else -10), textcoords="offset points",
                        ha="center", fontsize=8)
    ax.set(xlabel="rank (min: the smallest eigenvalue)", ylabel="Hessian eigenvalue")
    conv = "converged" if meta.get("converged") else "NOT converged"
    ax.set_title(f"{_spectrum_title(meta)}\nLanczos {meta.get('lanczos_steps')} steps, {conv}; error bars: residual bounds",
                 fontsize=9)
    return fig


def spectrum_figures(g: zarr.Group) -> dict:
    """JOBS['hessian']: name -> builder."""
    meta = dict(g.attrs.get("landscape", {}))
    b = {"top_k": lambda: top_k_figure(meta)}
    if "density" in g:
        b["density"] = lambda: density_figure(g, meta)
    if meta.get("blocks"):
        from .blocks import blocks_figure

        b["blocks"] = lambda: blocks_figure(g, meta)
    return b


def unconverged_mask(ls: Landscape, name: str):
    """Points of array `name` (a hessian_* array, or a companion's / split's copy) whose Lanczos did not converge,
    with the tolerance; None when the array is no curvature array."""
    from landscape.hessian import unconverged

    if "hessian_" not in name:
        return None
    residual = ls.metrics.get(name[: name.index("hessian_")] + "hessian_residual")
    tol = ls.meta.get("metric_options", {}).get("hessian", {}).get("tol")
    if residual is None or tol is None:
        return None
    return unconverged(np.ma.filled(residual, np.nan), tol), tol


def mark_unconverged(fig, ls: Landscape, name: str, ax=None):
    """Draw an x on every unconverged point of a curvature map or line (on `ax`, default the figure's first
    axes), and say how many in a legend."""
    found = unconverged_mask(ls, name)
    if found is None:
        return fig
    mask, tol = found
    ax = ax or fig.axes[0]
    n = int(mask.sum())
    label = f"{n} point(s) not converged (residual > tol {tol:g} x |eigenvalue|)"
    if mask.ndim == 2:
        yy, xx = np.nonzero(mask)
        ax.plot(ls.x[xx], ls.y[yy], "x", color="black", ms=5, mew=1.0, zorder=7, label=label)
    else:
        z = np.ma.filled(ls.metrics[name], np.nan)
        ax.plot(ls.x[mask], z[mask], "x", color="red", ms=6, mew=1.2, zorder=7, label=label)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    return fig


def ratio_beside_loss(ls: Landscape) -> dict:
    """FIGURES hook: Li et al.'s Figure 7, |lambda_min / lambda_max| beside the loss contour (planes with the hessian metric)."""
    z = ls.metrics.get("hessian_ratio")
    if z is None or ls.loss.ndim != 2 or not z.count() or not ls.loss.count():
        return {}

    def build():
        x0, x1, y0, y1 = ls.extent
        ratio = (y1 - y0) / (x1 - x0) if x1 > x0 and y1 > y0 else 0.75
        fig, (a, b) = plt.subplots(1, 2, figsize=(13, float(np.clip(5.2 * ratio + 1.6, 3.6, 7))), layout="constrained")
        contour(ls, ax=a)
        heatmap(ls, z, "|min / max| Hessian eigenvalue", metric_norm("hessian_ratio", z), ax=b)
        for ax in (a, b):
            if 1 / 3 <= ratio <= 3:
                ax.set_aspect("equal")
        opts = ls.meta.get("metric_options", {}).get("hessian", {})
        b.set_title(f"{title(ls)}\n|min/max| eigenvalue: Lanczos <= {opts.get('iterations', '?')} steps, "
                    f"tol {opts.get('tol', '?')}, {opts.get('params', 'all')} parameters, BatchNorm eval", fontsize=9)
        return mark_unconverged(fig, ls, "hessian_ratio", ax=b)

    return {"hessian_ratio_map": build}

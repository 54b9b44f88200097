"""Per-block curvature side by side (`landscape hessian --blocks`): top eigenvalue and trace per block, and each
block's spectral density in a panel of its own, on one shared eigenvalue axis."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import zarr


def blocks_figure(g: zarr.Group, meta: dict):
    rows = meta["blocks"]
    names = [r["name"] for r in rows]
    dens = "block_density" in g
    n = len(rows)
    fig = plt.figure(figsize=(max(7.0, 2.2 * n), 7.5 if dens else 4.0), layout="constrained")
    grid = fig.add_gridspec(2 if dens else 1, max(n, 2))
    top = fig.add_subplot(grid[0, :])
    x = np.arange(n)
    lam = np.array([r["top_eigenvalue"] for r in rows], dtype=float)
    tr = np.array([np.nan if r["trace"] is None else r["trace"] for r in rows], dtype=float)
    top.bar(x - 0.2, lam, 0.4, color="C0", label="top eigenvalue")
    if np.isfinite(tr).any():
        err = np.array([0 if r["trace_stderr"] is None else r["trace_stderr"] for r in rows], dtype=float)
        top.bar(x + 0.2, tr, 0.4, yerr=np.nan_to_num(err), color="C1", capsize=3, label="trace (+- standard error)")
    top.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    top.axhline(0, color="0.3", lw=0.8)
    vals = np.r_[lam, tr][np.isfinite(np.r_[lam, tr])]
    if vals.size and (vals > 0).all():
        top.set_yscale("log")
    elif vals.size:  # negative curvature (a saddle's block): symmetric log around 0
        top.set_yscale("symlog", linthresh=max(1e-12, float(np.abs(vals).max()) * 1e-3))
    top.legend(fontsize=8)
    top.set_title(f"{meta.get('name', 'hessian')}: Hessian of each block alone ({meta.get('precision', '?')})", fontsize=10)
    if dens:
        grids, values = np.asarray(g["block_eigenvalue"][...]), np.asarray(g["block_density"][...])
        lo, hi = float(np.nanmin(grids)), float(np.nanmax(grids))
        for i in range(n):
            ax = fig.add_subplot(grid[1, i])
            v = values[i]
            floor = max(float(v[v > 0].min()) if (v > 0).any() else 1e-12, float(np.nanmax(v)) * 1e-8) if np.isfinite(v).any() else 1e-12
            ax.semilogy(grids[i], np.maximum(v, floor), color="C0", lw=1.0)
            ax.axvline(lam[i], color="C3", ls="--", lw=0.8)
            ax.set_xlim(lo, hi)
            ax.set_title(f"{names[i]}\n{rows[i]['parameters']:,} params", fontsize=8)
            ax.set_xlabel("eigenvalue", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_ylabel("density (log)", fontsize=8)
    return fig

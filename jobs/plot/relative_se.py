"""Relative standard errors of a scan's metrics (`<metric>_se` / |<metric>|), for plots and `landscape status`."""

from __future__ import annotations

import numpy as np

from landscape.metrics import se_name


def se_pairs(names) -> list[str]:
    """The metric arrays among `names` that have a standard-error array beside them."""
    names = list(names)
    return [n for n in names if se_name(n) in names]


def relative_se(value: np.ndarray, se: np.ndarray) -> np.ndarray:
    """se / |value|, NaN where either is not finite or the value is 0 (no relative error to speak of)."""
    value, se = np.asarray(value, dtype=np.float64), np.asarray(se, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = se / np.abs(value)
    out[~np.isfinite(out)] = np.nan
    return out


def largest_relative_se(group, names) -> list[str]:
    """One line per metric with standard errors: its largest relative SE over the points stored so far, and where."""
    lines = []
    axes = [np.asarray(group[a][...]) for a in (("y", "x") if "y" in group else ("x",))]
    for name in se_pairs(names):
        rel = relative_se(group[name][...], group[se_name(name)][...])
        if not np.isfinite(rel).any():
            continue
        at = np.unravel_index(np.nanargmax(rel), rel.shape)
        where = ", ".join(f"{a} {float(ax[i]):.4g}" for a, ax, i in zip(("y", "x") if len(axes) == 2 else ("x",), axes, at))
        lines.append(f"largest relative SE of {name} so far: {100 * float(rel[at]):.3g}% (at {where})")
    return lines

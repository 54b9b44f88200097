"""Garipov et al.'s summary of a curve scan: min, max, mean and length-weighted integral of each quantity over t,
and the curve's length (their `eval_curve`).

The integral is the trapezoid rule over the curve's own arc length, normalized by the length: with
dl_i = |phi(t_i) - phi(t_{i-1})| over the parameters (buffers excluded, as their curve weights are the layers'
weights and biases), int = sum_i (v_{i-1} + v_i) / 2 * dl_i / sum_i dl_i; the length is sum_i dl_i (the
polyline through the scanned points: finer grids approach the curve's true length from below).
"""

from __future__ import annotations

import numpy as np
import torch

from .coefmaps import CoefMap


def segment_lengths(t: np.ndarray, coef_map: CoefMap, basis: torch.Tensor, param_mask: torch.Tensor) -> np.ndarray:
    """(M,) dl: 0, then |phi(t_i) - phi(t_{i-1})| over the parameter entries (float64)."""
    c = coef_map(np.asarray(t, dtype=np.float64)[:, None])  # (M, D)
    b = basis[:, param_mask].double()  # (D, P_params)
    dl = np.zeros(len(c))
    for i in range(1, len(c)):
        dl[i] = float(torch.linalg.vector_norm(torch.from_numpy(c[i] - c[i - 1]) @ b))
    return dl


def stats(values: np.ndarray, dl: np.ndarray) -> dict[str, float]:
    """min, max, mean over the points, and the length-weighted integral (NaN where a value is missing)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all() or dl[1:].sum() <= 0:
        return {"min": float(np.nanmin(v)) if np.isfinite(v).any() else float("nan"),
                "max": float(np.nanmax(v)) if np.isfinite(v).any() else float("nan"),
                "mean": float("nan"), "integral": float("nan")}
    integral = float(np.sum(0.5 * (v[:-1] + v[1:]) * dl[1:]) / np.sum(dl[1:]))
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()), "integral": integral}


def curve_summary(t: np.ndarray, arrays: dict[str, np.ndarray], dl: np.ndarray) -> dict:
    """{"length": sum dl, "quantities": {name: stats}}; accuracies are summarized as error (%) = 100 (1 - accuracy),
    named with `error` in place of `accuracy` (their table's columns)."""
    out = {}
    for name, v in arrays.items():
        if "accuracy" in name:
            out[name.replace("accuracy", "error")] = stats(100.0 * (1.0 - np.asarray(v, dtype=np.float64)), dl)
        else:
            out[name] = stats(v, dl)
    return {"length": float(dl.sum()), "points": int(len(t)), "quantities": out}

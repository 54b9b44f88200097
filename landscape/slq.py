"""The Hessian's spectral density by stochastic Lanczos quadrature (SLQ), Gaussian-broadened for plotting.

Each of R runs from a Rademacher vector gives nodes (Ritz values) and weights (the
first components of T's eigenvectors, squared): a quadrature of the spectral measure.
The plotted density replaces each node by a Gaussian of width sigma. Broadening moves
mass across zero, so sigma is chosen (`matched_sigma`) as the largest width, up to
the requested fraction of the nodes' spread, whose mass below zero matches the
quadrature's own to NEGATIVE_MASS_TOL: the plot's share of negative curvature is the
eigenvalues' estimate, not an artefact of the smoothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .spectrum import Operator, StepHook, _start, lanczos, vectors_per_pass

# The plotted mass below zero may differ from the quadrature's by at most this (absolute).
NEGATIVE_MASS_TOL = 0.005
# Nodes within this fraction of max|node| of zero are zero eigenvalues (fp32 products cannot tell their sign).
ZERO_REL = 1e-6
# The broadening never goes below this fraction of the nodes' spread (the even grid, spaced <= sigma, stays
# at most ~1e5 points); where matching would need less, both masses are stated and differ.
SIGMA_FLOOR_REL = 1e-5


@dataclass
class Density:
    """Stochastic Lanczos quadrature: per run, nodes (Ritz values) and weights (first components squared)."""

    nodes: np.ndarray  # (R, m)
    weights: np.ndarray  # (R, m), each row sums to 1
    grid: np.ndarray  # (G,) eigenvalues where the density is given
    values: np.ndarray  # (G,) density, integrates to 1
    sigma: float  # Gaussian broadening
    negative_mass: float = float("nan")  # the quadrature's share of eigenvalues below zero (nodes at 0 count half)
    plotted_negative_mass: float = float("nan")  # the broadened density's mass below zero


def broaden(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """(G,) mean over runs of sum_i w_i N(t; theta_i, sigma^2): a probability density on the grid."""
    z = (grid[None, None, :] - nodes[..., None]) / sigma  # (R, m, G)
    g = np.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))
    return (weights[..., None] * g).sum(1).mean(0)


def negative_mass(nodes: np.ndarray, weights: np.ndarray, sigma: float = 0.0) -> float:
    """Mass below zero: of the quadrature (sigma 0; a node at 0, within ZERO_REL, counts half), or of its
    Gaussian broadening."""
    if sigma == 0:
        zero = np.abs(nodes) <= ZERO_REL * np.abs(nodes).max(axis=1, keepdims=True)
        return float((weights * np.where(zero, 0.5, nodes < 0)).sum(1).mean())
    below = 0.5 * torch.special.erfc(torch.from_numpy(nodes / (sigma * math.sqrt(2)))).numpy()  # P(N(theta, s) < 0)
    return float((weights * below).sum(1).mean())


def matched_sigma(nodes: np.ndarray, weights: np.ndarray, sigma_max: float, sigma_min: float = 0.0) -> float:
    """The largest sigma <= sigma_max (in steps of 0.8x, not below sigma_min) whose broadened mass below zero is
    within NEGATIVE_MASS_TOL of the quadrature's."""
    want, sigma = negative_mass(nodes, weights), sigma_max
    while sigma * 0.8 >= sigma_min and abs(negative_mass(nodes, weights, sigma) - want) > NEGATIVE_MASS_TOL:
        sigma *= 0.8
    return sigma


def describe_broadening(sigma: float, negative: float | None = None, plotted: float | None = None) -> str:
    """One phrase for plots and the CLI: the broadening, and the mass below zero plotted vs the quadrature's."""
    text = f"Gaussian broadening sigma {sigma:.3g}"
    if negative is not None and plotted is not None:
        text += f" (mass below 0: {100 * plotted:.1f}% plotted, {100 * negative:.1f}% of the eigenvalue weight)"
    return text


def density_grid(nodes: np.ndarray, sigma: float, points: int) -> np.ndarray:
    """An even grid over every node +- 6 sigma: `points`, or more where needed to space them at most sigma apart
    (then the trapezoid rule integrates each Gaussian to ~1e-8)."""
    lo, hi = float(nodes.min()) - 6 * sigma, float(nodes.max()) + 6 * sigma
    return np.linspace(lo, hi, max(points, math.ceil((hi - lo) / sigma) + 1))


def spread_of(nodes: np.ndarray) -> float:
    lo, hi = float(nodes.min()), float(nodes.max())
    return hi - lo if hi > lo else max(abs(hi), 1.0)


def spectral_density(
    op: Operator, runs: int, iterations: int, seed: int = 0, sigma_rel: float = 0.01, points: int = 1000,
    batch: int | None = None, on_step: StepHook | None = None,
) -> Density:
    """SLQ from `runs` Rademacher vectors, `iterations` steps each; `batch` runs share each H v pass
    (default: vectors_per_pass). The start vectors are drawn first, the same whatever the batch.
    The broadening is at most sigma_rel x (spread of the nodes), smaller where that is needed for the
    plotted mass below zero to match the quadrature's (`matched_sigma`)."""
    m = max(1, min(iterations, op.size))
    if not op.finite_point:
        return _nan_density(runs, m, points)
    batch = batch or vectors_per_pass(op.device, runs)
    g = torch.Generator().manual_seed(seed)
    start = _start(op.size, g, op.device, rademacher=True, count=runs)  # (runs, P)
    nodes, weights = np.zeros((runs, m)), np.zeros((runs, m))
    for r0 in range(0, runs, batch):
        rows = range(r0, min(r0 + batch, runs))
        run = lanczos(op.matvec, start[rows.start : rows.stop], m, g, keep_basis=False,
                      on_step=(lambda j, r0=r0: on_step("density", r0 * m + j * len(rows), runs * m)) if on_step else None)
        if not run.finite.all():
            return _nan_density(runs, m, points)
        for i, r in enumerate(rows):
            theta, s = run.ritz(i)
            nodes[r], weights[r] = theta, s[0, :] ** 2
    sigma = matched_sigma(nodes, weights, sigma_rel * spread_of(nodes), SIGMA_FLOOR_REL * spread_of(nodes))
    grid = density_grid(nodes, sigma, points)
    return Density(nodes, weights, grid, broaden(nodes, weights, grid, sigma), sigma,
                   negative_mass(nodes, weights), negative_mass(nodes, weights, sigma))


def _nan_density(runs: int, m: int, points: int) -> Density:
    return Density(np.full((runs, m), np.nan), np.full((runs, m), np.nan), np.full(points, np.nan),
                   np.full(points, np.nan), float("nan"))

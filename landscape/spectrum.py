"""Spectra of a symmetric operator from its matrix-vector products alone.

Lanczos with full reorthogonalization (classical Gram-Schmidt, twice) gives the
extreme eigenpairs; a Ritz value's error is bounded by its residual
beta_m |s_mi|, which is what the tolerance is checked against. When the Krylov
space is exhausted (beta ~ 0) Lanczos restarts from a fresh seeded vector
orthogonal to the basis, so repeated eigenvalues are found too once the steps
reach the size of the operator. The same routine run from several Rademacher
vectors (several per pass on GPU) gives the spectral density by stochastic
Lanczos quadrature (`slq.py`); Hutchinson's estimator gives the trace with its
standard error. Lanczos keeps its basis: steps x P x 4 bytes per run.

An operator here has `size` (P), `device`, `finite_point` (False: every answer is
NaN) and `matvec((B, P)) -> (B, P)`; `hessian.HessianOperator` is the one in use.
A run whose products turn non-finite gives NaN results, never an exception.
Random vectors are drawn on the CPU from a seeded generator: the same numbers on
every device and every actor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

# A Lanczos step whose new vector is shorter than this (relative to |H| seen so far) ends a Krylov space.
BREAKDOWN = 1e-6
FP32_EPS = float(np.finfo(np.float32).eps)

StepHook = Callable[[str, int, int], None]  # (phase, done, total): progress of long computations


class Operator(Protocol):
    size: int  # P
    device: torch.device
    finite_point: bool  # False: the answers are NaN without any product

    def matvec(self, v: torch.Tensor) -> torch.Tensor:  # (B, P) -> (B, P)
        ...


# -- Lanczos ------------------------------------------------------------------------------------


@dataclass
class LanczosRun:
    """B independent Lanczos runs of `steps` steps: T_b = tridiag(beta[b, :-1], alpha[b], beta[b, :-1])."""

    alpha: np.ndarray  # (B, m) float64
    beta: np.ndarray  # (B, m) float64; beta[:, -1] is the norm of the next (unused) vector: the residual scale
    basis: torch.Tensor | None  # (B, m, P) orthonormal Lanczos vectors, if kept
    finite: np.ndarray  # (B,) bool: every H v of the run was finite

    @property
    def steps(self) -> int:
        return self.alpha.shape[1]

    def ritz(self, b: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (m,) ascending and the eigenvectors of T (m, m), float64."""
        m = self.steps
        t = np.diag(self.alpha[b])
        if m > 1:
            off = self.beta[b, : m - 1]
            t += np.diag(off, 1) + np.diag(off, -1)
        return np.linalg.eigh(t)

    def residuals(self, theta: np.ndarray, s: np.ndarray, b: int = 0) -> np.ndarray:
        """(m,) bounds of |H y_i - theta_i y_i| for the Ritz pairs: beta_m |s_mi|, but never below the
        products' own rounding (fp32 epsilon x max|theta|), which Lanczos in exact arithmetic ignores."""
        floor = FP32_EPS * float(np.abs(theta).max(initial=0.0))
        return np.maximum(np.abs(self.beta[b, -1] * s[-1, :]), floor)


def lanczos(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    keep_basis: bool = True,
    stop: Callable[[LanczosRun], bool] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> LanczosRun:
    """Lanczos with full reorthogonalization from the rows of `start` (B, P), at most `steps` steps.

    `stop(run_so_far)` is asked after each step (run_so_far has the steps done); a run
    whose H v turns non-finite is marked and its numbers are NaN.
    """
    b, p = start.shape
    steps = max(1, min(steps, p))
    dev = start.device
    basis = torch.zeros(b, steps, p, device=dev)  # (B, m, P)
    alpha = np.zeros((b, steps))
    beta = np.zeros((b, steps))
    finite = np.ones(b, dtype=bool)
    q = start / start.norm(dim=1, keepdim=True)  # (B, P)
    basis[:, 0] = q
    scale = np.zeros(b)  # running |H| estimate per run, for the breakdown test
    done = steps
    for j in range(steps):
        w = matvec(basis[:, j])  # (B, P)
        bad = ~torch.isfinite(w).all(dim=1)
        if bool(bad.any()):
            finite &= ~bad.cpu().numpy()
            w[bad] = 0.0
        a = (w * basis[:, j]).sum(1)  # (B,)
        w -= a[:, None] * basis[:, j]
        if j > 0:
            w -= torch.as_tensor(beta[:, j - 1], dtype=w.dtype, device=dev)[:, None] * basis[:, j - 1]
        for _ in range(2):  # classical Gram-Schmidt twice against every earlier vector
            c = torch.bmm(basis[:, : j + 1], w[:, :, None])  # (B, j+1, 1)
            w -= torch.bmm(basis[:, : j + 1].transpose(1, 2), c)[..., 0]
        nrm = w.norm(dim=1)  # (B,)
        alpha[:, j] = a.double().cpu().numpy()
        beta[:, j] = nrm.double().cpu().numpy()
        scale = np.maximum(scale, np.abs(alpha[:, j]) + beta[:, j])
        if on_step is not None:
            on_step(j + 1)
        # The stopping test solves T (O(m^3)): every step at first, then about 50 times per doubling of m.
        check = stop is not None and (j < 100 or j % max(1, j // 50) == 0 or not finite.all())
        if j == steps - 1 or not finite.any() or (check and stop(_partial(alpha, beta, basis, finite, j + 1))):
            done = j + 1
            break
        for r in range(b):
            if beta[r, j] <= BREAKDOWN * scale[r]:  # Krylov space exhausted: restart orthogonally
                beta[r, j] = 0.0
                fresh = torch.randn(p, generator=generator).to(dev)
                for _ in range(2):
                    fresh -= basis[r, : j + 1].T @ (basis[r, : j + 1] @ fresh)
                w[r] = fresh
                nrm[r] = fresh.norm()
        basis[:, j + 1] = w / nrm[:, None]
    run = _partial(alpha, beta, basis if keep_basis else None, finite, done)
    run.alpha[~finite] = np.nan
    run.beta[~finite] = np.nan
    return run


def _partial(alpha, beta, basis, finite, m) -> LanczosRun:
    return LanczosRun(alpha[:, :m].copy(), beta[:, :m].copy(), None if basis is None else basis[:, :m], finite.copy())


def _start(size: int, generator: torch.Generator, device, rademacher: bool = False, count: int = 1) -> torch.Tensor:
    """(count, P) seeded start vectors, drawn on the CPU (same numbers on every device and actor)."""
    if rademacher:
        v = torch.randint(0, 2, (count, size), generator=generator).float() * 2 - 1
    else:
        v = torch.randn(count, size, generator=generator)
    return v.to(device)


# -- eigenvalues --------------------------------------------------------------------------------


@dataclass
class Eigenpairs:
    """The top-k eigenvalues (largest first) and the smallest, with their residual bounds."""

    values: np.ndarray  # (k,) float64, descending
    residuals: np.ndarray  # (k,) |H y - lambda y| bounds
    smallest: float
    smallest_residual: float
    vectors: torch.Tensor | None  # (k, P) unit eigenvectors of the top-k, if asked
    smallest_vector: torch.Tensor | None  # (P,)
    steps: int
    converged: bool
    tol: float

    @property
    def scale(self) -> float:
        return float(max(abs(self.values[0]), abs(self.smallest))) if len(self.values) else float("nan")

    @property
    def relative_residual(self) -> float:
        """The largest residual of the wanted pairs relative to |H| (checked against tol)."""
        worst = max(float(self.residuals.max(initial=0.0)), self.smallest_residual)
        return worst / self.scale if self.scale > 0 else (0.0 if worst == 0 else float("nan"))

    @property
    def own_relative_residual(self) -> float:
        """The largest residual of the wanted pairs relative to its own eigenvalue: a bound of each reported
        value's relative error (and so of |min/max|'s, about the sum of the two)."""
        vals = np.concatenate([self.values, [self.smallest]])
        res = np.concatenate([self.residuals, [self.smallest_residual]])
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(res == 0, 0.0, res / np.abs(vals))
        return float(rel.max()) if np.isfinite(vals).all() else float("nan")


def _wanted(theta: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest Ritz values (descending), then the smallest."""
    return np.concatenate([np.arange(len(theta) - 1, len(theta) - 1 - k, -1), [0]])


def _converged(run: LanczosRun, k: int, tol: float, size: int, each: bool = False) -> bool:
    """Stop when the run turned non-finite, or all wanted residuals are below tol x max|theta|
    (each: below tol x |its own theta|)."""
    if not run.finite[0]:
        return True
    if run.steps < min(k + 1, size):
        return False
    theta, s = run.ritz()
    wanted = _wanted(theta, min(k, len(theta)))
    res = run.residuals(theta, s)[wanted]
    if each:
        return bool((res <= tol * np.abs(theta[wanted])).all())
    scale = max(abs(theta[0]), abs(theta[-1]))
    return bool(res.max() <= tol * scale) if scale > 0 else True


def _canonical_sign(v: torch.Tensor) -> torch.Tensor:
    """Eigenvectors are defined up to sign: make the entry of largest magnitude positive."""
    i = int(v.abs().argmax())
    return -v if float(v[i]) < 0 else v


def eigenpairs(
    op: Operator,
    top_k: int,
    iterations: int,
    tol: float,
    seed: int = 0,
    vectors: bool = True,
    on_step: StepHook | None = None,
    each: bool = False,
) -> Eigenpairs:
    """The top_k eigenpairs and the smallest eigenvalue by Lanczos (at most `iterations` products).

    Stops early once the residuals of all wanted pairs are below tol x max|eigenvalue| (each: below
    tol x |that eigenvalue|). The residuals reported are the larger of Lanczos' bound beta_m |s_mi| and
    the Ritz vector's measured |H y - theta y| (one more product per pair): in fp32 the bound alone can
    understate the true residual once the basis has lost orthogonality.
    """
    k = top_k
    nan = Eigenpairs(np.full(k, np.nan), np.full(k, np.nan), float("nan"), float("nan"), None, None, 0, False, tol)
    if not op.finite_point:
        return nan
    g = torch.Generator().manual_seed(seed)
    start = _start(op.size, g, op.device)
    run = lanczos(
        op.matvec, start, iterations, g, keep_basis=True,
        stop=lambda r: _converged(r, k, tol, op.size, each),
        on_step=(lambda j: on_step("lanczos", j, iterations)) if on_step else None,
    )
    if not run.finite[0]:
        nan.steps = run.steps
        return nan
    theta, s = run.ritz()
    res = run.residuals(theta, s)
    k_have = min(k, len(theta))
    top = _wanted(theta, k_have)[:-1]
    values = np.full(k, np.nan)
    values[:k_have] = theta[top]
    basis = run.basis[0]  # (m, P)
    pick = np.concatenate([top, [0]])
    y = torch.as_tensor(s[:, pick].T, dtype=basis.dtype, device=basis.device) @ basis  # (k+1, P)
    y = torch.stack([_canonical_sign(r / r.norm()) for r in y])
    hy = op.matvec(y)  # (k+1, P): the measured residuals
    measured = (hy - torch.as_tensor(theta[pick], dtype=y.dtype, device=y.device)[:, None] * y).norm(dim=1)
    res_all = np.maximum(res[pick], measured.double().cpu().numpy())
    residuals = np.full(k, np.nan)
    residuals[:k_have] = res_all[:-1]
    vecs = low = None
    if vectors:
        vecs, low = y[:-1], y[-1]
    out = Eigenpairs(values, residuals, float(theta[0]), float(res_all[-1]), vecs, low, run.steps, False, tol)
    out.converged = bool((out.own_relative_residual if each else out.relative_residual) <= tol) and k_have == k
    return out


# -- trace --------------------------------------------------------------------------------------


@dataclass
class TraceEstimate:
    samples: np.ndarray  # (n,) v^T H v for Rademacher v (float64)

    @property
    def mean(self) -> float:
        return float(self.samples.mean()) if len(self.samples) else float("nan")

    @property
    def stderr(self) -> float:
        """Standard error of the mean (sample std / sqrt(n))."""
        n = len(self.samples)
        return float(self.samples.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


def vectors_per_pass(device: torch.device, wanted: int) -> int:
    """Vectors per H v pass when several are independent (probes, SLQ runs): on CPU one at a time
    (8 per pass measured ~1.8x slower for the digits MLP, BENCHMARKS.md); on GPU up to 8 together."""
    return 1 if torch.device(device).type == "cpu" else max(1, min(wanted, 8))


def hutchinson_trace(
    op: Operator, samples: int, seed: int = 0, batch: int | None = None, tol: float | None = None,
    on_step: StepHook | None = None,
) -> TraceEstimate:
    """tr(H) ~ mean of v^T H v over Rademacher v, `batch` probes per pass (default: vectors_per_pass).

    With `tol`, stops once stderr <= tol x |mean| (after at least 2 passes and 8 probes).
    The probes are the same whatever the batch.
    """
    batch = batch or vectors_per_pass(op.device, samples)
    if not op.finite_point:
        return TraceEstimate(np.full(samples, np.nan))
    g = torch.Generator().manual_seed(seed)
    out: list[float] = []
    while len(out) < samples:
        b = min(batch, samples - len(out))
        v = _start(op.size, g, op.device, rademacher=True, count=b)  # (b, P)
        hv = op.matvec(v)
        out.extend((hv * v).sum(1).double().cpu().tolist())
        if on_step is not None:
            on_step("trace", len(out), samples)
        est = TraceEstimate(np.array(out))
        if not np.isfinite(est.samples).all():
            return TraceEstimate(np.full(len(out), np.nan))
        if tol is not None and len(out) >= max(2 * batch, 8) and est.stderr <= tol * abs(est.mean):
            break
    return TraceEstimate(np.array(out))

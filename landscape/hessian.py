"""The Hessian of a scan's loss at a point, as an operator v -> H v, and the per-point curvature metric.

The Hessian is that of the loss a scan plots: `metrics.loss_terms` summed over
the full batch in data chunks and divided by the evaluator's terms (mean
cross-entropy per sample, MSE per output element), with the model in eval mode
(BatchNorm uses its running statistics, which are constants here), taken with
respect to the parameters only (buffers are not differentiated).

H v is a double backward through `torch.func.functional_call` on a plain model:
per data chunk the gradient is built once with its graph kept (create_graph),
and every H v is then one backward pass through that graph (`retain`): on the
digits MLP 3.3x faster than `torch.func.jvp(grad)` and 1.6-2.7x faster than a
fresh double backward per product (BENCHMARKS.md). When the kept graphs would
not fit the memory budget, each product rebuilds the gradient chunk by chunk
instead. The spectra (Lanczos, trace, density) are in `spectrum.py`.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call

from .errors import SpecError
from .evaluator import Evaluator
from .metrics import PointMetric, loss_terms
from .param_select import as_patterns
from .params import StateLayout
from .plan import EvalOptions, budget_bytes
from .problem import ScanProblem
from .slices import Slice
from .spectrum import eigenpairs

# Kept graphs of all chunks may use at most this share of the device's memory budget.
RETAIN_SHARE = 0.5


# -- H v ----------------------------------------------------------------------------------------


class HessianOperator:
    """v -> H v for the scan's loss at one point, over the full batch in data chunks.

    params: {name: tensor} the parameters at the point (their order is the flat order of
    vectors); buffers: {name: tensor} the float buffers at the point (constants).
    """

    def __init__(
        self,
        model: nn.Module,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        inputs: torch.Tensor,
        targets: torch.Tensor,
        loss: str,
        terms: int,
        chunk: int,
        retain: bool = True,
    ):
        self.model = model.eval()  # BatchNorm: running statistics; dropout off
        self.names = list(params)
        self.shapes = [tuple(p.shape) for p in params.values()]
        self.flat = torch.cat([p.detach().reshape(-1).float() for p in params.values()]).requires_grad_()  # (P,)
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        self.inputs, self.targets, self.loss, self.terms = inputs, targets, loss, terms
        n = len(inputs)
        self.chunks = [(s, min(s + chunk, n)) for s in range(0, n, max(1, chunk))]
        self.retain = retain
        self.products = 0  # H v products computed (a batch of B vectors counts B)
        self._graphs: list[torch.Tensor | None] | None = None
        self.finite_point = bool(torch.isfinite(self.flat).all()) and all(
            bool(torch.isfinite(b).all()) for b in self.buffers.values() if b.is_floating_point()
        )

    @property
    def size(self) -> int:
        return self.flat.numel()

    @property
    def device(self) -> torch.device:
        return self.flat.device

    def _state(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(flat, [math.prod(s) for s in self.shapes])
        return {**{n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes)}, **self.buffers}

    def chunk_loss(self, flat: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """This chunk's share of the mean loss (a scalar): its summed loss terms / all terms."""
        out = functional_call(self.model, self._state(flat), (self.inputs[start:stop],)).float()  # (n, C)
        return loss_terms(out[None], self.targets[start:stop], self.loss)[0][0] / self.terms

    def _gradient_graph(self, start: int, stop: int) -> torch.Tensor | None:
        """(P,) gradient of a chunk's share, with its graph (None: the gradient does not depend on the point)."""
        with torch.enable_grad():
            (g,) = torch.autograd.grad(self.chunk_loss(self.flat, start, stop), self.flat, create_graph=True)
        return g if g.requires_grad else None

    def gradient(self) -> torch.Tensor:
        """(P,) gradient of the loss at the point."""
        total = torch.zeros_like(self.flat, requires_grad=False)
        for s, e in self.chunks:
            with torch.enable_grad():
                (g,) = torch.autograd.grad(self.chunk_loss(self.flat, s, e), self.flat)
            total += g
        return total

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """(B, P) -> (B, P): H v for each row (fp32 on the point's device)."""
        b = len(v)
        self.products += b
        if self.retain and self._graphs is None:
            self._graphs = [self._gradient_graph(s, e) for s, e in self.chunks]
        out = torch.zeros_like(v)
        for c, (s, e) in enumerate(self.chunks):
            g = self._graphs[c] if self.retain else self._gradient_graph(s, e)
            if g is None:  # the loss is linear in the parameters on this chunk: H = 0 there
                continue
            if b == 1:
                (hv,) = torch.autograd.grad(g, self.flat, grad_outputs=v[0], retain_graph=self.retain)
                out[0] += hv
            else:
                (hv,) = torch.autograd.grad(g, self.flat, grad_outputs=v, retain_graph=self.retain, is_grads_batched=True)
                out += hv  # (B, P)
        return out

    def release(self) -> None:
        """Drop the kept graphs (the next product rebuilds them)."""
        self._graphs = None


def graph_bytes_per_sample(op: HessianOperator) -> int:
    """Bytes the kept double-backward graph takes per sample, measured on 2 and 4 samples."""
    sizes = []
    for n in (2, 4):
        n = min(n, len(op.inputs))
        held = [0]

        def pack(t):
            held[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad():
            (g,) = torch.autograd.grad(op.chunk_loss(op.flat, 0, n), op.flat, create_graph=True)
            del g
        sizes.append((n, held[0]))
    (n1, b1), (n2, b2) = sizes
    per = (b2 - b1) / (n2 - n1) if n2 > n1 else b1 / max(n1, 1)
    return max(int(per), 1)


def plan_operator(op: HessianOperator, device: torch.device) -> None:
    """Keep the graphs of all chunks when they fit in RETAIN_SHARE of the device's budget."""
    need = graph_bytes_per_sample(op) * len(op.inputs)
    op.retain = need <= RETAIN_SHARE * budget_bytes(device)


def point_evaluator(model_factory, layout: StateLayout, point: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor,
                    loss: str, options: EvalOptions | None = None, device=None) -> Evaluator:
    """An evaluator of one point (coefficient 0 of a zero direction): the data on the device, the
    chunking and the loss normalization exactly as a scan's (`landscape hessian`, `hessian_plane`)."""
    sl = Slice("point", layout, point.float(), torch.zeros(1, layout.size))
    options = replace(options or EvalOptions(), shortcut=False, points_per_pass=1, expected_points=1)
    return Evaluator(ScanProblem(model_factory, sl, inputs, targets, loss, options), device=device)


def operator_at(evaluator, model: nn.Module, coefs, chunk: int | None = None, retain: bool | None = None) -> HessianOperator:
    """The Hessian of the evaluator's loss at slice coefficients `coefs` (D,), on `model` (a plain copy).

    The state comes from `evaluator.state_at` (fp32, on its device), the data and the loss
    normalization from the evaluator: the curvature of exactly what the scan plots. For the
    Hessian of some tensors only (Li et al.'s weights), restrict it: blocks.RestrictedOperator.
    """
    state = evaluator.state_at(coefs)
    param_names = {n for n, _ in model.named_parameters()}
    params = {e.name: state[e.name] for e in evaluator.layout.entries if e.name in param_names}
    buffers = {k: v for k, v in state.items() if k not in param_names}
    op = HessianOperator(
        model, params, buffers, evaluator.inputs, evaluator.targets, evaluator.loss, evaluator.terms_per_point,
        chunk or evaluator.plan.data_chunk,
    )
    if retain is None:
        plan_operator(op, evaluator.device)
    else:
        op.retain = retain
    return op


# -- per-point metric ---------------------------------------------------------------------------


class HessianExtremes(PointMetric):
    """Per grid point: the largest and smallest Hessian eigenvalue and |min/max| (Li et al.'s Figure 7).

    Lanczos from the same seeded start vector at every point (so a value does not depend
    on which actor computed it), at most `iterations` H v products, stopping once each
    extreme's residual is below tol x |that eigenvalue| (so the ratio's relative error is
    at most about 2 tol); `hessian_residual` is the larger of the two residuals relative
    to its own eigenvalue, each the larger of Lanczos' bound and the measured |H y - theta y|
    (above tol: the iterations ran out first; plots mark those points).
    """

    names = ("hessian_max", "hessian_min", "hessian_ratio", "hessian_residual")

    def __init__(self, iterations: int = 100, tol: float = 1e-3, seed: int = 0, data_chunk: int | None = None,
                 params: list[str] | str | None = None):
        self.iterations, self.tol, self.seed, self.data_chunk = iterations, tol, seed, data_chunk
        self.params = as_patterns(params)  # globs (or weights): the Hessian of those tensors only (Li et al.: weights)

    def bind(self, evaluator) -> None:
        if evaluator.dtype != torch.float32:
            raise SpecError(
                f"metrics: hessian needs precision fp32 or tf32, not {evaluator.precision} "
                "(second derivatives in bf16 keep about 2 digits)"
            )
        if evaluator.recompute_bn:
            raise SpecError("metrics: hessian uses BatchNorm in eval mode; it cannot be combined with batchnorm: recompute")
        # A plain copy: the evaluator's own model is bound to a flat vector without
        # gradients and may have its first layer replaced by the shortcut.
        self.model = evaluator.problem.model_factory().to(evaluator.device).eval()
        self._retain: bool | None = None

    def compute(self, evaluator, coefs: torch.Tensor) -> dict[str, float]:
        full = op = operator_at(evaluator, self.model, coefs.detach().cpu(), self.data_chunk, self._retain)
        if self._retain is None and op.finite_point:  # measured once per evaluator
            self._retain = op.retain
        if self.params:
            from .blocks import RestrictedOperator
            from .param_select import select

            op = RestrictedOperator.of(full, select(evaluator.layout, self.params, "hessian.params"))
        try:
            e = eigenpairs(op, 1, self.iterations, self.tol, self.seed, vectors=False, each=True)
        except torch.OutOfMemoryError:
            if not full.retain:
                raise  # the evaluator's own path: smaller data chunks, rebuilt
            full.release()  # the kept graphs did not fit after all: rebuild them per product from now on
            self._retain = full.retain = False
            e = eigenpairs(op, 1, self.iterations, self.tol, self.seed, vectors=False, each=True)
        hi, lo = float(e.values[0]), e.smallest
        ratio = abs(lo / hi) if hi != 0 else float("nan")
        return {"hessian_max": hi, "hessian_min": lo, "hessian_ratio": ratio, "hessian_residual": e.own_relative_residual}


def unconverged_summary(residual, tol: float) -> str:
    """One line: how many computed points of a curvature map did not converge."""
    import numpy as np

    r = np.asarray(residual, dtype=np.float64)
    n, done = int(unconverged(r, tol).sum()), int(np.isfinite(r).sum())
    return (f"hessian: {n} of {done} computed point(s) did not converge (residual > tol {tol:g} x |eigenvalue|; "
            "marked x in the plots; raise hessian.iterations)" if n else
            f"hessian: all {done} computed point(s) converged (residual <= tol {tol:g} x |eigenvalue|)")


def unconverged(residual, tol: float):
    """Boolean mask of the points whose Lanczos did not reach the tolerance (NaN: not computed, not counted)."""
    import numpy as np

    r = np.asarray(residual, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return r > tol

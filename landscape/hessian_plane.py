"""The plane of the top two Hessian eigenvectors at a point, instead of random directions.

Directions are the unit eigenvectors of the two largest eigenvalues (parameters
only: buffers, e.g. BatchNorm statistics, stay at the center's), optionally
rescaled by Li et al.'s filter/layer/weight normalization. The eigenvalues,
their residuals and how Lanczos ended are recorded in `slice.info`.
"""

from __future__ import annotations

import torch

from .directions import Ignore, Normalization, normalize_direction
from .blocks import RestrictedOperator
from .errors import SpecError
from .hessian import operator_at, point_evaluator
from .param_select import entry_mask, keep_only, select
from .params import StateLayout
from .plan import EvalOptions
from .precision import matmul_mode
from .slices import Slice
from .spectrum import StepHook, eigenpairs


def in_layout(vectors: torch.Tensor, layout: StateLayout) -> torch.Tensor:
    """(k, P_params) vectors over the parameters -> (k, P) over the flat state, zero on buffers."""
    out = torch.zeros(len(vectors), layout.size, dtype=vectors.dtype)
    out[:, layout.param_mask()] = vectors.cpu()
    return out


def hessian_plane(
    model_factory,
    layout: StateLayout,
    center: torch.Tensor,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss: str,
    *,
    iterations: int = 100,
    tol: float = 1e-5,
    seed: int = 0,
    normalization: Normalization = "none",
    ignore: Ignore = "biasbn",
    options: EvalOptions | None = None,
    device=None,
    on_step: StepHook | None = None,
    params: list[str] | None = None,
) -> Slice:
    """Origin `center` (P,), directions the top two Hessian eigenvectors of the scan's loss there
    (with `params`: of the Hessian of those tensors only, its block; zero elsewhere)."""
    ev = point_evaluator(model_factory, layout, center, inputs, targets, loss, options, device)
    model = model_factory().to(ev.device).eval()
    op = full = operator_at(ev, model, [0.0])
    chosen = select(layout, params, "slice.params") if params else None
    if chosen:
        op = RestrictedOperator.of(full, chosen)
    if op.size < 2:
        raise SpecError(f"slice: hessian_plane needs a model with at least 2 parameters; this one has {op.size}")
    with matmul_mode(ev.precision):
        e = eigenpairs(op, 2, iterations, tol, seed, vectors=True, on_step=on_step)
    if e.vectors is None:
        raise SpecError(
            "slice: the Hessian at the checkpoint is not finite (an H v product gave NaN or inf: weights that overflow, or a "
            "loss that is not twice differentiable there); no hessian_plane can be built"
        )
    vectors = op.expand(e.vectors) if op is not full else e.vectors
    dirs = in_layout(vectors.float(), layout)  # (2, P)
    if normalization != "none":
        dirs = torch.stack([normalize_direction(d, center, layout, normalization, ignore) for d in dirs])
        if chosen:  # ignore: none sets 1-D entries to the weights (Li et al.): keep those of the block only
            dirs = keep_only(dirs, entry_mask(layout, chosen))
        if not bool(torch.any(dirs != 0)):
            raise SpecError("slice: the normalized eigenvectors are all zeros (only 1-D parameters); set slice.ignore: none")
    info = {
        "eigenvalues": [float(v) for v in e.values],
        "residuals": [float(r) for r in e.residuals],
        "lanczos_steps": e.steps,
        "converged": e.converged,
        "relative_residual": e.relative_residual,
        "tol": tol,
        "normalization": normalization,
        "ignore": ignore if normalization != "none" else None,
        "batchnorm": "eval mode (running statistics of the center, not differentiated)",
        "precision": ev.precision,
        "x_label": f"eigenvector 1 (eigenvalue {float(e.values[0]):.4g})",
        "y_label": f"eigenvector 2 (eigenvalue {float(e.values[1]):.4g})",
    }
    return Slice("hessian_plane", layout, center.clone().float(), dirs, [{"label": "center", "x": 0.0, "y": 0.0}], info=info)

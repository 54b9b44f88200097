"""The `hessian_plane` slice of a scan: the top two Hessian eigenvectors at its checkpoint (computed on this machine)."""

from __future__ import annotations

import torch

from landscape.hessian_plane import hessian_plane
from landscape.params import StateLayout, non_float_state
from landscape.plan import EvalOptions

from ..common.build import load_checked, load_data, record_params
from ..common.report import StepPrinter, say


def build_hessian_plane(spec, factory, notes: list[str], data=None):
    """The scan's hessian_plane slice and its checkpoint's non-float state (`data`: (inputs, targets) if loaded)."""
    model = factory()
    layout = StateLayout.of(model)
    state = load_checked(spec.slice.checkpoint, model, spec.allow_nonfinite, notes)
    sl = hessian_plane_of(spec, factory, layout, layout.flatten(state), data or load_data(spec.data), notes)
    record_params(sl, spec.slice.params)
    return sl, non_float_state(state)


def hessian_plane_of(spec, factory, layout: StateLayout, center: torch.Tensor, data, notes: list[str]):
    """The scan's hessian_plane slice at its checkpoint (computed on this machine, fp32 unless tf32)."""
    s = spec.slice
    inputs, targets = data
    precision = "tf32" if spec.precision == "tf32" else "fp32"  # bf16 scans still get an fp32 plane
    say(f"hessian_plane: top two Hessian eigenvectors at {s.checkpoint} (Lanczos, at most {s.iterations} steps)")
    sl = hessian_plane(
        factory, layout, center, inputs, targets, spec.loss, iterations=s.iterations, tol=s.tol, seed=s.seed,
        normalization=s.normalization, ignore=s.ignore, params=s.params, options=EvalOptions(precision=precision, data_chunk=spec.data_chunk),
        on_step=StepPrinter("hessian_plane"),
    )
    info = sl.info
    notes.append(
        f"hessian_plane: eigenvalues {info['eigenvalues'][0]:.6g} (x) and {info['eigenvalues'][1]:.6g} (y) "
        f"after {info['lanczos_steps']} Lanczos steps"
    )
    if not info["converged"]:
        notes.append(
            f"hessian_plane: Lanczos did not converge in {s.iterations} steps (relative residual "
            f"{info['relative_residual']:.2g} > tol {s.tol:g}); the directions are approximate eigenvectors: raise slice.iterations"
        )
    return sl

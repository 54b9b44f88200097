"""`landscape hessian --blocks auto|GLOB...`: the top eigenvalue, trace and density of each block's Hessian.

A block's Hessian is the diagonal block of the full one (landscape/blocks.py):
`auto` takes one block per layer, each GLOB (or `weights`) one block of the
tensors it matches. The spectra reuse the spec's eigen/trace/density options,
with the same seeds for every block; the result gets arrays over a `block` axis
and meta["blocks"] (names, tensors, sizes, numbers), and a figure draws the
blocks side by side.
"""

from __future__ import annotations

import numpy as np

from cluster.store import ArrayDef
from landscape.blocks import RestrictedOperator, auto_blocks
from landscape.param_select import select
from landscape.params import StateLayout
from landscape.slq import spectral_density
from landscape.spectrum import eigenpairs, hutchinson_trace


def choose_blocks(patterns: list[str], layout: StateLayout) -> dict[str, list[str]]:
    """{block name: its parameter tensors}: `auto` (one per layer) or one block per pattern."""
    if patterns == ["auto"]:
        return auto_blocks([e.name for e in layout.entries if e.is_param])
    return {p: select(layout, [p], "blocks") for p in patterns}


def compute_blocks(spec, op, layout: StateLayout, on_step=None) -> tuple[list[ArrayDef], list[dict]]:
    """Per block: top eigenvalue (Lanczos), trace (Hutchinson) and density (SLQ) of its Hessian."""
    blocks = choose_blocks(spec.blocks, layout)
    rows, densities = [], []
    for name, tensors in blocks.items():
        rop = RestrictedOperator.of(op, tensors)
        e = eigenpairs(rop, 1, spec.eigen.iterations, spec.eigen.tol, spec.eigen.seed, vectors=False, on_step=on_step)
        row = {"name": name, "tensors": tensors, "parameters": rop.size, "top_eigenvalue": float(e.values[0]),
               "smallest_eigenvalue": e.smallest, "lanczos_steps": e.steps, "converged": e.converged,
               "relative_residual": e.relative_residual, "trace": None, "trace_stderr": None}
        if spec.trace is not None:
            t = spec.trace
            tr = hutchinson_trace(rop, t.samples, t.seed, t.batch, t.tol, on_step=on_step)
            row.update(trace=tr.mean, trace_stderr=tr.stderr)
        if spec.density is not None:
            s = spec.density
            d = spectral_density(rop, s.runs, s.iterations, s.seed, s.sigma, s.points, on_step=on_step)
            densities.append((d.grid, d.values))
            row["density_sigma"] = d.sigma
        rows.append(row)
    arrays = [
        ArrayDef("block", ("block",), data=np.arange(len(rows)), dtype="int64",
                 attrs={"description": "block index; names and tensors in meta['blocks']"}),
        ArrayDef("block_top_eigenvalue", ("block",), data=np.array([r["top_eigenvalue"] for r in rows]), dtype="float64",
                 attrs={"description": "largest eigenvalue of the block's Hessian (the diagonal block of the full Hessian)"}),
        ArrayDef("block_trace", ("block",), data=np.array([np.nan if r["trace"] is None else r["trace"] for r in rows]),
                 dtype="float64", attrs={"description": "trace of the block's Hessian (Hutchinson; NaN: skipped)"}),
    ]
    if densities:  # each block's grid is as fine as its broadening needs: rows padded with NaN to the longest
        arrays += [
            ArrayDef("block_eigenvalue", ("block", "block_point"), data=_padded([g for g, _ in densities]), dtype="float64",
                     attrs={"description": "each block's density grid (NaN past the block's own points)"}),
            ArrayDef("block_density", ("block", "block_point"), data=_padded([v for _, v in densities]), dtype="float64",
                     attrs={"description": "each block's spectral density (SLQ), integrates to 1 (NaN past its points)"}),
        ]
    return arrays, rows


def _padded(rows: list[np.ndarray]) -> np.ndarray:
    """(len(rows), longest) with each row's values first, NaN after."""
    out = np.full((len(rows), max(len(r) for r in rows)), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def block_lines(rows: list[dict]) -> list[str]:
    """What `landscape hessian` prints per block."""
    out = ["  blocks (Hessian of each block alone: the diagonal blocks of the full Hessian):"]
    for r in rows:
        tr = "" if r["trace"] is None else f", trace {r['trace']:.6g} +- {r['trace_stderr']:.3g}"
        out.append(f"    {r['name']}: {r['parameters']:,} parameters in {len(r['tensors'])} tensor(s), "
                   f"top eigenvalue {r['top_eigenvalue']:.6g}{tr}")
    return out

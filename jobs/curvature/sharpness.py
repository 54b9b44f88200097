"""`landscape sharpness SPEC`: the sharpness numbers people compare, at a checkpoint or a grid point of a result.

The top Hessian eigenvalue (Lanczos), the trace (Hutchinson, with its standard
error), Keskar et al.'s epsilon-sharpness and Kwon et al.'s adaptive sharpness
(landscape/sharpness.py), all of the scan's loss (full batch, BatchNorm in eval
mode), optionally restricted to `params:`. One small result (job "sharpness"):
the numbers in its meta, the two ascents' losses per step as arrays.
"""

from __future__ import annotations

import time

import numpy as np

from cluster.store import ArrayDef, ResultWriter
from landscape.hessian import operator_at, point_evaluator
from landscape.param_select import select, vector_mask
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.precision import matmul_mode
from landscape.sharpness import adaptive_sharpness, epsilon_sharpness, loss_and_gradient
from landscape.spectrum import eigenpairs, hutchinson_trace

from ..common.report import StepPrinter, say
from .hessian import BATCHNORM_NOTE, check_device, resolve_point, trace_meta
from ..specs.sharpness import SharpnessSpec
from ..specs.subset_rule import former_identities


def compute(spec: SharpnessSpec, point, inputs, targets, factory, device) -> tuple[list[ArrayDef], dict]:
    layout = StateLayout.of(factory())
    ev = point_evaluator(factory, layout, layout.flatten(point.state), inputs, targets, point.loss,
                         EvalOptions(precision=spec.precision, data_chunk=spec.data_chunk), device)
    op = operator_at(ev, factory().to(ev.device).eval(), [0.0], spec.data_chunk)
    chosen = select(layout, spec.params, "params") if spec.params else None
    mask = vector_mask(op.names, op.shapes, chosen).to(op.device).float() if chosen else None
    target = op
    if chosen:
        from landscape.blocks import RestrictedOperator

        target = RestrictedOperator.of(op, chosen)  # curvature of the chosen tensors alone
    f, x = loss_and_gradient(op), op.flat.detach()
    progress = StepPrinter(f"sharpness {spec.name}")
    t0 = time.perf_counter()
    with matmul_mode(spec.precision):
        e = eigenpairs(target, 1, spec.eigen.iterations, spec.eigen.tol, spec.eigen.seed, vectors=False, on_step=progress)
        tr = None
        if spec.trace is not None:
            t = spec.trace
            tr = hutchinson_trace(target, t.samples, t.seed, t.batch, t.tol, on_step=progress)
        phi, box = epsilon_sharpness(f, x, spec.epsilon, spec.ascent.steps, mask, spec.ascent.seed)
        adaptive, ball = adaptive_sharpness(f, x, spec.rho, spec.eta, spec.ascent.steps, mask, spec.ascent.seed)
    meta = {
        "name": spec.name,
        "spec": spec.model_dump(mode="json"),
        "at": spec.at.describe(),
        "loss_kind": point.loss,
        "parameters": int(target.size),
        "params": spec.params,
        "tensors": chosen or list(op.names),
        "point_loss": box.base,
        "top_eigenvalue": float(e.values[0]),
        "top_eigenvalue_residual": e.relative_residual,
        "lanczos_steps": e.steps,
        "converged": e.converged,
        **trace_meta(tr),
        "epsilon": spec.epsilon,
        "epsilon_sharpness": phi,
        "epsilon_max_loss": box.best,
        "rho": spec.rho,
        "eta": spec.eta,
        "adaptive_sharpness": adaptive,
        "adaptive_max_loss": ball.best,
        "ascent_steps": spec.ascent.steps,
        "seconds": time.perf_counter() - t0,
        "precision": spec.precision,
        "device": str(ev.device),
        "batchnorm": BATCHNORM_NOTE,
        "notes": list(point.notes),
    }
    arrays = [
        ArrayDef("epsilon_ascent_loss", ("step",), data=np.array(box.losses), dtype="float64",
                 attrs={"description": "loss after each step of the box ascent (step 0: the first-order maximizer)"}),
        ArrayDef("adaptive_ascent_loss", ("step",), data=np.array(ball.losses), dtype="float64",
                 attrs={"description": "loss after each step of the adaptive (ball) ascent"}),
    ]
    return arrays, meta


def summary_lines(meta: dict) -> list[str]:
    lines = [
        f"sharpness {meta['name']!r} at {meta['at']}: {meta['parameters']:,} parameters, loss {meta['point_loss']:.6g}",
        f"  top Hessian eigenvalue: {meta['top_eigenvalue']:.6g} ({meta['lanczos_steps']} Lanczos steps, "
        + ("converged)" if meta["converged"] else "NOT converged)"),
    ]
    if meta.get("trace") is not None:
        lines.append(f"  trace: {meta['trace']:.6g} +- {meta['trace_stderr']:.3g} ({meta['trace_probes']} Rademacher probes)")
    lines += [
        f"  epsilon-sharpness (Keskar et al., epsilon {meta['epsilon']:g}): {meta['epsilon_sharpness']:.6g} % "
        f"(max loss {meta['epsilon_max_loss']:.6g})",
        f"  adaptive sharpness (Kwon et al., rho {meta['rho']:g}, eta {meta['eta']:g}): {meta['adaptive_sharpness']:.6g} "
        f"(max loss {meta['adaptive_max_loss']:.6g})",
    ]
    return lines


def run_sharpness(spec: SharpnessSpec, *, out: str | None = None, overwrite: bool = False, device: str | None = None,
                  trust_factories: bool = False) -> str:
    from ..common.provenance import point_provenance
    from ..common.report import versions

    url = str(out or spec.output or f"results/{spec.name}.zarr")
    dev = check_device(device)
    point, inputs, targets, factory, _ = resolve_point(spec, trust_factories)  # bad input fails here, before anything is written
    if spec.params:
        select(StateLayout.of(factory()), spec.params, "params")
    with ResultWriter(url, identity=spec.identity(point.result_identity), overwrite=overwrite,
                      command=f"landscape sharpness {spec.name}", what="sharpness",
                      provenance=point_provenance(spec, point, dev),
                      former=former_identities(lambda: spec.identity(point.result_identity))) as w:
        if w.store is not None and w.store.meta.get("status") == "complete":
            say(f"{url} is already complete; nothing to compute")
            meta = w.store.meta
            w.finish()
        else:
            t0 = time.monotonic()
            arrays, meta = compute(spec, point, inputs, targets, factory, dev)
            meta["versions"] = versions()
            if w.store is None:
                w.create(arrays, meta)
            else:
                for a in arrays:
                    w.store.group[a.name][...] = a.data
                w.resume(**meta)
            w.finish(wall_seconds=time.monotonic() - t0)
    for line in summary_lines(meta):
        print(line)
    print(f"result: {url}")
    return url


def check_sharpness(spec: SharpnessSpec, trust_factories: bool = False) -> str:
    """`landscape validate`: the point exists and fits, params choose something."""
    _, inputs, _, factory, _ = resolve_point(spec, trust_factories)
    if spec.params:
        select(StateLayout.of(factory()), spec.params, "params")
    return f"valid sharpness spec {spec.name!r} at {spec.at.describe()}, {len(inputs)} samples"

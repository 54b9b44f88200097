"""`landscape hessian SPEC`: the Hessian's spectrum at a checkpoint or at a grid point of a result.

Top-k eigenpairs and the smallest eigenvalue (Lanczos), the trace (Hutchinson,
with its standard error) and the spectral density (stochastic Lanczos
quadrature), printed, saved as a Zarr result (job "hessian") and plotted. The
`hessian_plane` slice of scans is in plane.py. The math is `landscape.hessian` and
`landscape.spectrum`; this module resolves the point, runs it on this machine's
device and writes the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from cluster.store import ArrayDef, ResultStore, ResultWriter
from landscape.errors import ResultError, SpecError
from landscape.hessian import operator_at, point_evaluator
from landscape.hessian_plane import in_layout
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.precision import matmul_mode
from landscape.problem import default_device
from landscape.slq import Density, describe_broadening, spectral_density
from landscape.spectrum import Eigenpairs, TraceEstimate, eigenpairs, hutchinson_trace

from ..common.build import check_prepared, load_checked, prepare
from ..common.report import StepPrinter, plot_and_say, say, versions
from ..specs import DataSpec, ModelSpec
from ..specs.hessian import HessianSpec
from ..specs.subset_rule import former_identities
from .blocks import block_lines, compute_blocks

BATCHNORM_NOTE = "eval mode: BatchNorm uses the point's running statistics, constants of the Hessian (parameters only)"


# -- landscape hessian ---------------------------------------------------------------------------------


@dataclass
class Point:
    """Where the Hessian is taken, resolved: what to build and the weights there."""

    model: ModelSpec
    data: DataSpec
    loss: str
    state: dict[str, torch.Tensor]
    result_identity: str | None = None
    notes: list[str] = field(default_factory=list)


def _result_spec(url: str) -> tuple[dict, str]:
    meta = ResultStore.open(url).meta
    if meta.get("job", "scan") != "scan" or "spec" not in meta:
        raise SpecError(f"at.result {url!r} is a {meta.get('job')} result, not a scan's; give a scan's result or a checkpoint")
    return meta, meta.get("identity")


def check_recorded_code(spec: HessianSpec, meta: dict, trust_factories: bool) -> None:
    """SpecError unless the user consents to running the `kind: import` factories recorded in the
    result at.result (where the spec does not give its own model: or data:): a result can come from
    anyone, and its factories are code."""
    recorded = meta.get("spec") or {}
    code = [f"{part}.factory {(recorded.get(part) or {}).get('factory')!r}" for part in ("model", "data")
            if getattr(spec, part) is None and isinstance(recorded.get(part), dict) and recorded[part].get("kind") == "import"]
    if code and not trust_factories:
        raise SpecError(
            f"at.result {spec.at.result!r} records code to run ({', '.join(code)}, kind: import); a result can come from "
            "anyone: read that code, then pass --trust-factories to run it, or give model: and data: in the spec"
        )


def trace_meta(tr: TraceEstimate | None) -> dict:
    """The Hutchinson trace as hessian and sharpness results record it (None where it was skipped)."""
    return {"trace": tr.mean if tr is not None else None, "trace_stderr": tr.stderr if tr is not None else None,
            "trace_probes": len(tr.samples) if tr is not None else None}


def check_same_samples(url: str, meta: dict) -> None:
    """SpecError if the scan at `url` sampled its data `subset` by the earlier rule: its data spec would now give
    other samples, so the curvature would not be at the scan's loss."""
    from ..specs import ScanSpec

    try:
        scan = ScanSpec.model_validate(meta["spec"])
    except Exception:  # a result of an older spec format: its identity cannot be recomputed; nothing to compare
        return
    if meta.get("identity") in former_identities(scan.identity):
        raise SpecError(
            f"at.result {url!r} was scanned before the one subset rule: its data.subset now keeps other samples "
            "(stratified by class), so the curvature would not be at the scan's loss; run the scan again, or give "
            "data: in this spec to use the new samples knowingly"
        )


def resolve_point(spec: HessianSpec, trust_factories: bool = False):
    """(Point, inputs, targets, factory, model) with every input checked; nothing is written."""
    at = spec.at
    meta, result_identity = (_result_spec(at.result) if at.result is not None else ({}, None))
    check_recorded_code(spec, meta, trust_factories)
    from pydantic import TypeAdapter

    model_spec = spec.model or ModelSpec.model_validate(meta["spec"]["model"])
    if spec.data is None:
        check_same_samples(at.result, meta)
    data_spec = spec.data or TypeAdapter(DataSpec).validate_python(meta["spec"]["data"])
    loss = spec.loss or meta.get("loss_kind", "cross_entropy")
    prepared = prepare(data_spec, model_spec)  # as a scan sizes the model: the data set's classes, integer inputs
    check_prepared(prepared, loss)
    inputs, targets, factory, notes = prepared.inputs, prepared.targets, prepared.factory, prepared.notes
    model = factory()
    if at.checkpoint is not None:
        state = load_checked(at.checkpoint, model, spec.allow_nonfinite, notes)
    else:
        from ..scan.point import point_state

        state = point_state(at.result, at.x, at.y, at.extrapolate)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ResultError(
                f"the weights of {at.result} do not fit model {model_spec.kind}: {str(e).splitlines()[0]}; "
                "drop model: to use the result's"
            ) from None
    n = parameter_count(model)
    if spec.top_k > n:
        raise SpecError(f"top_k {spec.top_k} is more than the model's {n:,} parameters; ask for at most {n:,}")
    return Point(model_spec, data_spec, loss, state, result_identity, notes), inputs, targets, factory, model


def check_device(name: str | None) -> torch.device:
    """--device: a torch device this machine has (default: cuda if available, else cpu)."""
    if name is None:
        return default_device()
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SpecError(f"--device {name!r} is not a torch device; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"--device {name}: this machine has no CUDA device; use cpu")
    if dev.type not in ("cpu", "cuda"):
        raise SpecError(f"--device {name}: use cpu or cuda")
    return dev


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def broadening(meta: dict) -> str:
    return describe_broadening(meta["density_sigma"], meta.get("density_negative_mass"), meta.get("density_plotted_negative_mass"))


def _arrays(layout: StateLayout, e: Eigenpairs, trace: TraceEstimate | None, density: Density | None) -> list[ArrayDef]:
    k, p = len(e.values), layout.size
    chunk = min(p, 1 << 20)
    vectors = in_layout(e.vectors, layout).numpy() if e.vectors is not None else np.full((k, p), np.nan, np.float32)
    low = in_layout(e.smallest_vector[None], layout).numpy()[0] if e.smallest_vector is not None else np.full(p, np.nan, np.float32)
    arrays = [
        ArrayDef("eigen", ("eigen",), data=np.arange(1, k + 1), dtype="int64", attrs={"description": "rank: 1 = largest"}),
        ArrayDef("eigenvalues", ("eigen",), data=e.values, dtype="float64", attrs={"description": "top-k Hessian eigenvalues, largest first"}),
        ArrayDef("residuals", ("eigen",), data=e.residuals, dtype="float64",
                 attrs={"description": "|H v - lambda v| bound of each eigenpair (Lanczos)"}),
        ArrayDef("eigenvectors", ("eigen", "param"), data=vectors, dtype="float32", chunks=(1, chunk),
                 attrs={"description": "unit eigenvectors over the flat state (layout in attributes); 0 on buffers"}),
        ArrayDef("smallest_eigenvector", ("param",), data=low, dtype="float32", chunks=(chunk,)),
    ]
    if trace is not None:
        arrays.append(ArrayDef("trace_samples", ("probe",), data=trace.samples, dtype="float64",
                               attrs={"description": "v^T H v for each Rademacher probe v (their mean is the trace)"}))
    if density is not None:
        arrays += [
            ArrayDef("eigenvalue", ("eigenvalue",), data=density.grid, dtype="float64"),
            ArrayDef("density", ("eigenvalue",), data=density.values, dtype="float64",
                     attrs={"description": "spectral density (stochastic Lanczos quadrature, Gaussian broadening); integrates to 1"}),
            ArrayDef("slq_nodes", ("run", "node"), data=density.nodes, dtype="float64"),
            ArrayDef("slq_weights", ("run", "node"), data=density.weights, dtype="float64"),
        ]
    return arrays


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def summary_lines(meta: dict) -> list[str]:
    """What `landscape hessian` prints (also for a result computed earlier)."""
    lines = [
        f"hessian {meta['name']!r} at {meta['at']}: {meta['parameters']:,} parameters, {meta['data']['samples']:,} samples, "
        f"loss {_fmt(meta['point_loss'])}" + (f", accuracy {meta['point_accuracy']:.4f}" if meta.get("point_accuracy") is not None else ""),
        "  top-{} eigenvalues: {}".format(len(meta["eigenvalues"]), ", ".join(_fmt(v) for v in meta["eigenvalues"])),
        f"  smallest eigenvalue: {_fmt(meta['smallest_eigenvalue'])}",
        f"  Lanczos: {meta['lanczos_steps']} steps, " + ("converged" if meta["converged"] else "NOT converged")
        + f" (largest residual {meta['relative_residual']:.2g} x max|eigenvalue|, tol {meta['spec']['eigen']['tol']:g})",
    ]
    if meta.get("trace") is not None:
        lines.append(f"  trace: {_fmt(meta['trace'])} +- {meta['trace_stderr']:.3g} (standard error, {meta['trace_probes']} Rademacher probes)")
    if meta.get("density_sigma") is not None:
        d = meta["spec"]["density"]
        lines.append(f"  density: {d['runs']} SLQ runs x {meta['density_steps']} steps, {broadening(meta)}")
    if meta.get("blocks"):
        lines += block_lines(meta["blocks"])
    lines.append(
        f"  gradient norm {_fmt(meta['gradient_norm'])}; {meta['hvp_products']:,} H v products in {meta['hvp_seconds']:.1f} s "
        f"({meta['hvp_per_second']:,.1f}/s, {meta['precision']}, {meta['device']}); BatchNorm in eval mode"
    )
    return lines


def compute(spec: HessianSpec, point: Point, inputs, targets, factory, device: torch.device) -> tuple[list[ArrayDef], dict]:
    """Every number of the result: (arrays, meta)."""
    model = factory()
    layout = StateLayout.of(model)
    n_params = parameter_count(model)
    notes = list(point.notes)
    for what, it in (("eigen", spec.eigen.iterations), ("density", spec.density.iterations if spec.density else 0)):
        if it > n_params:
            notes.append(f"{what}.iterations {it} is more than the {n_params:,} parameters: Lanczos stops at {n_params:,} steps")
    ev = point_evaluator(factory, layout, layout.flatten(point.state), inputs, targets, point.loss,
                         EvalOptions(precision=spec.precision, data_chunk=spec.data_chunk), device)
    at_point = ev.evaluate(np.zeros((1, 1)))
    op = operator_at(ev, factory().to(ev.device).eval(), [0.0], spec.data_chunk)
    progress = StepPrinter(f"hessian {spec.name}")
    t0 = time.perf_counter()
    with matmul_mode(spec.precision):
        e = eigenpairs(op, spec.top_k, spec.eigen.iterations, spec.eigen.tol, spec.eigen.seed, on_step=progress)
        tr = d = None
        if spec.trace is not None:
            t = spec.trace
            tr = hutchinson_trace(op, t.samples, t.seed, t.batch, t.tol, on_step=progress)
        if spec.density is not None:
            s = spec.density
            d = spectral_density(op, s.runs, s.iterations, s.seed, s.sigma, s.points, on_step=progress)
        grad = op.gradient() if op.finite_point else torch.full((op.size,), float("nan"))
        blocks = compute_blocks(spec, op, layout, progress) if spec.blocks else None
    seconds = time.perf_counter() - t0
    finite = bool(np.isfinite(e.values).all() and (tr is None or np.isfinite(tr.mean)))
    if not finite:
        notes.append("Hessian-vector products at this point are not finite (NaN or inf: overflowing weights, or a loss that is "
                     "not twice differentiable here): the eigenvalues, trace and density are recorded as NaN")
    acc = float(at_point["accuracy"][0])
    meta = {
        "name": spec.name,
        "spec": spec.model_dump(mode="json"),
        "at": spec.at.describe(),
        "loss_kind": point.loss,
        "model": point.model.model_dump(mode="json"),
        "data": {"samples": len(inputs), "input_shape": list(inputs.shape[1:]), "spec": point.data.model_dump(mode="json")},
        "parameters": n_params,
        "layout": layout.to_json(),
        "point_loss": float(at_point["loss"][0]),
        "point_accuracy": None if np.isnan(acc) else acc,
        "eigenvalues": [float(v) for v in e.values],
        "residuals": [float(v) for v in e.residuals],
        "smallest_eigenvalue": e.smallest,
        "smallest_residual": e.smallest_residual,
        "lanczos_steps": e.steps,
        "converged": e.converged,
        "relative_residual": e.relative_residual,
        **trace_meta(tr),
        "density_sigma": d.sigma if d is not None else None,
        "density_negative_mass": d.negative_mass if d is not None else None,
        "density_plotted_negative_mass": d.plotted_negative_mass if d is not None else None,
        "density_steps": d.nodes.shape[1] if d is not None else None,
        "gradient_norm": float(grad.norm()),
        "finite": finite,
        "hvp_products": op.products,
        "hvp_seconds": seconds,
        "hvp_per_second": op.products / seconds if seconds > 0 else float("nan"),
        "hvp_graph_kept": op.retain,
        "data_chunk": op.chunks[0][1] - op.chunks[0][0],
        "precision": spec.precision,
        "device": str(ev.device),
        "batchnorm": BATCHNORM_NOTE,
        "notes": notes,
    }
    if blocks is not None:
        meta["blocks"] = blocks[1]
    return _arrays(layout, e, tr, d) + (blocks[0] if blocks else []), meta


def default_output(spec: HessianSpec) -> str:
    return spec.output or f"results/{spec.name}.zarr"


def run_hessian(spec: HessianSpec, *, out: str | None = None, overwrite: bool = False, plot: bool = True,
                fmt: str = "png", device: str | None = None, trust_factories: bool = False) -> str:
    """Compute (or find already computed) the spectrum at the spec's point; returns the result's path or URL."""
    url = str(out or default_output(spec))
    dev = check_device(device)
    point, inputs, targets, factory, model = resolve_point(spec, trust_factories)  # bad input fails here, before anything is written
    identity = spec.identity(point.result_identity)
    from ..common.provenance import point_provenance

    with ResultWriter(url, identity=identity, overwrite=overwrite, command=f"landscape hessian {spec.name}", what="hessian",
                      resumable=False, provenance=point_provenance(spec, point, dev),  # an unfinished result is computed again
                      former=former_identities(lambda: spec.identity(point.result_identity))) as w:
        if w.store is not None and w.store.meta.get("status") == "complete":
            say(f"{url} is already complete; nothing to compute")
            meta = w.store.meta
            w.finish()
        else:
            say(f"hessian {spec.name!r} at {spec.at.describe()} -> {url}")
            t0 = time.monotonic()
            arrays, meta = compute(spec, point, inputs, targets, factory, dev)
            for note in meta["notes"]:
                say(f"note: {note}")
            meta["versions"] = versions()
            w.create(arrays, meta)
            w.finish(wall_seconds=time.monotonic() - t0)
    for line in summary_lines(meta):
        print(line)
    print(f"result: {url}")
    if plot:
        plot_and_say(url, spec.name, fmt)
    return url


def check_hessian(spec: HessianSpec, trust_factories: bool = False) -> str:
    """`landscape validate`: the point exists and fits, k fits the parameters."""
    _, inputs, _, _, _ = resolve_point(spec, trust_factories)
    return f"valid hessian spec {spec.name!r}: top-{spec.top_k} at {spec.at.describe()}, {len(inputs)} samples"

"""Turn grid coordinates into losses and accuracies on the full-batch data.

A plain class, no Ray: the cluster layer wraps it in an actor. The data sit on
the device for the evaluator's lifetime; a tile's coordinates go to the device
once and its results come back once (no host round trip per point). Per pass it
evaluates K grid points together (vmap over the stacked parameter sets) or one
at a time, starts from the first-layer shortcut when it fits, and on CUDA
replays the whole pass as a CUDA graph. See `plan.py` for how K and the data
chunk are chosen.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from .batchnorm import recompute_batchnorm
from .cuda_graph import capture_graph
from .head import ClassMajorLinear, output_layer
from .metrics import OutputMetric, PointMetric, build_metrics
from .plan import ACTIVATION_FACTOR, EvalOptions, EvalPlan, allow_recompiles, make_plan, widest_output_elements
from .precision import PRECISIONS, compute_dtype, matmul_mode
from .problem import ScanProblem, default_device
from .sequential import SAMPLES, chunks_by_step, evaluate_sequentially, stratified_order
from .shortcut import (
    PrecomputedLayer,
    first_layer,
    layer_basis,
    layer_input,
    swap_module,
)
from .slices import points_on_slice, support_of


class Evaluator:
    """Holds the model and the full-batch data on one device; evaluates grid points."""

    def __init__(self, problem: ScanProblem, device: str | torch.device | None = None, options: EvalOptions | None = None):
        self.device = torch.device(device) if device is not None else default_device()
        self._problem = problem
        self.options = options or problem.options
        self.precision = self.options.precision
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        self.dtype = compute_dtype(self.precision)
        self.loss = problem.loss
        self.layout = problem.slice.layout
        self.coef_map = problem.slice.coef_map
        self.origin = problem.slice.origin.to(self.device)  # (P,) fp32
        self.directions = problem.slice.directions.to(self.device)  # (D, P) fp32
        self.n = len(problem.inputs)
        self.samples_seen: int | torch.Tensor = self.n  # what output metrics divide by (sequential.py: per point)
        self.model = problem.model_factory().to(self.device).eval()  # eval: BatchNorm uses running stats
        self._names = [e.name for e in self.layout.entries]
        self._batchnorms = [
            m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]
        self.plan = self._make_plan(problem)
        self.sequential = problem.sequential
        # Sequential evaluation takes the data in one fixed, seeded order (sequential.py).
        self._order = stratified_order(problem.targets, self.sequential.seed) if self.sequential else slice(None)
        inputs, targets = self._device_inputs(problem.inputs[self._order]), problem.targets[self._order]
        if self.plan.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.inputs = self._compute(inputs)
        self.targets = targets.to(self.device)
        self.recompute_bn = self.options.batchnorm == "recompute" and bool(self._batchnorms)
        if self.recompute_bn:
            bn = problem.bn_inputs if problem.bn_inputs is not None else problem.inputs
            self._bn_batches = [self._compute(b.to(self.device)) for b in bn.split(self.options.batchnorm_batch)]
        self.skip: set[str] = set()  # state entries the shortcut replaces
        self.shortcut: PrecomputedLayer | None = None
        self._chunks, self.step_chunks = chunks_by_step(self.n, self.plan.data_chunk, self.sequential)
        self._bases: list[list[torch.Tensor]] = []
        if self.plan.shortcut:
            with matmul_mode(self.precision):  # fp32 means no TF32 here too
                self._install_shortcut(inputs)  # from the fp32 data, also for bf16 scans
        if self.plan.class_major_head:
            self._install_class_major_head()
        self._bind_flat_state()
        self._run_model = self.model
        if self.plan.compile:
            # Fuses BatchNorm/ReLU/residual adds and autotunes convolutions; the
            # parameters stay inputs of the compiled code, so loading a point in place works.
            mode = "max-autotune-no-cudagraphs" if self.device.type == "cuda" else None  # CPU: default, autotuning GEMMs is slow
            allow_recompiles()
            self._run_model = torch.compile(self.model, mode=mode, dynamic=False)
        self._compiled_ok = False
        self._graph = None
        self._support: list[int] | None = None  # directions with nonzero coefficients in this pass (None: all)
        metrics = build_metrics(problem.metrics, problem.metric_options)
        self.output_metrics: list[OutputMetric] = [m for m in metrics if isinstance(m, OutputMetric)]
        self.point_metrics: list[PointMetric] = [m for m in metrics if isinstance(m, PointMetric)]
        for m in metrics:
            m.bind(self)
        self.metric_names = [n for m in metrics for n in m.names] + ([SAMPLES] if self.sequential is not None else [])
        # Companion paths (a curve's straight line) share the pass machinery; their arrays are prefixed.
        self.companions = dict(problem.slice.companions)
        self._companion_names = [f"{c}_{n}" for c in self.companions for n in self.metric_names]
        self.metric_names += self._companion_names
        if self.plan.points_per_pass > 1:
            why = self._vmap_problem()
            if why:  # e.g. data-dependent control flow on the weights: one point per pass instead, recorded in the plan
                self.__init__(problem, self.device, replace(self.options, points_per_pass=1))
                self.plan = replace(self.plan, vmap_fallback=why)

    # -- setup ---------------------------------------------------------------
    def _device_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The data on the device, float32 (token ids stay integer), channels-last if the plan says so."""
        x = x.to(self.device)
        x = x.float() if x.is_floating_point() else x
        return x.contiguous(memory_format=torch.channels_last) if self.plan.channels_last else x

    def _compute(self, x: torch.Tensor) -> torch.Tensor:
        """Float data in the compute dtype; integer data (token ids) as they are."""
        return x.float().to(self.dtype) if x.is_floating_point() else x

    @torch.no_grad()
    def _vmap_problem(self) -> str | None:
        """None if K points per pass go through vmap on the first data chunk, else why not (one line)."""
        s, e = self._chunks[0]
        if self.shortcut is not None:
            self.shortcut.basis = self._bases[0]
        try:
            with matmul_mode(self.precision):
                self._forward(self._state(torch.zeros(2, self.directions.shape[0], device=self.device)), self.inputs[s:e])
        except torch.OutOfMemoryError:
            raise
        except Exception as err:  # vmap raises RuntimeError, ValueError, NotImplementedError... for what it cannot batch
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            return f"vmap does not apply to this model ({type(err).__name__}: {first}); one point per pass"
        return None

    def _make_plan(self, problem: ScanProblem) -> EvalPlan:
        sample = problem.inputs[:2].to(self.device)
        widest = widest_output_elements(self.model, sample)
        per_sample = ACTIVATION_FACTOR * widest * torch.finfo(self.dtype).bits // 8
        self._first = first_layer(self.model, sample)
        self._last = output_layer(self.model, sample)
        with torch.no_grad():
            out = self.model(sample)
        # MSE averages over every output element, cross-entropy over labels (one per sample, or per token).
        labels = 1 if problem.targets.is_floating_point() else problem.targets[0].numel()
        self.predictions = self.n * labels  # what accuracy divides by
        self.terms_per_point = self.n * out[0].numel() if self.loss == "mse" else self.predictions
        shortcut_per_sample = None
        if self._first is not None:
            with torch.no_grad():
                z = self.model.get_submodule(self._first)(layer_input(self.model, self._first, sample))
            shortcut_per_sample = (self.directions.shape[0] + 1) * (z[0].numel()) * 4  # fp32
        has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in self.model.modules())
        image = problem.inputs.dim() == 4
        options = self.options
        if options.batchnorm == "recompute" and self._batchnorms:
            # Train-mode passes over whole batches through the real first layer, one
            # point at a time; BatchNorm's in-place updates stay outside graphs and compile.
            options = replace(options, points_per_pass=1, shortcut=False, cuda_graphs=False, compile=False)
        return make_plan(options, self.device, self.n, per_sample, shortcut_per_sample, has_conv, image)

    @torch.no_grad()
    def _install_shortcut(self, inputs: torch.Tensor) -> None:
        """Precompute the first layer's outputs for the origin and each direction, per chunk."""
        name = self._first
        self._shortcut_layer = self.model.get_submodule(name)
        prefix = name + "."
        self.skip = {k for k in self._names if k.startswith(prefix) and "." not in k[len(prefix) :]}
        self._bases = self._shortcut_bases(inputs)
        self.shortcut = PrecomputedLayer(self.directions.shape[0], self.dtype).to(self.device)
        swap_module(self.model, name, self.shortcut)
        self._shortcut_key = prefix + "coef"

    def _shortcut_bases(self, inputs: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per data chunk, the first layer's outputs for the origin and each direction (fp32)."""
        n = len(self._first) + 1
        states = [{k[n:]: v for k, v in self.layout.unflatten(vec).items() if k in self.skip}
                  for vec in [self.origin, *self.directions]]
        return [layer_basis(self._shortcut_layer, layer_input(self.model, self._first, inputs[s:e]), states)
                for s, e in self._chunks]

    @torch.no_grad()
    def set_slice(self, sl) -> None:
        """Evaluate another basis of the same layout and size (an animation's next frame) with everything else kept:
        the model, the data on the device, compiled code and CUDA graphs."""
        if sl.layout.size != self.layout.size or sl.directions.shape != self.directions.shape:
            raise ValueError(f"set_slice: the slice must keep the layout and the {self.directions.shape[0]} directions")
        self._problem = replace(self._problem, slice=sl)  # what a rebuild (out of memory, compile failure) uses
        if self._graph is None:  # on a CPU these are the slice's own tensors (.to is no copy): never write into them
            self.origin, self.directions = sl.origin.to(self.device), sl.directions.to(self.device)
        else:  # a CUDA graph replays on these addresses (device copies, ours)
            self.origin.copy_(sl.origin)
            self.directions.copy_(sl.directions)
        self.coef_map, self.companions = sl.coef_map, dict(sl.companions)
        if self.shortcut is not None:
            with matmul_mode(self.precision):
                fresh = self._shortcut_bases(self._device_inputs(self._problem.inputs[self._order]))
            for o, b in zip(sum(self._bases, []), sum(fresh, [])):  # the evaluator's own tensors, in place for the graph
                o.copy_(b)
        for m in self.output_metrics + self.point_metrics:
            m.bind(self)  # what a metric precomputed from the slice (an ensemble's reference point)

    def _install_class_major_head(self) -> None:
        """Swap the model's output Linear for its class-major twin (head.py), if it has one the shortcut left."""
        name = self._last
        if name is None or (name == self._first and self.shortcut is not None):
            self.plan = replace(self.plan, class_major_head=False)
            return
        swap_module(self.model, name, ClassMajorLinear(self.model.get_submodule(name)))

    def _bind_flat_state(self) -> None:
        """Make the model's float state views of one flat vector.

        With K = 1 a grid point is then loaded by one fused op into that vector
        and the model runs as is: no per-tensor copies, no functional_call.
        """
        self._point = torch.empty(1, self.layout.size, device=self.device)  # fp32 point
        self._flat = self._point[0] if self.dtype == torch.float32 else torch.empty_like(self._point[0], dtype=self.dtype)
        for name, view in self.layout.unflatten(self._flat).items():
            if name in self.skip:
                continue
            owner, _, leaf = name.rpartition(".")
            mod = self.model.get_submodule(owner)
            if leaf in mod._parameters:
                mod._parameters[leaf] = nn.Parameter(view, requires_grad=False)
            else:
                mod._buffers[leaf] = view

    def _load_point(self, coefs: torch.Tensor) -> None:
        """Load one grid point (1, D) into the model's own state."""
        points_on_slice(self.origin, self.directions, coefs, out=self._point, support=self._support)
        if self._flat.data_ptr() != self._point.data_ptr():
            self._flat.copy_(self._point[0])
        if self.shortcut is not None:
            self.shortcut.coef.copy_(coefs[0])
        if self.recompute_bn:
            recompute_batchnorm(self.model, self._batchnorms, self._bn_batches)

    # -- one pass over the data for K points ---------------------------------------
    def _state(self, coefs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batched state dict (K, *shape) in the compute dtype for coefficients (K, D)."""
        vec = points_on_slice(self.origin, self.directions, coefs, support=self._support).to(self.dtype)
        parts = torch.split(vec, [e.numel for e in self.layout.entries], dim=1)
        state = {
            e.name: p.view(len(coefs), *e.shape) for e, p in zip(self.layout.entries, parts) if e.name not in self.skip
        }
        if self.shortcut is not None:
            state[self._shortcut_key] = coefs
        return state

    def _forward(self, state: dict[str, torch.Tensor] | None, x: torch.Tensor) -> torch.Tensor:
        if state is None:  # K = 1: the point is loaded into the model itself
            return self._run_model(x)[None]
        return vmap(lambda st: functional_call(self.model, st, (x,)), in_dims=(0,), randomness="error")(state)

    def _sums(self, coefs: torch.Tensor, into: list[torch.Tensor] | None = None, chunks=None, loaded=False) -> list[torch.Tensor]:
        """Every output metric's (K,) accumulators over all the data (or the data `chunks`, indices), float64 on the device.

        `into`: zeroed (K,) tensors to accumulate in (views of the call's results), else new ones.
        `loaded`: K = 1 and this point is loaded already (sequential evaluation's next step).
        """
        k = len(coefs)
        if k == 1 and not loaded:
            self._load_point(coefs)
        state = None if k == 1 else self._state(coefs)
        flat = into or [
            torch.zeros(k, dtype=torch.float64, device=self.device) for m in self.output_metrics for _ in range(m.accumulators)
        ]
        accs, i = [], 0
        for m in self.output_metrics:
            accs.append(flat[i : i + m.accumulators])
            i += m.accumulators
        for c in range(len(self._chunks)) if chunks is None else chunks:
            s, e = self._chunks[c]
            if self.shortcut is not None:
                self.shortcut.basis = self._bases[c]
            out = self._forward(state, self.inputs[s:e]).float()  # (K, n, C)
            for m, acc in zip(self.output_metrics, accs):
                m.accumulate(acc, out, self.targets[s:e], s, e)
        return flat

    def finish_metrics(self, sums: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every output metric's arrays from its summed accumulators (in `output_metrics` order)."""
        results, i = {}, 0
        for om in self.output_metrics:
            results.update(om.finish(sums[i : i + om.accumulators], self))
            i += om.accumulators
        return results

    def _graphed(self):
        """One pass for K points as a CUDA graph, captured once: (graph, its input coefs (K, D), its outputs)."""
        if self._graph is None:
            self._graph = capture_graph(self._sums, self.plan.points_per_pass, self.directions.shape[0], self.device)
        return self._graph

    # -- public ------------------------------------------------------------------------
    @property
    def dims(self) -> int:
        """Coordinates per grid point (the slice's; its coefficient map turns them into D coefficients)."""
        return self.coef_map.grid_dims

    @property
    def problem(self) -> ScanProblem:
        return self._problem

    def describe(self) -> dict:
        """The plan this evaluator runs with (recorded in the result)."""
        return {
            "device": str(self.device), "precision": self.precision, "batchnorm": "recompute" if self.recompute_bn else "eval",
            **self.plan.describe(),
        }

    def state_at(self, coefs) -> dict[str, torch.Tensor]:
        """The full float state {name: tensor} (fp32, on the device) at coefficients `coefs` (D,)."""
        c = torch.as_tensor(np.asarray(coefs, dtype=np.float64), dtype=torch.float32, device=self.device).reshape(1, -1)
        return dict(self.layout.unflatten(points_on_slice(self.origin, self.directions, c)[0]))

    @torch.no_grad()
    def outputs_at(self, coefs) -> torch.Tensor:
        """(N, C) fp32 model outputs on all the data at coefficients `coefs` (D,), exactly as a pass of one point
        computes them (same loading, BatchNorm recompute, shortcut and chunks): metrics precompute references here."""
        c = torch.as_tensor(np.asarray(coefs, dtype=np.float64), dtype=torch.float32, device=self.device).reshape(1, -1)
        outs = []
        with matmul_mode(self.precision):
            self._load_point(c)
            for i, (s, e) in enumerate(self._chunks):
                if self.shortcut is not None:
                    self.shortcut.basis = self._bases[i]
                outs.append(self._run_model(self.inputs[s:e]).float())  # (n, C)
        return torch.cat(outs)

    def evaluate(self, coords: np.ndarray) -> dict[str, np.ndarray]:
        """coords (M, dims) grid coordinates -> {metric array name: (M,) float32}.

        Out of device memory despite the plan (another process took some): halve
        the points per pass, then the data chunk, rebuild and go on.
        """
        while True:
            try:
                coords = np.asarray(coords, dtype=np.float64).reshape(-1, self.dims)
                out = self._evaluate(self.coef_map(coords))
                for name, cmap in self.companions.items():
                    out.update({f"{name}_{k}": v for k, v in self._evaluate(cmap(coords)).items()})
                self._compiled_ok = True
                return out
            except torch.OutOfMemoryError:
                k, chunk = self.plan.points_per_pass, self.plan.data_chunk
                if k == 1 and chunk == 1:
                    raise
                smaller = {"points_per_pass": k // 2} if k > 1 else {"points_per_pass": 1, "data_chunk": (chunk + 1) // 2}
                options = replace(self.options, **smaller)
                self._graph = self._bases = self.inputs = None  # free before rebuilding
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.__init__(self._problem, self.device, options)
            except Exception as e:
                if not self.plan.compile or self._compiled_ok:
                    raise
                # torch.compile failed on this machine (no C++ compiler for Inductor, say): go on without it, say why.
                why = f"torch.compile failed ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}); eager instead"
                self.__init__(self._problem, self.device, replace(self.options, compile=False))
                self.plan = replace(self.plan, compile_fallback=why)

    @torch.no_grad()
    def _evaluate(self, coefs: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric at coefficients (M, D)."""
        m, k = len(coefs), self.plan.points_per_pass
        if m == 0:
            return {name: np.empty(0, np.float32) for name in self.metric_names if name not in self._companion_names}
        # Pad to whole groups of K with copies of the last point: every point is
        # computed in a pass of the same shape, whatever the tile size.
        padded = np.concatenate([coefs, np.repeat(coefs[-1:], (-m) % k, axis=0)])
        c = torch.from_numpy(padded).float().to(self.device)
        n_acc = sum(om.accumulators for om in self.output_metrics)
        sums = [torch.zeros(len(c), dtype=torch.float64, device=self.device) for _ in range(n_acc)]
        with matmul_mode(self.precision):
            if self.sequential is not None:
                results = evaluate_sequentially(self, c[:m])
            elif self.plan.cuda_graphs:
                graph, static, outs = self._graphed()
                for g in range(0, len(c), k):
                    static.copy_(c[g : g + k])
                    graph.replay()
                    for total, part in zip(sums, outs):
                        total[g : g + k].copy_(part)
            else:
                for g in range(0, len(c), k):
                    self._support = support_of(padded[g : g + k])  # a path's two checkpoints, not all of them
                    self._sums(c[g : g + k], into=[total[g : g + k] for total in sums])
                self._support = None
            if self.sequential is None:
                results = self.finish_metrics(sums)
            host = {name: v[:m].cpu().numpy().astype(np.float32) for name, v in results.items()}
            for pm in self.point_metrics:
                rows = [pm.compute(self, c[j]) for j in range(m)]
                host.update({name: np.array([r[name] for r in rows], dtype=np.float32) for name in pm.names})
        return host

"""How an evaluator spends its device: points per pass, data chunk, shortcut.

Chosen from a memory budget before the first point, so a valid spec never runs
out of memory (and if a GPU still does, the evaluator halves and retries). On
CPU the budget is a fixed number, not the free memory, so every CPU actor picks
the same plan and the same spec gives the same bits everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

CPU_BUDGET_BYTES = 2 << 30
# Activations of one chunk stay near the CPU's caches: measured on the CNN,
# chunks of ~128 images beat one full-batch pass (BENCHMARKS.md).
CPU_CHUNK_BYTES = 24 << 20
GPU_BUDGET_FRACTION = 0.6  # of the memory free when the actor starts
ACTIVATION_FACTOR = 4  # live tensors at the widest layer: input, output, residual, slack


@dataclass(frozen=True)
class EvalOptions:
    """What a spec may ask of the evaluator; None means: decide from the device."""

    precision: str = "fp32"  # fp32 | tf32 | bf16
    points_per_pass: int | None = None  # grid points evaluated together (vmap); auto: 1 on CPU
    data_chunk: int | None = None  # samples per forward pass
    shortcut: bool = True  # the exact first-layer shortcut, when its tensors fit
    cuda_graphs: bool | None = None  # auto: on for CUDA
    channels_last: bool | None = None  # auto: on for image (4-D) inputs, one point per pass
    compile: bool | None = None  # torch.compile (one point per pass); auto: conv nets, scans of >= 1,000 points (CPU), 50,000 (GPU)
    class_major_head: bool | None = None  # the output Linear as W @ x^T (head.py); auto: on CPU, one point per pass
    expected_points: int = 0  # grid points in the whole scan: decides whether compiling pays off
    batchnorm: str = "eval"  # eval: running statistics as the slice carries them; recompute: per point
    batchnorm_batch: int = 128  # samples per train-mode pass when recomputing


@dataclass(frozen=True)
class EvalPlan:
    points_per_pass: int
    data_chunk: int
    shortcut: bool
    cuda_graphs: bool
    channels_last: bool
    compile: bool
    budget_bytes: int
    vmap_fallback: str | None = None  # why points_per_pass is 1 although more were planned (vmap did not apply)
    class_major_head: bool = False  # the output Linear computed as W @ x^T (head.py): CPU, one point per pass
    compile_fallback: str | None = None  # why torch.compile was planned but not used (it failed to compile here)

    def describe(self) -> dict:
        return asdict(self)


@torch.no_grad()
def widest_output_elements(model: nn.Module, sample: torch.Tensor) -> int:
    """Elements per sample of the largest output any leaf module produces."""
    widest = [int(sample[0].numel())]

    def hook(mod, args, out):
        if isinstance(out, torch.Tensor):
            widest.append(out.numel() // max(len(sample), 1))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        model(sample)
    finally:
        for h in hooks:
            h.remove()
    return max(widest)


def budget_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * GPU_BUDGET_FRACTION)
    return CPU_BUDGET_BYTES


def default_points_per_pass(device: torch.device, has_conv: bool) -> int:
    # CPU: one point at a time measured fastest (BENCHMARKS.md). GPU: vmap over
    # 128 points turns an MLP's small matmuls into batched ones (1.4x over one at
    # a time on an H100); convolutions become grouped convolutions, which cuDNN
    # ran 1.7x slower than K separate dense passes.
    if device.type != "cuda":
        return 1
    return 1 if has_conv else 128


# torch.compile (max-autotune) costs one to three minutes per actor and made
# ResNet-20 2.8x faster on an H100; below this many points it does not pay.
COMPILE_MIN_POINTS = 50_000
# On CPU, Inductor's C++ code made the MNIST CNN 3.3x and ResNet-20 1.2x faster for
# 4-20 s of compiling per actor (BENCHMARKS.md): worth it from about a thousand points.
CPU_COMPILE_MIN_POINTS = 1_000


# Dynamo caches compiled code per Python function (a model class's forward) and
# recompiles it for each new dtype, input shape or swapped submodule (the
# shortcut's first layer). Past `recompile_limit` (8 variants) it runs that
# forward eagerly, silently, while the plan still says compiled: one process that
# builds evaluators of one model in several configurations (a benchmark's modes,
# data chunks, precisions) got there. So allow many.
RECOMPILE_LIMIT = 256


def allow_recompiles() -> None:
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    dynamo_config.accumulated_recompile_limit = max(dynamo_config.accumulated_recompile_limit, 4 * RECOMPILE_LIMIT)


def default_compile(device: torch.device, has_conv: bool, expected_points: int) -> bool:
    # Convolutional nets only: MLPs gain nothing on CPU, and on GPU compiling forces
    # one point per pass, slower than vmap over 128 (BENCHMARKS.md).
    if not has_conv:
        return False
    least = COMPILE_MIN_POINTS if device.type == "cuda" else CPU_COMPILE_MIN_POINTS
    return expected_points >= least


def make_plan(
    options: EvalOptions,
    device: torch.device,
    samples: int,
    bytes_per_sample: int,
    shortcut_bytes_per_sample: int | None,
    has_conv: bool,
    image_inputs: bool,
) -> EvalPlan:
    """Fit K x chunk x activations (and the shortcut's tensors) into the budget."""
    budget = budget_bytes(device)
    shortcut = options.shortcut and shortcut_bytes_per_sample is not None
    if shortcut and shortcut_bytes_per_sample * samples > budget // 2:
        shortcut = False  # does not fit: plain first layer
    if shortcut:
        budget -= shortcut_bytes_per_sample * samples
    k = options.points_per_pass or default_points_per_pass(device, has_conv)
    if options.data_chunk:
        chunk = min(options.data_chunk, samples)
    elif device.type == "cuda":
        chunk = samples
    else:
        chunk = min(samples, max(64, CPU_CHUNK_BYTES // max(bytes_per_sample, 1)))
    while k * chunk * bytes_per_sample > budget and (k > 1 or chunk > 1):
        if k > 1:
            k //= 2
        else:
            chunk = (chunk + 1) // 2
    graphs = options.cuda_graphs if options.cuda_graphs is not None else device.type == "cuda"
    # vmap cannot yet query channels-last contiguity (BatchNorm asks): K > 1 stays NCHW.
    # Channels-last helps convolutions only; for a net that flattens images first it costs a copy per pass.
    channels_last = options.channels_last if options.channels_last is not None else image_inputs and has_conv and k == 1
    compile_ = options.compile if options.compile is not None else default_compile(device, has_conv, options.expected_points)
    head = options.class_major_head if options.class_major_head is not None else device.type == "cpu"
    return EvalPlan(
        k, chunk, shortcut, graphs and device.type == "cuda", channels_last and image_inputs, compile_ and k == 1, budget,
        class_major_head=head and k == 1,
    )

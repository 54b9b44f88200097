"""Throughput: the reference method beside our evaluator, in one process, on one device.

(a) reference: for each grid point, copy w0 + x*d1 + y*d2 into the model's
    parameters, then loop over the data in mini-batches of 128 in fp32, summing
    loss.item() per batch, as the MPI reference implementation does (its data
    come from a host DataLoader; ours are already on the device, which only
    makes the reference faster, so our ratios are conservative);
(b) the strong baseline, what a competent user writes today: for each grid
    point, copy the weights into a model that sits on the device with the whole
    data set, in the row's precision, channels-last for images, compiled with
    torch.compile (default mode), the loss summed on the device and read once per
    call (--no-strong skips it: compiling takes a minute per model);
(c) our evaluator (landscape.evaluator.Evaluator) in each precision, with and
    without the first-layer shortcut (and, with --explore, other K / graph
    settings).

Per row: evaluations/s (median of repeats), ratio to the reference and to the
strong baseline of the same precision, achieved
GFLOP/s (full forward FLOPs from torch.utils.flop_counter, so the shortcut's
saved work still counts as done), fraction of this device's measured matmul
peak in that precision, max relative deviation of the loss from our fp32
plain path, and peak memory.

Needs only torch, numpy and scikit-learn (for digits): it runs on the GPU
machine, which has no Ray or Zarr.

    python benchmarks/throughput.py --device cuda --out BENCH.md
    python benchmarks/throughput.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landscape import data as datasets  # noqa: E402
from landscape.evaluator import Evaluator  # noqa: E402
from landscape.factories import ModelFactory  # noqa: E402
from landscape.params import StateLayout  # noqa: E402
from landscape.plan import EvalOptions, allow_recompiles  # noqa: E402
from landscape.precision import compute_dtype, matmul_mode  # noqa: E402
from landscape.problem import ScanProblem  # noqa: E402
from landscape.slices import combine, random_slice  # noqa: E402


@dataclass(frozen=True)
class Case:
    label: str
    kind: str
    options: dict
    data: str  # digits | synthetic
    n: int
    shape: tuple[int, ...]


CASES = {
    "mlp": Case("digits MLP 64-64 (N=1,797)", "mlp", {"widths": [64, 64]}, "digits", 1797, (1, 8, 8)),
    "cnn": Case("MNIST-article CNN (N=10,000, 28x28)", "cnn", {}, "synthetic", 10000, (1, 28, 28)),
    "resnet20": Case("ResNet-20 (N=2,500, 32x32x3)", "resnet20", {}, "synthetic", 2500, (3, 32, 32)),
    "resnet20-10k": Case("ResNet-20 (N=10,000, 32x32x3)", "resnet20", {}, "synthetic", 10000, (3, 32, 32)),
    "resnet56": Case("ResNet-56 (N=2,500, 32x32x3)", "resnet56", {}, "synthetic", 2500, (3, 32, 32)),
    "resnet56-10k": Case("ResNet-56 (N=10,000, 32x32x3)", "resnet56", {}, "synthetic", 10000, (3, 32, 32)),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, precision: str) -> float:
    """Measured GFLOP/s of a large square matmul in this precision (the ceiling we compare to)."""
    n = 8192 if device.type == "cuda" else 1024
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        a @ b
        sync(device)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(3):
                a @ b
            sync(device)
            times.append((time.perf_counter() - t) / 3)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    return 2 * n**3 / statistics.median(times) / 1e9


def forward_flops(factory: ModelFactory, inputs: torch.Tensor) -> float:
    """FLOPs of one forward pass over all the data (counted on 16 samples, scaled)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = factory().eval()
    sample = inputs[:16].cpu()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(sample)
    return counter.get_total_flops() * len(inputs) / len(sample)


class Reference:
    """Per point: copy the weights into the model, mini-batches of 128, fp32, .item() per batch."""

    def __init__(self, problem: ScanProblem, device: torch.device):
        self.model = problem.model_factory().to(device).eval()
        self.layout = problem.slice.layout
        self.origin = problem.slice.origin.to(device)
        self.directions = problem.slice.directions.to(device)
        self.inputs, self.targets = problem.inputs.to(device), problem.targets.to(device)
        self.device = device

    @torch.no_grad()
    def evaluate(self, coords: np.ndarray) -> dict:
        torch.backends.cudnn.allow_tf32 = False  # true fp32, like our fp32 rows
        losses = []
        params = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
        for c in coords:
            for name, value in self.layout.unflatten(combine(self.origin, self.directions, c)).items():
                params[name].copy_(value)
            total = 0.0
            for i in range(0, len(self.inputs), 128):
                out = self.model(self.inputs[i : i + 128])
                total += F.cross_entropy(out, self.targets[i : i + 128], reduction="sum").item()
            losses.append(total / len(self.inputs))
        return {"loss": np.array(losses, dtype=np.float32)}


class StrongBaseline:
    """Per point: copy the weights into a compiled model on the device; whole data set, one read per call."""

    def __init__(self, problem: ScanProblem, device: torch.device, precision: str):
        self.precision, dtype = precision, compute_dtype(precision)
        model = problem.model_factory().to(device).eval()
        inputs = problem.inputs.to(device)
        if inputs.dim() == 4:  # images: channels-last, as a tuned user would
            model = model.to(memory_format=torch.channels_last)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        self.model = model.to(dtype)
        self.inputs, self.targets = inputs.to(dtype), problem.targets.to(device)
        self.params = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
        self.layout = problem.slice.layout
        self.origin = problem.slice.origin.to(device)
        self.directions = problem.slice.directions.to(device)
        self.device = device
        self.compiled = torch.compile(self.model)  # default mode

    @torch.no_grad()
    def evaluate(self, coords: np.ndarray) -> dict:
        losses = torch.empty(len(coords), device=self.device)
        with matmul_mode(self.precision):
            for i, c in enumerate(coords):
                for name, value in self.layout.unflatten(combine(self.origin, self.directions, c)).items():
                    self.params[name].copy_(value)
                out = self.compiled(self.inputs).float()
                losses[i] = F.cross_entropy(out, self.targets, reduction="sum")
        return {"loss": (losses / len(self.inputs)).cpu().numpy()}  # one read per call


def _proc_status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_mark(device: torch.device) -> float:
    """Memory in use now (MiB); resets the peak so `memory_peak_since` sees only what follows."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
    return _proc_status_mib("VmRSS")


def memory_peak_since(device: torch.device, mark: float) -> float:
    """Peak memory (MiB) added since `memory_mark` (GPU: allocated tensors; CPU: resident set)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20 - mark
    return _proc_status_mib("VmHWM") - mark


def rate_once(evaluator, coords: np.ndarray, seconds: float, device) -> float:
    """Evaluations/s of repeated calls on `coords` over at least `seconds`."""
    done, t0 = 0, time.perf_counter()
    while True:
        evaluator.evaluate(coords)
        done += len(coords)
        sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def build(case: Case, device: torch.device, n: int) -> ScanProblem:
    if case.data == "digits":
        x, y = datasets.digits()
    else:
        x, y = datasets.synthetic(n, case.shape, 10, seed=0)
    factory = ModelFactory(case.kind, tuple(x.shape[1:]), 10, dict(case.options), seed=0)
    model = factory()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=0)
    return ScanProblem(factory, sl, x, y)


def modes(
    device: torch.device, explore: str, case: Case, precisions: list[str], chunks: tuple[int, ...] = ()
) -> list[tuple[str, EvalOptions]]:
    out = []
    # Planned as for a 1000x1000 scan (expected_points), so the defaults a real scan gets apply (e.g. compile).
    for p in precisions:
        for sc in (True, False):
            out.append((f"{p}{' +shortcut' if sc else ''}", EvalOptions(precision=p, shortcut=sc, expected_points=10**6)))
    if explore == "compile" and device.type == "cuda":
        out.append(("bf16 +shortcut +compile", EvalOptions(precision="bf16", compile=True)))
        for chunk in chunks:  # smaller passes whose activations may stay in L2
            out.append((f"bf16 +shortcut +compile chunk={chunk}", EvalOptions(precision="bf16", compile=True, data_chunk=chunk)))
    if explore == "all" and device.type == "cuda":
        ks = [8, 128] if case.kind == "mlp" else [4]
        for k in ks:
            out.append((f"bf16 +shortcut K={k}", EvalOptions(precision="bf16", points_per_pass=k)))
        out.append(("bf16 +shortcut no graphs", EvalOptions(precision="bf16", cuda_graphs=False)))
        one = {"points_per_pass": 1} if case.kind == "mlp" else {}
        out.append(("bf16 +shortcut +compile", EvalOptions(precision="bf16", compile=True, **one)))
        out.append(("tf32 +shortcut +compile", EvalOptions(precision="tf32", compile=True, **one)))
    if explore == "all" and device.type == "cpu" and case.kind != "mlp":
        for chunk in (128, 512, 2048):
            out.append((f"fp32 +shortcut chunk={chunk}", EvalOptions(data_chunk=chunk)))
        out.append(("fp32 +shortcut NCHW", EvalOptions(channels_last=False)))
    if explore == "all" and device.type == "cpu" and case.kind == "mlp":
        out.append(("fp32 +shortcut K=8", EvalOptions(points_per_pass=8)))
    return out


def run_case(name: str, case: Case, device, args, peaks: dict, log) -> list[dict]:
    """Every mode beside the reference; timed in interleaved rounds, so drifting load hits all alike."""
    n = args.n.get(name, case.n)
    problem = build(case, device, n)
    flops = forward_flops(problem.model_factory, problem.inputs)
    coords = np.random.default_rng(0).uniform(-1, 1, (max(args.points, 1), 2))
    ref_coords = coords[: max(1, min(args.ref_points, len(coords)))]
    contenders = []  # (mode, precision, evaluator, coords to time, losses on ref_coords, peak MiB)
    strong = [] if args.no_strong else [(f"strong baseline ({p}, compiled)", p) for p in args.precisions]
    for mode, opts in [("reference (batch 128, fp32)", None), *strong, *modes(device, args.explore, case, args.precisions, args.chunks)]:
        try:
            mark = memory_mark(device)
            if opts is None:
                ev, timed_coords, precision = Reference(problem, device), ref_coords, "fp32"
            elif isinstance(opts, str):
                ev, timed_coords, precision = StrongBaseline(problem, device, opts), coords[: min(args.batch, len(coords))], opts
            else:
                ev, precision = Evaluator(problem, device=device, options=opts), opts.precision
                k = ev.plan.points_per_pass
                timed_coords = coords[: -(-max(k, min(args.batch, len(coords))) // k) * k]
            losses = ev.evaluate(ref_coords)["loss"]  # also the warm-up: graph capture, compilation
            ev.evaluate(timed_coords)
            contenders.append([mode, precision, ev, timed_coords, losses, memory_peak_since(device, mark), []])
        except Exception as e:  # one mode failing must not lose the others' numbers
            log(f"{case.label} {mode}: FAILED {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    for _ in range(args.repeats):
        for c in contenders:
            c[6].append(rate_once(c[2], c[3], args.seconds, device))
    label = case.label if n == case.n else f"{case.label.split(' (')[0]} (N={n:,})"
    ref_rate = statistics.median(contenders[0][6])
    strong_rate = {c[1]: statistics.median(c[6]) for c in contenders if c[0].startswith("strong baseline")}
    base = next((c[4] for c in contenders if c[0] == "fp32"), contenders[0][4])
    rows = []
    for mode, precision, ev, _, losses, mem, rates in contenders:
        rate = statistics.median(rates)
        dev = np.abs(np.asarray(losses, np.float64) - base) / np.abs(np.asarray(base, np.float64))
        rows.append(
            {
                "model": label,
                "mode": mode,
                "evals_per_s": rate,
                "ratio": rate / ref_rate,
                "ratio_strong": rate / strong_rate[precision] if precision in strong_rate else float("nan"),
                "gflops": rate * flops / 1e9,
                "peak_frac": rate * flops / 1e9 / peaks[precision],
                "max_dev": float(np.nanmax(dev)),
                "peak_mib": mem,
                "rates": rates,
                "plan": ev.describe() if hasattr(ev, "describe") else None,
            }
        )
        log(json.dumps(rows[-1], default=str))
    return rows


def table(rows: list[dict]) -> str:
    head = ("| model | mode | evals/s | x reference | x strong baseline (same precision) | GFLOP/s | of matmul peak | "
            "max rel. dev. from fp32 | peak MiB added |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['evals_per_s']:,.1f} | {r['ratio']:.2f} | {r['ratio_strong']:.2f} | {r['gflops']:,.1f} | "
            f"{r['peak_frac']:.1%} | {r['max_dev']:.1e} | {r['peak_mib']:,.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--n", default="", help="override samples per case: resnet56=500,cnn=2000")
    p.add_argument("--points", type=int, default=64, help="grid points per timed call of ours")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--ref-points", type=int, default=8, help="points per timed call of the reference")
    p.add_argument("--seconds", type=float, default=1.5, help="minimum seconds per timed repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precisions", default="", help="comma-separated (default: fp32,tf32,bf16 on GPU, fp32,bf16 on CPU)")
    p.add_argument("--chunks", default="", help="with --explore compile: also these data chunks, e.g. 500,1250")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument(
        "--explore", nargs="?", const="all", default="", choices=["all", "compile"],
        help="also time other K / graph / chunk / compile settings (compile: only bf16 +compile)",
    )
    p.add_argument("--no-strong", action="store_true", help="skip the strong (compiled) baseline rows")
    p.add_argument("--out", help="write the table and environment as markdown here")
    p.add_argument("--jsonl", help="append every row as JSON here as it is measured")
    args = p.parse_args(argv)
    args.chunks = tuple(int(c) for c in args.chunks.split(",") if c)
    args.n = {k: int(v) for k, v in (kv.split("=") for kv in args.n.split(",") if kv)}
    if args.threads:
        torch.set_num_threads(args.threads)
    allow_recompiles()  # every mode compiles the same forward anew: past dynamo's limit it would silently run eager
    device = torch.device(args.device)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(msg + "\n")

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    precisions = ["fp32", "tf32", "bf16"] if device.type == "cuda" else ["fp32", "bf16"]
    args.precisions = args.precisions.split(",") if args.precisions else precisions
    peaks = {pr: matmul_peak(device, pr) for pr in precisions}
    peaks.setdefault("tf32", peaks["fp32"])
    env = {
        "date": dt.date.today().isoformat(),
        "device": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
    }
    log(json.dumps(env))
    rows = []
    for case_name in args.cases.split(","):
        rows += run_case(case_name, CASES[case_name], device, args, peaks, log)
        print(table(rows), flush=True)
    text = f"Environment: `{json.dumps(env)}`\n\n{table(rows)}\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

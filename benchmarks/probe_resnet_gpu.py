"""Where ResNet-20's time goes on a GPU: forward-only variants at the full batch (a probe, not the benchmark)."""

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.fx.experimental.optimization

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from landscape.models import build_model  # noqa: E402


def bench(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) / reps * 1e3)
    return statistics.median(ts)


def main(n=2500, depth=20):
    dev = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = False
    x32 = torch.randn(n, 3, 32, 32, device=dev)
    rows = []

    def variant(name, dtype, cl=True, benchmark=False, deterministic=True, fold=False, compile_mode=None):
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, deterministic
        m = build_model(f"resnet{depth}", (3, 32, 32), 10).to(dev).eval()
        if fold:
            m = torch.fx.experimental.optimization.fuse(m)
        m = m.to(dtype)
        x = x32.to(dtype)
        if cl:
            m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        f = m
        if compile_mode:
            f = torch.compile(m, mode=compile_mode)
        with torch.no_grad():
            ms = bench(lambda: f(x))
            g = torch.cuda.CUDAGraph()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                f(x)
            torch.cuda.current_stream().wait_stream(s)
            with torch.cuda.graph(g):
                f(x)
            gms = bench(g.replay)
        rows.append((name, ms, gms))
        print(f"{name:45s} eager {ms:7.2f} ms  graph {gms:7.2f} ms  -> {1000/gms:7.1f} /s", flush=True)

    variant("fp32 NHWC det", torch.float32)
    variant("fp32 NCHW det", torch.float32, cl=False)
    variant("bf16 NHWC det", torch.bfloat16)
    variant("bf16 NCHW det", torch.bfloat16, cl=False)
    variant("bf16 NHWC benchmark", torch.bfloat16, benchmark=True, deterministic=False)
    variant("bf16 NHWC BN folded", torch.bfloat16, fold=True)
    variant("bf16 NHWC BN folded benchmark", torch.bfloat16, fold=True, benchmark=True, deterministic=False)
    variant("bf16 NHWC compile default", torch.bfloat16, compile_mode="default")
    variant("bf16 NHWC compile max-autotune-no-cudagraphs", torch.bfloat16, compile_mode="max-autotune-no-cudagraphs")
    variant("bf16 NHWC folded compile max-autotune-nocg", torch.bfloat16, fold=True, compile_mode="max-autotune-no-cudagraphs")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))

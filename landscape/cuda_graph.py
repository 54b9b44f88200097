"""One evaluation pass captured as a CUDA graph: replayed per group of K points with no launch overhead."""

from __future__ import annotations

from typing import Callable

import torch


def capture_graph(run: Callable[[torch.Tensor], list[torch.Tensor]], k: int, d: int, device: torch.device):
    """Capture `run(coefs)` for coefficients (K, D) on `device`: (graph, its input coefs (K, D), its outputs).

    Copy the next points into the input and `graph.replay()`: the outputs then hold their values."""
    static = torch.zeros(k, d, device=device)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):  # warm-up outside the graph, as capture requires
            run(static)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = run(static)
    return graph, static, out

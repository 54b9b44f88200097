"""Language-model scan speed: grid-point evaluations per second of a tiny GPT-2 and a GPT-2-small-sized model
(random weights), through the evaluator a scan's actors run, beside a plain Hugging Face loop on the same points.

Per model, in one process, interleaved rounds (each mode once per round), median of the rounds:
  - landscape: `Evaluator.evaluate` of a random plane (filter-normalized), one point per call;
  - plain HF loop: per point, weights = origin + x d1 + y d2 loaded with load_state_dict, then
    `model(block, labels=block).loss` over the blocks in batches of 8 (no gradient), averaged.
The two losses at each point are compared (max relative difference printed).

    python benchmarks/lm_evals.py --threads 2 [--small-blocks 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from landscape.evaluator import Evaluator  # noqa: E402
from landscape.factories import ModelFactory  # noqa: E402
from landscape.lm import load_causal_lm_state  # noqa: E402
from landscape.params import StateLayout  # noqa: E402
from landscape.plan import EvalOptions  # noqa: E402
from landscape.problem import ScanProblem  # noqa: E402
from landscape.slices import random_slice  # noqa: E402
from landscape.vision import prepare_torchvision  # noqa: E402

prepare_torchvision()
import transformers  # noqa: E402

MODELS = {
    "tiny GPT-2 (2 layers, d 16, vocab 20)": ({"n_layer": 2, "n_head": 2, "n_embd": 16, "n_positions": 32, "vocab_size": 20}, 50, 16),
    "GPT-2-small size (12 layers, d 768, vocab 50257)": ({"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024,
                                                          "vocab_size": 50257}, None, 128),
}


def plain_loss(model, blocks: torch.Tensor, batch: int = 8) -> float:
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(blocks), batch):
            b = blocks[s : s + batch]
            total += model(input_ids=b, labels=b).loss.item() * len(b)
    return total / len(blocks)


def bench(label: str, config: dict, n_blocks: int, block: int, rounds: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config["vocab_size"], (n_blocks * block + 1,), generator=g)
    x, y = ids[:-1].view(n_blocks, block), ids[1:].reshape(n_blocks, block)
    factory = ModelFactory("hf_causal_lm", (block,), config["vocab_size"], {"config": {"model_type": "gpt2", **config}})
    model = factory()
    layout = StateLayout.of(model)
    origin = layout.flatten(model.state_dict())
    sl = random_slice(layout, origin, 2, seed=1)
    ev = Evaluator(ScanProblem(factory, sl, x, y, options=EvalOptions(expected_points=100)), device="cpu")
    with torch.device("meta"):  # no second random initialization: the weights come from the slice
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config)).eval()
    hf.load_state_dict(model.state_dict(), strict=False, assign=True)  # tied: no lm_head.weight entry
    hf.tie_weights()
    blocks = torch.cat([x, y[:, -1:]], 1)
    pts = np.array([[0.1, -0.2], [0.3, 0.05], [-0.15, 0.2], [0.0, 0.25]])
    if layout.size < 10**6:
        ev.evaluate(pts[:1])  # warm-up (the large model's first call has nothing to warm: no compile, one forward)
    times = {"landscape": [], "plain HF loop": []}
    diffs = []
    for r in range(rounds):
        p = pts[1 + r % 3]
        t0 = time.perf_counter()
        ours = float(ev.evaluate(p[None])["loss"][0])
        times["landscape"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        load_causal_lm_state(hf, ev.state_at(p))
        ref = plain_loss(hf, blocks)
        times["plain HF loop"].append(time.perf_counter() - t0)
        diffs.append(abs(ours - ref) / abs(ref))
    row = {"model": label, "parameters": sum(q.numel() for q in model.parameters()), "blocks": n_blocks,
           "block_size": block, "tokens": n_blocks * block, "rounds": rounds,
           "evals_per_s": {k: 1 / statistics.median(v) for k, v in times.items()},
           "seconds": {k: v for k, v in times.items()}, "max_rel_loss_diff": max(diffs), "plan": ev.describe()}
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--small-blocks", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["tiny", "small"], help="one of the two models")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / f"lm-evals-cpu-{dt.date.today()}.jsonl"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    header = {"cpu": platform.processor() or platform.machine(), "capability": torch.backends.cpu.get_cpu_capability(),
              "torch": torch.__version__, "transformers": transformers.__version__, "threads": a.threads, "precision": "fp32",
              "date": str(dt.datetime.now(dt.timezone.utc))}
    rows = [header]
    for label, (config, n, block) in MODELS.items():
        if a.only and not label.startswith({"tiny": "tiny", "small": "GPT-2-small"}[a.only]):
            continue
        rows.append(bench(label, config, n or a.small_blocks, block, a.rounds))
    Path(a.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

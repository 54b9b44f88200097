"""An independent reference: plain PyTorch, mini-batches, load_state_dict per point."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reference_loss(model, state: dict, inputs, targets, batch: int = 128) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, the way the reference implementations loop."""
    model.load_state_dict(state)
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            out = model(inputs[i : i + batch])
            total += F.cross_entropy(out, targets[i : i + batch], reduction="sum").item()
            correct += (out.argmax(1) == targets[i : i + batch]).sum().item()
    return total / len(inputs), correct / len(inputs)


def state_at(model, origin: dict, directions: list[dict], coords) -> dict:
    """origin + sum c_i * d_i computed entry by entry in float64 (independent of the flat layout)."""
    out = {}
    for k, v in origin.items():
        if not v.is_floating_point():
            out[k] = v
            continue
        acc = v.double()
        for c, d in zip(coords, directions):
            acc = acc + float(c) * d[k].double()
        out[k] = acc.float()
    return out

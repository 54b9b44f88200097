"""Loading and saving checkpoints safely (weights_only=True), with clear errors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError


def load_state(path: str | Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """A state_dict from `path`, checked against `model` (keys and shapes)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; train one with `landscape train` or fix the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, non-tensor payloads
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read as a state_dict: {str(e).splitlines()[0]}") from e
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {str(path)!r} holds no state_dict of tensors")
    expected = model.state_dict()
    missing = [k for k in expected if k not in obj]
    unexpected = [k for k in obj if k not in expected]
    wrong = [f"{k} {tuple(obj[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if k in obj and obj[k].shape != v.shape]
    if missing or unexpected or wrong:
        bits = []
        if missing:
            bits.append(f"missing {missing[:3]}")
        if unexpected:
            bits.append(f"unexpected {unexpected[:3]}")
        if wrong:
            bits.append(f"shape mismatch {wrong[:3]} (checkpoint vs model)")
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit the model: {'; '.join(bits)}; check model.kind and its options"
        )
    return {k: obj[k].to(expected[k].dtype) for k in expected}


def save_state(path: str | Path, model: nn.Module) -> Path:
    """Write the model's state_dict atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(path)
    return path

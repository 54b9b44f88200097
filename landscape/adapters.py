"""Fitting models that are not plain `tensor -> logits` functions to the evaluator.

- Outputs: Hugging Face models return an object (a ModelOutput, which is also a
  dict) with `logits`; some return a plain dict. A forward hook on the model
  replaces such an output by its logits, so every path (the evaluator's passes, vmap,
  check_fit, training) sees a tensor, and the state_dict keys stay the model's own.
- Inputs: integer inputs (token ids) stay integer when the model takes them, since
  an embedding cannot read floats; inputs of every other model are cast to float32
  as before.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def logits_of(out):
    """The logits tensor in a model's output (a tensor, a dict or an object with `logits`), else `out` unchanged."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]
    logits = getattr(out, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else out


def _logits_hook(module: nn.Module, args, out):
    return None if isinstance(out, torch.Tensor) else logits_of(out)  # None keeps the output as it is


def with_logits(model: nn.Module) -> nn.Module:
    """`model` itself, its outputs reduced to their logits."""
    model.register_forward_hook(_logits_hook)
    return model


@torch.no_grad()
def fit_input_dtype(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, str | None]:
    """(inputs as the model takes them, a note on what was done): integer inputs stay int64 if the model reads them."""
    if inputs.is_floating_point():
        return inputs, None
    was = str(inputs.dtype).removeprefix("torch.")
    model.eval()
    try:
        model(inputs[:2].long())
    except Exception as as_ints:
        try:  # a Linear or Conv refuses integers: cast, as for any numeric data
            model(inputs[:2].float())
        except Exception:  # refused either way: let the fit check report the error that is not about the dtype
            if not any(w in str(as_ints) for w in ("dtype", "scalar type", "Long")):  # a token id past the vocabulary
                return inputs.long(), f"inputs are integers ({was}) and stay int64 (the model refuses them either way)"
        return inputs.float(), f"inputs cast from {was} to float32"
    return inputs.long(), f"inputs are integers ({was}) and stay int64: the model reads them (token ids)"

"""What a scan evaluates (model, slice, data, loss, metrics), and the early checks that it fits together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
from torch import nn

from .errors import DataError
from .plan import EvalOptions
from .sequential import Sequential
from .slices import Slice

LossKind = Literal["cross_entropy", "mse"]


@dataclass
class ScanProblem:
    """Everything an evaluator needs; put into Ray's object store once per scan."""

    model_factory: Callable[[], nn.Module]  # picklable by reference (module-level or partial)
    slice: Slice
    inputs: torch.Tensor  # (N, ...) float
    targets: torch.Tensor  # (N,) int64 labels, or (N,)/(N, C) float for mse
    loss: LossKind = "cross_entropy"
    options: EvalOptions = field(default_factory=EvalOptions)
    metrics: tuple[str, ...] = ("loss", "accuracy")  # metric families (landscape.metrics.FAMILIES)
    metric_options: dict = field(default_factory=dict)  # family -> keyword options of its metric
    bn_inputs: torch.Tensor | None = None  # samples for batchnorm: recompute (default: inputs)
    sequential: Sequential | None = None  # stop adding data to a point once its loss is known (sequential.py)
    # More data splits evaluated at every point (landscape.splits), name -> (inputs, targets); their arrays are
    # prefixed "<name>_". BatchNorm recompute uses bn_inputs (or each split's own inputs) for all of them.
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_fit(problem: ScanProblem) -> None:
    """Fail early, with a DataError, if the data does not fit the model or the loss."""
    check_data_fits(problem.model_factory, problem.inputs, problem.targets, problem.loss)


def check_data_fits(
    model_factory: Callable[[], nn.Module], inputs: torch.Tensor, targets: torch.Tensor, loss: str, classes: int | None = None
) -> None:
    """DataError if samples of `inputs` cannot go through the model, or the outputs do not fit `targets` under `loss`
    (or the data set's `classes`, when it has a class count of its own)."""
    model = model_factory().eval()
    x, y = inputs[:2], targets[:2]
    if loss == "cross_entropy" and not targets.is_floating_point() and targets.dim() == 2:  # token targets (n, T)
        from .lm import check_vocabulary

        check_vocabulary(model, inputs, targets, classes)
    try:
        with torch.no_grad():
            out = model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise DataError(
            f"data with samples of shape {tuple(inputs.shape[1:])} does not fit the model: "
            f"{(str(e).strip().splitlines() or [type(e).__name__])[0]}; pick a model for this input shape"
        ) from e
    if not isinstance(out, torch.Tensor):
        raise DataError(
            f"the model returns {type(out).__name__}, not a tensor of outputs per sample nor an object or dict with `logits`"
        )
    if loss == "cross_entropy" and not targets.is_floating_point() and targets.dim() == 2:  # token targets (n, T)
        from .lm import check_token_fit

        return check_token_fit(out, targets, classes)
    if classes is not None and not targets.is_floating_point() and (out.dim() != 2 or out.shape[1] != classes):
        width = out.shape[1] if out.dim() == 2 else tuple(out.shape[1:])
        raise DataError(
            f"the model outputs {width} values per sample but the data set has {classes} classes; set the model's number "
            "of classes (model.options: classes for built-in models, num_classes for torchvision, your factory's option)"
        )
    if loss == "cross_entropy":
        if targets.is_floating_point():
            raise DataError("loss cross_entropy needs integer class labels; use loss: mse for float targets")
        if targets.dim() != 1:
            raise DataError(f"cross_entropy needs one label per sample; the targets have shape {tuple(targets.shape)}")
        lo, hi = int(targets.min()), int(targets.max())
        if out.dim() != 2 or hi >= out.shape[1] or lo < 0:
            width = out.shape[1] if out.dim() == 2 else tuple(out.shape[1:])
            raise DataError(
                f"the labels run from {lo} to {hi} but the model outputs {width} classes per sample; labels must lie in "
                f"[0, {width}): fix the data or set the model's number of classes"
            )
    elif y.is_floating_point() and out.numel() != y.numel():
        raise DataError(f"mse: the model outputs {tuple(out.shape[1:])} per sample but targets are {tuple(y.shape[1:])}")

"""BatchNorm statistics re-estimated at a point of weight space (mode connectivity's `update_bn`)."""

from __future__ import annotations

import torch
from torch import nn


def recompute_batchnorm(model: nn.Module, batchnorms: list[nn.Module], batches: list[torch.Tensor]) -> None:
    """Re-estimate BatchNorm statistics at the loaded point, as mode connectivity's `update_bn`.

    Train-mode passes over the batches (BatchNorm layers only: dropout stays off,
    so the result is deterministic); batch b gets momentum n_b / (n_seen + n_b),
    so the running statistics end as the sample-weighted mean of the batch
    statistics. The statistics are views of the flat state: the next point's
    load overwrites them.
    """
    for bn in batchnorms:
        bn.train()
    seen = 0
    try:
        for batch in batches:
            for bn in batchnorms:
                bn.momentum = len(batch) / (seen + len(batch))
            model(batch)
            seen += len(batch)
    finally:
        for bn in batchnorms:
            bn.eval()

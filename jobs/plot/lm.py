"""Language-model scans (data kind text): the loss is the mean token cross-entropy, drawn also as perplexity exp(loss)."""

from __future__ import annotations

import numpy as np

from .data import Landscape
from .lines import metric_line
from .maps import heatmap
from .style import norm_for

LABEL = "perplexity = exp(mean token cross-entropy)"


def perplexity_figures(ls: Landscape) -> dict:
    """FIGURES hook: perplexity.png for scans of token data."""
    if (ls.meta.get("spec") or {}).get("data", {}).get("kind") != "text" or not ls.loss.count():
        return {}
    z = np.ma.exp(ls.loss)

    def build():
        if ls.loss.ndim == 2:
            return heatmap(ls, z, LABEL, norm_for(z, log=True))
        return metric_line(ls, LABEL, z)

    return {"perplexity": build}

"""The relative standard error of each metric that has one, as a map (planes) or a line (lines, curves)."""

from __future__ import annotations

import numpy as np

from landscape.metrics import se_name

from .relative_se import relative_se, se_pairs
from .data import Landscape
from .maps import heatmap
from .style import norm_for


def is_se_of_a_metric(name: str, ls: Landscape) -> bool:
    """A standard-error array whose metric is drawn: it shows as that metric's relative-error figure instead."""
    return any(se_name(n) == name for n in ls.metrics)


def figures(ls: Landscape) -> dict:
    out = {}
    companions = tuple(f"{c}_" for c in ls.meta.get("companions") or {})
    for name in se_pairs(ls.metrics):
        if name == "accuracy" or name.startswith(companions) or not ls.metrics[se_name(name)].count():
            continue  # accuracy's relative error says little (0 at chance); a companion path's is like its own
        rel = np.ma.masked_invalid(relative_se(ls.metrics[name].filled(np.nan), ls.metrics[se_name(name)].filled(np.nan)))
        if not rel.count():
            continue
        label = f"{name} relative standard error"
        if rel.ndim == 2:
            out[f"{name}_relative_se"] = lambda rel=rel, label=label: heatmap(ls, rel, label, norm_for(rel, log=True))
        else:
            from .lines import metric_line

            out[f"{name}_relative_se"] = lambda rel=rel, label=label: metric_line(ls, label, rel)
    return out

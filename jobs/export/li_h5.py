"""Li et al.'s surface file (loss-landscape's `*.h5`): what their plot_2D.py, plot_1D.py and h52vtp.py read.

Datasets: xcoordinates (nx,), ycoordinates (ny,) for a plane, then per split `<split>_loss` and
`<split>_acc` (accuracy in %, as their evaluation writes it); `loss`/`accuracy` are the train split
(train_loss, train_acc). A plane's values are (ny, nx), row i at ycoordinates[i]: the element order
their crunch.py writes (np.meshgrid(x, y).ravel()) and the shape their plot_2D.py contours against
np.meshgrid(x, y). Any other metric keeps its own name. The result's attributes go in the
`landscape` attribute (JSON).
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from .source import Plane


def li_name(metric: str) -> str:
    split, _, what = metric.rpartition("_") if metric.endswith(("_loss", "_accuracy")) else ("train", "", metric)
    if what not in ("loss", "accuracy"):
        return metric
    return f"{split or 'train'}_{'acc' if what == 'accuracy' else 'loss'}"


def li_values(metric: str, values: np.ndarray) -> np.ndarray:
    """Accuracies in % (100 * fraction, in the stored dtype), everything else as stored."""
    return values * values.dtype.type(100) if metric == "accuracy" or metric.endswith("_accuracy") else values


def write_li_h5(plane: Plane, path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("xcoordinates", data=plane.x)
        if plane.y is not None:
            f.create_dataset("ycoordinates", data=plane.y)
        for name, values in plane.metrics.items():
            f.create_dataset(li_name(name), data=li_values(name, values))
        f.attrs["landscape"] = json.dumps(plane.meta, default=str)

"""Words on the figures: titles from the model, data, split and slice; axes named by what they are;
metrics by name, fractions (accuracies) shown in %."""

from __future__ import annotations

import textwrap

import numpy as np

from landscape.metrics import ARRAYS

SLICE_WORDS = {
    "random_plane": "random plane", "random_line": "random line", "line_between": "line between two checkpoints",
    "plane_through": "plane through three checkpoints", "trajectory_pca": "PCA plane of the training path",
    "trajectory": "training path", "hessian_plane": "Hessian eigenvector plane", "curve": "mode-connecting curve",
    "curve_plane": "plane of a mode-connecting curve",
}


def _spec(meta: dict) -> dict:
    return meta.get("spec") or {}


def model_words(meta: dict) -> str | None:
    m = _spec(meta).get("model") or {}
    kind = m.get("kind")
    if not kind:
        return None
    opts = m.get("options") or {}
    widths = opts.get("widths")
    if kind == "mlp" and widths:
        return f"MLP {'-'.join(str(w) for w in widths)}"
    return {"mlp": "MLP", "cnn": "CNN"}.get(kind, str(opts.get("name") or kind))


def data_words(meta: dict) -> str | None:
    d = _spec(meta).get("data") or {}
    kind = d.get("kind")
    if not kind:
        return None
    words = {"digits": "digits", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "mnist": "MNIST",
             "fashion_mnist": "Fashion-MNIST", "svhn": "SVHN"}.get(kind, kind)
    split = d.get("split")
    return f"{words} ({split})" if split else words


def slice_words(meta: dict) -> str:
    kind = meta.get("slice_kind", "?")
    words = SLICE_WORDS.get(kind, kind)
    norm = (_spec(meta).get("slice") or {}).get("normalization")
    if kind in ("random_plane", "random_line") and norm and norm != "none":
        words += f", {norm}-normalized"
    return words


def base_title(meta: dict) -> str:
    """'MLP 64-64 on digits: random plane, filter-normalized' (the run's name when the spec says nothing)."""
    what = " on ".join(w for w in (model_words(meta), data_words(meta)) if w) or meta.get("name", "landscape")
    t = f"{what}: {slice_words(meta)}"
    if meta.get("epoch") is not None:
        t += f", epoch {meta['epoch']}"
    if meta.get("plane_of_epoch") is not None:  # a video holding one plane still
        t += f" on epoch {meta['plane_of_epoch']}'s plane (bend {meta.get('bend_off_plane', 0):.3g} off it)"
    if meta.get("precision") not in (None, "fp32"):
        t += f" ({meta['precision']})"
    return t


def axis_labels(meta: dict) -> tuple[str, str]:
    """(x, y) axis names: the slice's own (PC1: 87.7%, an eigenvalue) or what its coordinates measure."""
    kind = meta.get("slice_kind")
    norm = (_spec(meta).get("slice") or {}).get("normalization", "filter")
    if kind in ("random_plane", "random_line", "hessian_plane"):
        what = "random direction" if kind != "hessian_plane" else "eigenvector"
        pre = f"{norm}-normalized " if norm and norm != "none" else ""
        x, y = f"{pre}{what} 1", f"{pre}{what} 2"
    elif kind == "line_between":
        x, y = "α: w = A + α (B - A)", "y"
    elif kind == "plane_through":
        x, y = "distance along B - A", "distance orthogonal to it, towards C"
    elif kind in ("curve", "trajectory"):
        x, y = "t", "y"
    elif kind == "curve_plane":
        x, y = "distance along w2 - w1", "distance orthogonal to it, towards θ"
    else:
        x, y = "x", "y"
    return meta.get("x_label") or x, meta.get("y_label") or y


def wrap(text: str, width_in: float, fontsize: float) -> str:
    """Break a title into lines that fit `width_in` inches (a character is about 0.55 em wide)."""
    chars = max(20, int(width_in * 72 / (0.58 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def is_fraction(name: str) -> bool:
    info = ARRAYS.get(name) or ARRAYS.get(name.split("_", 1)[-1])  # test_accuracy -> accuracy
    return bool(info and info.unit_range) or name.endswith("accuracy")


def metric_values(metrics: dict, name: str) -> tuple[np.ma.MaskedArray, str]:
    """(values as drawn, colour-bar label) of a metric by name: fractions in %, '<prefix>error' from '<prefix>accuracy'."""
    if name in metrics:
        z = metrics[name]
        if is_fraction(name):
            return 100 * z, f"{name.replace('_', ' ')} (%)"
        return z, name.replace("_", " ")
    if name.endswith("error") and name[: -len("error")] + "accuracy" in metrics:
        return 100 * (1 - metrics[name[: -len("error")] + "accuracy"]), f"{name.replace('_', ' ')} (%)"
    return None, name


def log_by_default(name: str) -> bool:
    info = ARRAYS.get(name) or ARRAYS.get(name.split("_", 1)[-1])
    return bool(info and info.log_scale) or name.endswith("loss") or name.endswith("error")

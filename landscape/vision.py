"""torchvision's classification models by name, built with random weights (never downloaded).

`prepare_torchvision()` also makes `import torchvision` work where its compiled
ops were built for another PyTorch build: PyPI's torchvision wheels are built for
PyPI's CUDA torch, and beside a CPU-only torch their extension does not load, after
which `import torchvision` fails registering fake kernels for `torchvision::nms`.
Declaring those two op schemas first lets the pure-Python parts (every model, the
transforms) import; only the detection ops (nms, roi_align, ...) stay unavailable.
transformers imports torchvision when it is installed, so import factories need
this too (`landscape.data.import_object` calls it).
"""

from __future__ import annotations

import difflib
import glob
import importlib.util
import os
import sys

import torch
from torch import nn

from .errors import SpecError

_schemas: torch.library.Library | None = None  # kept alive: dropping it would unregister the schemas
_prepared = False
_MISSING_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)


def prepare_torchvision() -> None:
    """Before torchvision is first imported: if its extension cannot load, declare the op schemas it registers."""
    global _schemas, _prepared
    if _prepared or "torchvision" in sys.modules:
        return
    _prepared = True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: nothing to prepare
    folder = spec.submodule_search_locations[0]
    libs = glob.glob(os.path.join(folder, "_C*.so")) + glob.glob(os.path.join(folder, "_C*.pyd"))
    try:
        torch.ops.load_library(libs[0])
        return  # the extension loads: torchvision imports as it is
    except (OSError, ImportError, IndexError, RuntimeError):
        pass
    _schemas = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _MISSING_OPS:
        _schemas.define(schema)


def import_torchvision():
    prepare_torchvision()
    try:
        import torchvision
    except ImportError:
        raise SpecError(
            "model.kind torchvision needs the torchvision package: pip install torchvision (the release that pairs with "
            "your torch, e.g. torchvision==0.28.0 for torch==2.13.0)"
        ) from None
    return torchvision


def model_names() -> list[str]:
    """Every classification model torchvision builds by name."""
    tv = import_torchvision()
    return sorted(tv.models.list_models(module=tv.models))


def build_torchvision(name: str | None, num_classes: int, **options) -> nn.Module:
    """torchvision.models.get_model(name, weights=None, num_classes=...): random initial weights, nothing downloaded."""
    tv = import_torchvision()
    names = model_names()
    if not name:
        raise SpecError("model.kind torchvision needs model.name, e.g. name: resnet18")
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
        hint = f"close matches: {', '.join(close)}" if close else f"e.g. {', '.join(names[:6])}, ..."
        raise SpecError(f"model.name {name!r} is not a torchvision {tv.__version__.split('+')[0]} classification model; {hint} "
                        f"(all {len(names)}: torchvision.models.list_models())")
    for refused in ("weights", "pretrained", "weights_backbone"):
        if refused in options:
            raise SpecError(f"model.options.{refused}: pretrained weights are never downloaded here; leave it out and "
                            "scan your own checkpoint (slice.checkpoint), e.g. one saved from the pretrained model")
    kwargs = {"num_classes": options.pop("classes", num_classes), **options}  # `classes`, as the zoo calls it
    try:
        return tv.models.get_model(name, weights=None, **kwargs)
    except (TypeError, ValueError) as e:
        raise SpecError(f"model.options {kwargs}: torchvision's {name} refused them ({str(e).splitlines()[0][:200]})") from None

"""The built-in model kinds and the options each takes, as plain data (no torch): specs check
them when a file is read, `landscape validate` and `--help` stay fast; models.py and zoo.py build them."""

from __future__ import annotations

# CIFAR-style ResNets (Li et al. 2018): name -> (depth, with shortcut connections)
RESNETS: dict[str, tuple[int, bool]] = {
    "resnet20": (20, True), "resnet56": (56, True), "resnet110": (110, True),
    "resnet20_noshort": (20, False), "resnet56_noshort": (56, False),
    "resnet110_noshort": (110, False),
}

# The papers' CIFAR models (zoo.py): kind -> allowed options (besides `classes`, which every zoo model takes)
ZOO_OPTIONS: dict[str, tuple[str, ...]] = {
    "vgg9": ("classes",), "vgg16": ("classes",), "wrn28_10": ("classes", "dropout"),
    "densenet121": ("classes",),
}

# Allowed options per kind: unknown options are an error, not silently ignored.
OPTIONS: dict[str, tuple[str, ...]] = {"mlp": ("widths",), "cnn": ("channels",), "linear": ()}
OPTIONS.update({k: ("width",) for k in RESNETS})
OPTIONS["deep_mlp"] = ("depth", "width", "activation", "init", "init_gain")
OPTIONS.update(ZOO_OPTIONS)

# torchvision's models by name (vision.py) take torchvision's own keywords
MODEL_KINDS: tuple[str, ...] = ("linear", "mlp", "cnn") + tuple(RESNETS) + ("deep_mlp",) + tuple(ZOO_OPTIONS) + ("torchvision",)

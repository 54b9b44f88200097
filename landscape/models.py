"""Model zoo for loss-landscape scans.

MLP and SmallCNN for small data sets, CIFAR-style ResNets (He et al. 2016,
as used by Li et al. 2018 "Visualizing the Loss Landscape of Neural Nets"),
and a single linear layer whose loss surface has a closed form for tests.
"""

import math
from typing import Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F


class MLP(nn.Module):
    """Fully connected net: flatten, (Linear-ReLU) per width, Linear head."""

    def __init__(self, in_features: int, widths: Sequence[int], num_classes: int):
        super().__init__()
        layers = []
        prev = in_features
        for w in widths:
            layers += [nn.Linear(prev, int(w)), nn.ReLU(inplace=True)]
            prev = int(w)
        layers.append(nn.Linear(prev, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))  # (N, num_classes)


class SmallCNN(nn.Module):
    """Two conv-ReLU-pool stages and a linear head (the usual MNIST CNN)."""

    def __init__(self, in_channels: int, image_size: Tuple[int, int], num_classes: int,
                 channels: Sequence[int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        h, w = image_size
        # padding=2 keeps size through each conv; each pool floors by 2.
        h, w = h // 2 // 2, w // 2 // 2
        if h < 1 or w < 1:
            raise ValueError(f"SmallCNN needs images of at least 4x4, got {image_size}")
        self.classifier = nn.Linear(c2 * h * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, c2, H//4, W//4)
        return self.classifier(x.flatten(1))


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    # No bias: the following BatchNorm has its own shift.
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus optional shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: bool = True):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.use_shortcut = shortcut
        self.shortcut = nn.Sequential()  # identity
        if shortcut and (stride != 1 or in_planes != planes):
            # Projection (option B) as in Li et al.'s code, when the shape changes.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNetCifar(nn.Module):
    """CIFAR ResNet of depth 6n+2; shortcut=False gives the "-NS" variants."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3,
                 shortcut: bool = True, width: int = 16):
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(
                f"ResNetCifar depth must be 6n+2 with n >= 1 (e.g. 20, 56, 110), got {depth}")
        if width < 1:
            raise ValueError(f"ResNetCifar width must be a positive integer, got {width}")
        n = (depth - 2) // 6
        planes = [width, 2 * width, 4 * width]  # 16/32/64 at width=16
        self.conv1 = conv3x3(in_channels, planes[0])
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.in_planes = planes[0]
        self.layer1 = self._make_stage(planes[0], n, 1, shortcut)
        self.layer2 = self._make_stage(planes[1], n, 2, shortcut)
        self.layer3 = self._make_stage(planes[2], n, 2, shortcut)
        self.linear = nn.Linear(planes[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_stage(self, planes: int, n: int, stride: int, shortcut: bool) -> nn.Sequential:
        blocks = []
        for s in [stride] + [1] * (n - 1):
            blocks.append(BasicBlock(self.in_planes, planes, s, shortcut))
            self.in_planes = planes
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # (N, w, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 4w, H/4, W/4)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (N, 4w)
        return self.linear(x)


class LinearModel(nn.Module):
    """Flatten then one Linear layer; its loss landscape has a closed form."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class DeepMLP(nn.Module):
    """`depth` hidden layers Linear(width)-activation and a Linear head: the deep nets of gradient-health studies.

    Parameters are named hidden.0.weight .. hidden.{depth-1}.bias, head.weight, head.bias
    (depth + 1 weight matrices, input side first). `init` re-initializes every Linear:
    default = PyTorch's own; xavier_* = Glorot & Bengio (gain 1); kaiming_* = He et al.
    (fan_in, gain of the activation: sqrt 2 relu, 5/3 tanh, 1 sigmoid); orthogonal (gain 1);
    non-default inits zero the biases. Then every parameter is multiplied by `init_gain`
    (the source's `p.data *= 1.8` that keeps a 116-layer tanh net's gradients alive).
    """

    def __init__(self, in_features: int, num_classes: int, depth: int, width: int,
                 activation: str, init: str, init_gain: float):
        super().__init__()
        self.activation = activation
        self.act = _ACTIVATIONS[activation]
        dims = [in_features] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(width, num_classes)
        if init != "default":
            for m in [*self.hidden, self.head]:
                _INITS[init](m.weight, activation)
                nn.init.zeros_(m.bias)
        if init_gain != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (N, in_features)
        for layer in self.hidden:
            x = self.act(layer(x))  # (N, width)
        return self.head(x)  # (N, num_classes)


_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
_INITS = {
    "xavier_uniform": lambda w, act: nn.init.xavier_uniform_(w),
    "xavier_normal": lambda w, act: nn.init.xavier_normal_(w),
    "kaiming_uniform": lambda w, act: nn.init.kaiming_uniform_(w, nonlinearity=act),
    "kaiming_normal": lambda w, act: nn.init.kaiming_normal_(w, nonlinearity=act),
    "orthogonal": lambda w, act: nn.init.orthogonal_(w),
}
DEEP_MLP_INITS = ("default",) + tuple(_INITS)


def _deep_mlp(in_features: int, num_classes: int, depth=8, width=64, activation="tanh",
              init="default", init_gain=1.0) -> DeepMLP:
    """Check deep_mlp's options (one line naming the option) and build it."""
    for name, v in (("depth", depth), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"deep_mlp option {name} must be an integer >= 1, got {v!r}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"deep_mlp option activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
    if init not in DEEP_MLP_INITS:
        raise ValueError(f"deep_mlp option init must be one of {', '.join(DEEP_MLP_INITS)}, got {init!r}")
    if isinstance(init_gain, bool) or not isinstance(init_gain, (int, float)) or not (0 < init_gain < math.inf):
        raise ValueError(f"deep_mlp option init_gain must be a finite number > 0, got {init_gain!r}")
    return DeepMLP(in_features, num_classes, depth, width, activation, init, float(init_gain))


from .model_kinds import MODEL_KINDS, OPTIONS as _OPTIONS, RESNETS as _RESNETS  # noqa: E402 (the kinds as data, torch-free)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _positive_ints(name: str, value, count: int | None = None) -> list[int]:
    if not isinstance(value, (list, tuple)) or (count is not None and len(value) != count):
        size = f"{count} " if count is not None else ""
        raise ValueError(f"{name} must be a list of {size}positive integers, got {value!r}")
    return [_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value)]

# The papers' CIFAR models (zoo.py) and torchvision's models by name (vision.py).
from .zoo import OPTIONS as _ZOO_OPTIONS, build_zoo_model  # noqa: E402


def build_model(kind: str, input_shape: Tuple[int, ...], num_classes: int,
                **options) -> nn.Module:
    """Build a model of `kind` for samples of `input_shape` (no batch dim)."""
    if kind == "torchvision":  # options are torchvision's own keywords (it checks them); `name` picks the model
        from .vision import build_torchvision

        return build_torchvision(options.pop("name", None), num_classes, **options)
    if kind not in _OPTIONS:
        raise ValueError(
            f"unknown model kind {kind!r}; valid kinds: {', '.join(MODEL_KINDS)}")
    bad = sorted(set(options) - set(_OPTIONS[kind]))
    if bad:
        valid = ", ".join(_OPTIONS[kind]) or "none"
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, bad))} for model kind {kind!r}; "
            f"valid options: {valid}")
    input_shape = tuple(int(d) for d in input_shape)
    in_features = math.prod(input_shape)

    if kind == "linear":
        return LinearModel(in_features, num_classes)
    if kind == "mlp":
        return MLP(in_features, _positive_ints("widths", options.get("widths", [64, 64])), num_classes)
    if kind == "deep_mlp":
        return _deep_mlp(in_features, num_classes, **options)
    if len(input_shape) != 3:
        raise ValueError(
            f"model kind {kind!r} needs image input of shape (C, H, W), "
            f"got input_shape {input_shape}")
    if kind in _ZOO_OPTIONS:
        return build_zoo_model(kind, input_shape, num_classes, **options)
    c, h, w = input_shape
    if kind == "cnn":
        return SmallCNN(c, (h, w), num_classes, _positive_ints("channels", options.get("channels", [16, 32]), 2))
    depth, shortcut = _RESNETS[kind]
    return ResNetCifar(depth, num_classes, in_channels=c, shortcut=shortcut,
                       width=_positive_int("width", options.get("width", 16)))

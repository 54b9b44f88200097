"""The CIFAR models of the loss-landscape and mode-connectivity papers.

Each mirrors the module structure (and so the state_dict keys) of the code the
paper published, so its checkpoints load as they are:
- VGG-9: Li et al. 2018, tomgoldstein/loss-landscape cifar10/models/vgg.py (BatchNorm,
  a 256-unit hidden layer with BatchNorm1d, max pools with ceil_mode).
- VGG-16: Garipov et al. 2018, timgaripov/dnn-mode-connectivity models/vgg.py (no
  BatchNorm; two 512-unit layers after dropout).
- WideResNet-28-10: Garipov et al.'s models/wide_resnet.py (Zagoruyko & Komodakis 2016,
  pre-activation blocks; biased convolutions as in that port).
- DenseNet-121 (CIFAR): Li et al.'s cifar10/models/densenet.py (a 3x3 stem, growth 32,
  blocks 6-12-24-16, compression 0.5).
Where the reference pools a fixed window for 32x32 inputs, these pool adaptively to
1x1: the same on 32x32 images, and other sizes work too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class VGG9(nn.Module):
    """Li et al.'s VGG-9: 7 conv-BN-ReLU layers, 3 max pools, Linear-BN1d-ReLU(256), Linear."""

    CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")

    def __init__(self, in_channels: int = 3, image_size: tuple[int, int] = (32, 32), num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = in_channels, image_size
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
                h, w = -(-h // 2), -(-w // 2)
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(c * h * w, c), nn.BatchNorm1d(c), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x).flatten(1)  # (N, 256 * H/8 * W/8)
        return self.classifier(self.fc(out))


class VGG16(nn.Module):
    """Garipov et al.'s VGG-16: 13 conv-ReLU layers in 5 max-pooled blocks, then dropout-512-dropout-512-classes.

    Their VGG16BN variant is left out on purpose: its forward zips each block's
    [conv, bn, conv, bn, ...] with one ReLU per conv, so it skips half of the block.
    """

    BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))

    def __init__(self, in_channels: int = 3, image_size: tuple[int, int] = (32, 32), num_classes: int = 10):
        super().__init__()
        h, w = image_size[0] >> 5, image_size[1] >> 5  # five 2x2 pools, floored
        if h < 1 or w < 1:
            raise ValueError(f"vgg16 needs images of at least 32x32 (five 2x2 max pools), got {image_size[0]}x{image_size[1]}")
        self.layer_blocks, self.activation_blocks, self.poolings = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = in_channels
        for sizes in self.BLOCKS:
            self.layer_blocks.append(nn.ModuleList(nn.Conv2d(i, o, kernel_size=3, padding=1) for i, o in zip((c, *sizes), sizes)))
            self.activation_blocks.append(nn.ModuleList(nn.ReLU(inplace=True) for _ in sizes))
            self.poolings.append(nn.MaxPool2d(kernel_size=2, stride=2))
            c = sizes[-1]
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(512 * h * w, 512), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(512, 512), nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )
        for m in self.modules():  # the reference's initialization
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layers, acts, pool in zip(self.layer_blocks, self.activation_blocks, self.poolings):
            for layer, act in zip(layers, acts):
                x = act(layer(x))
            x = pool(x)  # (N, C, H/2, W/2)
        return self.classifier(x.flatten(1))  # (N, classes)


class WideBasic(nn.Module):
    """Pre-activation wide block: BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3(stride), plus (projected) input."""

    def __init__(self, in_planes: int, planes: int, dropout: float, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, bias=True)
        self.dropout = nn.Dropout(p=dropout)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.conv1(F.relu(self.bn1(x))))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    """WRN-depth-k for CIFAR: (depth - 4) / 6 wide blocks per stage, widths 16k, 32k, 64k."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, depth: int = 28, widen: int = 10, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f"WideResNet depth must be 6n+4 (e.g. 28), got {depth}")
        n = (depth - 4) // 6
        stages = [16, 16 * widen, 32 * widen, 64 * widen]
        self.in_planes = stages[0]
        self.conv1 = nn.Conv2d(in_channels, stages[0], kernel_size=3, padding=1, bias=True)
        self.layer1 = self._stage(stages[1], n, dropout, 1)
        self.layer2 = self._stage(stages[2], n, dropout, 2)
        self.layer3 = self._stage(stages[3], n, dropout, 2)
        self.bn1 = nn.BatchNorm2d(stages[3], momentum=0.9)  # as the reference (PyTorch's momentum: weight of the new batch)
        self.linear = nn.Linear(stages[3], num_classes)

    def _stage(self, planes: int, blocks: int, dropout: float, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(WideBasic(self.in_planes, planes, dropout, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))  # (N, 64k, H/4, W/4)
        out = F.adaptive_avg_pool2d(F.relu(self.bn1(out)), 1).flatten(1)  # (N, 64k)
        return self.linear(out)


class Bottleneck(nn.Module):
    """DenseNet-B layer: BN-ReLU-conv1x1(4g)-BN-ReLU-conv3x3(g), concatenated in front of its input."""

    def __init__(self, in_planes: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNetCifar(nn.Module):
    """DenseNet-BC for 32x32 images: 3x3 stem of 2g channels, four dense blocks, three halving transitions."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, blocks=(6, 12, 24, 16), growth: int = 32,
                 reduction: float = 0.5):
        super().__init__()
        self.growth = growth
        planes = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=3, padding=1, bias=False)
        for i, count in enumerate(blocks, start=1):
            setattr(self, f"dense{i}", self._dense(planes, count))
            planes += count * growth
            if i < len(blocks):
                out = int(math.floor(planes * reduction))
                setattr(self, f"trans{i}", Transition(planes, out))
                planes = out
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)

    def _dense(self, planes: int, count: int) -> nn.Sequential:
        layers = []
        for _ in range(count):
            layers.append(Bottleneck(planes, self.growth))
            planes += self.growth
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.trans1(self.dense1(out))
        out = self.trans2(self.dense2(out))
        out = self.trans3(self.dense3(out))
        out = self.dense4(out)  # (N, 1024, H/8, W/8)
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
        return self.linear(out)


from .model_kinds import ZOO_OPTIONS as OPTIONS  # noqa: E402 (kind -> allowed options, as data)


def build_zoo_model(kind: str, input_shape: tuple[int, ...], num_classes: int, **options) -> nn.Module:
    """A zoo model for images of `input_shape` (C, H, W); `classes` overrides the data's class count."""
    c, h, w = input_shape  # build_model has checked that it is (C, H, W)
    classes = int(options.get("classes", num_classes))
    if classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes}")
    if kind == "vgg9":
        if h < 8 or w < 8:
            raise ValueError(f"vgg9 needs images of at least 8x8 (three 2x2 max pools), got {h}x{w}")
        return VGG9(c, (h, w), classes)
    if kind == "vgg16":
        return VGG16(c, (h, w), classes)
    if kind == "wrn28_10":
        dropout = float(options.get("dropout", 0.0))
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        return WideResNet(c, classes, 28, 10, dropout)
    if kind == "densenet121":
        if h < 8 or w < 8:
            raise ValueError(f"densenet121 needs images of at least 8x8 (three 2x2 average pools), got {h}x{w}")
        return DenseNetCifar(c, classes)
    raise ValueError(f"unknown zoo model {kind!r}")  # pragma: no cover

"""The papers' CIFAR models and torchvision's models by name: parameter counts, outputs, names, errors."""

import pytest
import torch
from torch import nn

from landscape.errors import SpecError
from landscape.factories import ModelFactory
from landscape.models import build_model


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _conv(cin, cout, k=3, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def _linear(cin, cout):
    return cin * cout + cout


def _bn(c):
    return 2 * c


# Counts written out layer by layer from each reference definition (independently of landscape/zoo.py).
def vgg9_count(classes):
    # tomgoldstein/loss-landscape cifar10/models/vgg.py, cfg 'VGG9': conv(3x3, bias)-BN per entry,
    # then Linear(256 * 4 * 4 -> 256)-BN1d and Linear(256 -> classes). The paper gives no count.
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
    return sum(_conv(i, o) + _bn(o) for i, o in convs) + _linear(256 * 16, 256) + _bn(256) + _linear(256, classes)


def vgg16_count(classes):
    # timgaripov/dnn-mode-connectivity models/vgg.py VGG16: 13 biased 3x3 convs, no BN, 512-512-classes.
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    convs = sum(_conv(i, o) for i, o in zip([3] + widths[:-1], widths))
    return convs + _linear(512, 512) + _linear(512, 512) + _linear(512, classes)


def wrn28_10_count(classes, bias=True):
    # Zagoruyko & Komodakis 2016 (Wide Residual Networks), Table: WRN-28-10 has 36.5M parameters
    # (36,479,194 for 10 classes without conv biases); dnn-mode-connectivity's port adds conv biases.
    total = _conv(3, 16, bias=bias)
    cin = 16
    for width, blocks in ((160, 4), (320, 4), (640, 4)):
        for b in range(blocks):
            total += _bn(cin) + _conv(cin, width, bias=bias) + _bn(width) + _conv(width, width, bias=bias)
            if b == 0:
                total += _conv(cin, width, k=1, bias=bias)
            cin = width
    return total + _bn(640) + _linear(640, classes)


def densenet121_cifar_count(classes, imagenet_count):
    # Huang et al. 2017: DenseNet-121 has 8.0M parameters on ImageNet (torchvision: 7,978,856 with 1000
    # classes). Li et al.'s CIFAR variant is the same net with a 3x3 conv stem (3 -> 64, no BN or pool)
    # in place of the 7x7 conv + BN, and `classes` outputs.
    stem_imagenet = _conv(3, 64, k=7, bias=False) + _bn(64)
    return imagenet_count - stem_imagenet + _conv(3, 64, bias=False) - _linear(1024, 1000) + _linear(1024, classes)


def test_wrn28_10_count_matches_the_published_36_5m():
    assert wrn28_10_count(10, bias=False) == 36_479_194
    assert round(wrn28_10_count(10) / 1e6, 1) == 36.5
    # built once (36.5M parameters take seconds): CIFAR-100, as Garipov et al. used it
    assert _count(build_model("wrn28_10", (3, 32, 32), 100)) == wrn28_10_count(100)


@pytest.mark.parametrize("classes", [10, 100])
def test_vgg_counts_match_their_reference_definitions(classes):
    assert _count(build_model("vgg9", (3, 32, 32), classes)) == vgg9_count(classes)
    assert _count(build_model("vgg16", (3, 32, 32), classes)) == vgg16_count(classes)
    assert vgg9_count(10) == 2_789_706 and vgg16_count(10) == 15_245_130


def test_vgg16_convolutions_equal_torchvisions_vgg16_features_and_densenet_its_densenet121():
    from landscape.vision import import_torchvision

    tv = import_torchvision().models
    convs = sum(p.numel() for n, p in build_model("vgg16", (3, 32, 32), 10).named_parameters() if n.startswith("layer_blocks"))
    assert convs == _count(tv.vgg.make_layers(tv.vgg.cfgs["D"])) == 14_714_688  # torchvision's VGG-16 features
    imagenet = _count(tv.densenet121())
    assert imagenet == 7_978_856
    for classes in (10, 100):
        assert _count(build_model("densenet121", (3, 32, 32), classes)) == densenet121_cifar_count(classes, imagenet)


@pytest.mark.parametrize("kind,other", [("vgg9", (1, 12, 10)), ("vgg16", (1, 33, 35)), ("densenet121", (1, 9, 11))])
def test_zoo_outputs_and_classes_option(kind, other):
    torch.manual_seed(0)
    model = build_model(kind, (3, 32, 32), 10, classes=7).eval()
    gray = build_model(kind, other, 3).eval()  # other channels and sizes work too
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
        assert gray(torch.randn(2, *other)).shape == (2, 3)


def test_state_dict_keys_are_the_reference_codes_own():
    # so checkpoints saved by the papers' code load as they are
    keys = {k: set(build_model(k, (3, 32, 32), 10).state_dict()) for k in ("vgg9", "vgg16", "densenet121")}
    assert {"features.0.weight", "features.1.running_var", "fc.0.weight", "fc.1.weight", "classifier.weight"} <= keys["vgg9"]
    assert {"layer_blocks.0.0.weight", "layer_blocks.4.2.bias", "classifier.1.weight", "classifier.6.weight"} <= keys["vgg16"]
    assert {"conv1.weight", "dense1.0.bn1.weight", "dense4.15.conv2.weight", "trans3.conv.weight", "bn.weight",
            "linear.weight"} <= keys["densenet121"]
    # WRN-28-10: checked on its names only, without building 36.5M parameters twice
    from landscape.zoo import WideResNet

    wrn = set(WideResNet(3, 10, depth=10, widen=1).state_dict())
    assert {"conv1.bias", "layer1.0.bn1.weight", "layer2.0.shortcut.0.weight", "bn1.running_mean", "linear.weight"} <= wrn


def test_zoo_refuses_small_images_and_unknown_options():
    with pytest.raises(ValueError, match="vgg16 needs images of at least 32x32"):
        build_model("vgg16", (3, 16, 16), 10)
    with pytest.raises(ValueError, match="unknown option.*'width'.*valid options: classes"):
        build_model("vgg9", (3, 32, 32), 10, width=2)


def test_torchvision_by_name_with_random_weights_and_the_datas_classes():
    f = ModelFactory("torchvision", (3, 32, 32), 10, {"name": "resnet18"}, seed=3)
    a, b = f(), f()
    assert a(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # seeded
    assert _count(a) == 11_181_642  # torchvision's resnet18 with a 10-class head
    wide = ModelFactory("torchvision", (3, 32, 32), 10, {"name": "resnet18", "num_classes": 4})()
    assert wide.fc.out_features == 4


def test_torchvision_unknown_name_lists_close_matches_and_weights_are_refused():
    with pytest.raises(SpecError, match="model.name 'resnet19' is not a torchvision .* close matches: resnet18"):
        ModelFactory("torchvision", (3, 32, 32), 10, {"name": "resnet19"})()
    with pytest.raises(SpecError, match="never downloaded"):
        ModelFactory("torchvision", (3, 32, 32), 10, {"name": "resnet18", "weights": "DEFAULT"})()
    with pytest.raises(SpecError, match="resnet18 refused them"):
        ModelFactory("torchvision", (3, 32, 32), 10, {"name": "resnet18", "depth": 3})()

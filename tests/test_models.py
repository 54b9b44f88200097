"""Tests for landscape.models: shapes, sizes, validation, determinism."""

import pytest
import torch
from torch import nn

from landscape.zoo import OPTIONS as ZOO_OPTIONS
from landscape.models import (
    MLP,
    MODEL_KINDS,
    ResNetCifar,
    SmallCNN,
    build_model,
)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# The zoo's CIFAR models and torchvision's need 32x32 images or a name: tests/test_zoo.py.
@pytest.mark.parametrize("kind", [k for k in MODEL_KINDS if k not in ZOO_OPTIONS and k != "torchvision"])
def test_output_shape_every_kind(kind):
    torch.manual_seed(0)
    shape = (3, 8, 8)  # tiny images keep even resnet110 fast
    model = build_model(kind, shape, num_classes=5)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 5)


@pytest.mark.parametrize("kind", ["mlp", "linear"])
def test_flat_input_kinds(kind):
    model = build_model(kind, (64,), num_classes=10)
    assert model(torch.randn(2, 64)).shape == (2, 10)


def test_mlp_widths_option():
    model = build_model("mlp", (1, 8, 8), 10, widths=[32, 16, 8])
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (64, 32), (32, 16), (16, 8), (8, 10)]
    assert isinstance(model, MLP)


def test_linear_is_single_layer():
    model = build_model("linear", (1, 8, 8), 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 64
    assert _count(model) == 64 * 10 + 10


@pytest.mark.parametrize("size,flat", [((8, 8), 32 * 2 * 2), ((28, 28), 32 * 7 * 7),
                                       ((32, 32), 32 * 8 * 8), ((9, 11), 32 * 2 * 2)])
def test_small_cnn_sizes(size, flat):
    model = SmallCNN(1, size, 10)
    assert model.classifier.in_features == flat
    assert model(torch.randn(2, 1, *size)).shape == (2, 10)


def test_cnn_kind_builds_small_cnn():
    model = build_model("cnn", (1, 8, 8), 10)
    assert isinstance(model, SmallCNN)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_resnet20_param_count():
    n = _count(build_model("resnet20", (3, 32, 32), 10))
    assert 0.26e6 < n < 0.28e6  # He et al. 2016: 0.27M


def test_resnet_width_scales():
    narrow = _count(ResNetCifar(20, width=16))
    wide = _count(ResNetCifar(20, width=32))
    assert 3.5 * narrow < wide < 4.5 * narrow  # conv params grow with width**2
    model = build_model("resnet20", (3, 8, 8), 10, width=8)
    assert model.linear.in_features == 32


def test_noshort_has_no_projection_convs():
    def one_by_one(model):
        return [m for m in model.modules()
                if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]

    with_short = build_model("resnet20", (3, 32, 32), 10)
    no_short = build_model("resnet20_noshort", (3, 32, 32), 10)
    assert len(one_by_one(with_short)) == 2  # stage 2 and 3 entries
    assert one_by_one(no_short) == []
    assert _count(no_short) < _count(with_short)


def test_noshort_ignores_identity_path():
    # With every conv weight zeroed a residual net still passes x through;
    # the no-shortcut net must output only the linear bias.
    torch.manual_seed(0)
    model = ResNetCifar(8, num_classes=3, shortcut=False).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m is not model.conv1:
                m.weight.zero_()
        out = model(torch.randn(2, 3, 8, 8))
    assert torch.allclose(out, model.linear.bias.expand(2, 3))


@pytest.mark.parametrize("depth", [21, 0, 2, 19])
def test_bad_depth_raises(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        ResNetCifar(depth)


def test_cnn_needs_image_input():
    with pytest.raises(ValueError, match=r"\(C, H, W\).*\(64,\)"):
        build_model("cnn", (64,), 10)


def test_resnet_needs_image_input():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        build_model("resnet20", (64,), 10)


def test_unknown_kind_lists_valid():
    with pytest.raises(ValueError, match="resnet21") as info:
        build_model("resnet21", (3, 32, 32), 10)
    for kind in MODEL_KINDS:
        assert kind in str(info.value)


def test_unknown_option_names_it():
    with pytest.raises(ValueError, match="depth") as info:
        build_model("resnet20", (3, 32, 32), 10, depth=32)
    assert "width" in str(info.value)
    with pytest.raises(ValueError, match="width"):
        build_model("linear", (64,), 10, width=3)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "resnet20", "resnet20_noshort", "linear"])
def test_eval_mode_deterministic(kind):
    torch.manual_seed(0)
    model = build_model(kind, (1, 8, 8), 4)
    x = torch.randn(2, 1, 8, 8)
    model.train()
    model(x)  # update BN running stats so eval uses non-default values
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)
    # Same seed, same weights: building is reproducible.
    torch.manual_seed(0)
    again = build_model(kind, (1, 8, 8), 4)
    for p, q in zip(model.parameters(), again.parameters()):
        assert torch.equal(p, q)


def test_resnet_kaiming_init_and_no_conv_bias():
    model = ResNetCifar(20)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is None for m in convs)
    std = convs[1].weight.std().item()  # 16->16 3x3, fan_out=144
    assert abs(std - (2 / 144) ** 0.5) < 0.03

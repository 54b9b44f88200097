import pytest
import torch
from torch import nn

from landscape.directions import normalize_direction, random_directions
from landscape.params import StateLayout


def _bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.Flatten(), nn.Linear(5 * 4 * 4, 7))


def test_filter_normalization_matches_each_filter_norm_and_zeroes_biasbn():
    model = _bn_model()
    layout = StateLayout.of(model)
    origin = layout.flatten(model.state_dict())
    (d,) = random_directions(layout, origin, 1, seed=1, normalization="filter", ignore="biasbn")
    dp, wp = layout.unflatten(d), layout.unflatten(origin)
    for e in layout.entries:
        if not e.is_param or len(e.shape) == 1:
            assert torch.count_nonzero(dp[e.name]) == 0, e.name  # biases, BN affine and BN buffers
            continue
        dn = dp[e.name].reshape(e.shape[0], -1).norm(dim=1)
        wn = wp[e.name].reshape(e.shape[0], -1).norm(dim=1)
        torch.testing.assert_close(dn, wn, rtol=1e-5, atol=0)


def test_ignore_none_sets_1d_entries_to_the_weights_like_li_et_al():
    model = _bn_model()
    layout = StateLayout.of(model)
    origin = layout.flatten(model.state_dict())
    (d,) = random_directions(layout, origin, 1, seed=1, ignore="none")
    assert torch.equal(layout.unflatten(d)["3.bias"], layout.unflatten(origin)["3.bias"])
    assert torch.count_nonzero(layout.unflatten(d)["1.running_var"]) == 0  # buffers never move


def test_layer_weight_none_normalizations():
    model = _bn_model()
    layout = StateLayout.of(model)
    origin = layout.flatten(model.state_dict())
    raw = torch.randn(layout.size, generator=torch.Generator().manual_seed(0))
    layer = layout.unflatten(normalize_direction(raw, origin, layout, "layer"))["0.weight"]
    assert layer.norm().item() == pytest.approx(layout.unflatten(origin)["0.weight"].norm().item(), rel=1e-5)
    weight = layout.unflatten(normalize_direction(raw, origin, layout, "weight"))["3.weight"]
    expected = layout.unflatten(raw)["3.weight"] * layout.unflatten(origin)["3.weight"]
    torch.testing.assert_close(weight, expected)
    none = layout.unflatten(normalize_direction(raw, origin, layout, "none"))["3.weight"]
    torch.testing.assert_close(none, layout.unflatten(raw)["3.weight"])


def test_directions_are_seeded_gaussian_and_distinct():
    model = nn.Linear(200, 100)
    layout = StateLayout.of(model)
    origin = layout.flatten(model.state_dict())
    a = random_directions(layout, origin, 2, seed=5, normalization="none")
    b = random_directions(layout, origin, 2, seed=5, normalization="none")
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    w = layout.unflatten(a[0])["weight"].flatten()
    # Gaussian, not uniform: kurtosis near 3 (uniform would be 1.8).
    kurt = ((w - w.mean()) ** 4).mean() / w.var() ** 2
    assert 2.7 < kurt.item() < 3.3

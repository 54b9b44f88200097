"""How the evaluator plans its memory, and which first layers the shortcut takes."""

import pytest
import torch
from torch import nn

from landscape.plan import COMPILE_MIN_POINTS, CPU_BUDGET_BYTES, EvalOptions, make_plan
from landscape.shortcut import first_layer

CPU = torch.device("cpu")


def test_cpu_plan_is_fixed_and_fits_its_budget():
    per_sample = 1 << 20  # 1 MiB of activations per sample
    plan = make_plan(EvalOptions(points_per_pass=8), CPU, 100_000, per_sample, None, has_conv=True, image_inputs=True)
    assert plan.points_per_pass * plan.data_chunk * per_sample <= CPU_BUDGET_BYTES
    assert plan.budget_bytes == CPU_BUDGET_BYTES  # not the free memory: same plan on every CPU actor
    assert not plan.cuda_graphs and not plan.compile


def test_points_per_pass_shrinks_before_the_data_chunk():
    per_sample = CPU_BUDGET_BYTES // 64
    plan = make_plan(EvalOptions(points_per_pass=16, data_chunk=64), CPU, 64, per_sample, None, False, False)
    assert (plan.points_per_pass, plan.data_chunk) == (1, 64)
    plan = make_plan(EvalOptions(points_per_pass=16, data_chunk=64), CPU, 64, per_sample * 4, None, False, False)
    assert (plan.points_per_pass, plan.data_chunk) == (1, 16)


def test_shortcut_only_when_its_tensors_fit():
    fits = make_plan(EvalOptions(), CPU, 1000, 100, shortcut_bytes_per_sample=1000, has_conv=False, image_inputs=False)
    too_big = make_plan(EvalOptions(), CPU, 1000, 100, CPU_BUDGET_BYTES // 1000, False, False)
    off = make_plan(EvalOptions(shortcut=False), CPU, 1000, 100, 1000, False, False)
    assert fits.shortcut and not too_big.shortcut and not off.shortcut


def test_compile_obeys_an_explicit_choice_and_needs_one_point_per_pass():
    big = EvalOptions(expected_points=10 * COMPILE_MIN_POINTS, compile=False)
    assert not make_plan(big, CPU, 10, 10, None, True, True).compile
    assert make_plan(EvalOptions(compile=True), CPU, 10, 10, None, True, True).compile
    assert not make_plan(EvalOptions(compile=True, points_per_pass=4), CPU, 10, 10, None, True, True).compile


class Scaled(nn.Module):
    """Owns a parameter itself, used before any layer: no shortcut is exact."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x * self.scale)


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.fc(x)))


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.norm(x))


@pytest.mark.parametrize(
    "model,want",
    [
        (nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), "1"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), "0"),
        (Scaled(), None),  # the root's own parameter comes first
        (Twice(), None),  # called twice: its output is not linear in the parameters
        (Normed(), None),  # LayerNorm is not linear in its input's parameters
    ],
)
def test_first_layer_is_taken_only_where_the_shortcut_is_exact(model, want):
    x = torch.randn(2, 1, 4, 4) if isinstance(model[0] if isinstance(model, nn.Sequential) else None, nn.Conv2d) else torch.randn(2, 4)
    assert first_layer(model, x) == want

"""Models that are not plain tensor -> logits functions: dict/object outputs, token ids, no vmap."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jobs.common.build import prepare
from jobs.specs import ImportData, ModelSpec
from landscape.errors import DataError
from landscape.evaluator import Evaluator
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem, check_data_fits
from landscape.slices import random_slice

from .independent import state_at
from .token_factories import make_branchy, make_token_model


def _problem(model_path, data_path, options=None, **eval_options):
    p = prepare(ImportData(kind="import", factory=data_path), ModelSpec(kind="import", factory=model_path, options=options or {}))
    model = p.factory()
    layout = StateLayout.of(model)
    sl = random_slice(layout, layout.flatten(model.state_dict()), 2, seed=5)
    return p, ScanProblem(p.factory, sl, p.inputs, p.targets, options=EvalOptions(**eval_options))


def _reference(problem, coords, model, logits_of):
    """Plain PyTorch on the user's own model (no landscape adapter): weights at the point, its logits, mean cross-entropy."""
    origin = {k: v.clone() for k, v in problem.model_factory().state_dict().items()}
    dirs = [problem.slice.layout.unflatten(d) for d in problem.slice.directions]
    model.load_state_dict(state_at(model, origin, dirs, coords))
    with torch.no_grad():
        logits = logits_of(model(problem.inputs))
    return F.cross_entropy(logits, problem.targets).item(), (logits.argmax(1) == problem.targets).float().mean().item()


@pytest.mark.parametrize("output", ["dict", "object"])
def test_token_ids_stay_integer_and_dict_or_object_outputs_give_their_logits(output):
    p, problem = _problem("tests.token_factories:make_token_model", "tests.token_factories:make_token_data", {"output": output})
    assert p.inputs.dtype == torch.int64 and any("stay int64" in n for n in p.notes)
    ev = Evaluator(problem, device="cpu")
    assert ev.inputs.dtype == torch.int64 and not ev.plan.shortcut  # an embedding first layer: no shortcut
    coords = np.array([[0.0, 0.0], [0.7, -0.3], [-1.2, 0.4]])
    got = ev.evaluate(coords)
    for i, c in enumerate(coords):
        want = _reference(problem, c, make_token_model(output), lambda out: out["logits"] if output == "dict" else out.logits)
        assert got["loss"][i] == pytest.approx(want[0], rel=1e-5) and got["accuracy"][i] == pytest.approx(want[1])
    assert isinstance(p.factory()(p.inputs[:2]), torch.Tensor)  # the factory's model gives logits on every path


def test_integer_inputs_of_a_float_model_are_cast_to_float32_as_before():
    p = prepare(ImportData(kind="import", factory="tests.token_factories:make_byte_images"),
                ModelSpec(kind="import", factory="tests.token_factories:make_byte_model"))
    assert p.inputs.dtype == torch.float32 and "inputs cast from uint8 to float32" in p.notes
    assert p.inputs.max() > 1  # values kept, only the type changes


def test_vmap_that_does_not_apply_falls_back_to_one_point_per_pass_and_says_so():
    p, problem = _problem("tests.token_factories:make_branchy", "tests.user_factories:make_data", points_per_pass=4)
    ev = Evaluator(problem, device="cpu")
    assert ev.plan.points_per_pass == 1
    assert "vmap does not apply" in ev.describe()["vmap_fallback"]
    coords = np.array([[0.3, 0.1], [-0.5, 0.9]])
    got = ev.evaluate(coords)
    for i, c in enumerate(coords):
        assert got["loss"][i] == pytest.approx(_reference(problem, c, make_branchy(), lambda out: out)[0], rel=1e-5)
    # a model vmap handles keeps K points per pass, with nothing to report
    _, plain = _problem("tests.user_factories:make_model", "tests.user_factories:make_data", points_per_pass=4)
    ev = Evaluator(plain, device="cpu")
    assert ev.plan.points_per_pass == 4 and ev.describe()["vmap_fallback"] is None


def test_an_output_without_logits_is_one_clear_error():
    factory = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Unflatten(1, (3, 1)))  # noqa: E731
    class Pair(torch.nn.Module):
        def forward(self, x):
            return (x, x)
    with pytest.raises(DataError, match="returns tuple, not a tensor .* nor an object or dict with `logits`"):
        check_data_fits(Pair, torch.randn(4, 4), torch.zeros(4, dtype=torch.long), "cross_entropy")
    with pytest.raises(DataError, match="outputs \\(3, 1\\) values per sample but the data set has 3 classes"):
        check_data_fits(factory, torch.randn(4, 4), torch.zeros(4, dtype=torch.long), "cross_entropy", classes=3)


def test_integer_inputs_the_model_refuses_either_way_stay_integers_so_the_real_error_is_reported():
    from landscape.adapters import fit_input_dtype

    embed = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    ok, note = fit_input_dtype(embed, torch.tensor([[1, 2, 3], [4, 5, 6]]))
    assert ok.dtype == torch.int64 and "stay int64" in note
    past_vocab, _ = fit_input_dtype(embed, torch.tensor([[1, 2, 30], [4, 5, 6]]))  # id 30 >= 10: an index error
    assert past_vocab.dtype == torch.int64  # not cast to float, which would report a misleading "expected Long"
    wrong_width, note = fit_input_dtype(nn.Linear(4, 2), torch.tensor([[1, 2, 3], [4, 5, 6]]))
    assert wrong_width.dtype == torch.float32 and "cast" in note  # a dtype refusal first: the shape error comes as floats

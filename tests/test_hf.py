"""transformers through `kind: import`: the documented example (jobs/examples/*hf_bert*) trained, scanned
through a real local Ray, and checked against plain PyTorch on the Hugging Face model itself."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from landscape.vision import prepare_torchvision

prepare_torchvision()  # transformers imports torchvision when it is installed
pytest.importorskip("transformers", reason="transformers is not installed (optional extra): pip install -e '.[hf]'")

EXAMPLES = Path(__file__).resolve().parents[1] / "jobs" / "examples"
N = 48  # token sequences: tiny, CPU seconds


def _example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.fixture(scope="module")
def trained_bert(tmp_path_factory):
    from jobs.specs import TrainSpec
    from jobs.training.train import run_train

    d = _example("train_hf_bert.yaml")
    d["data"]["kwargs"]["n"] = N
    d["epochs"] = 1
    out = tmp_path_factory.mktemp("bert")
    d["output"] = str(out)
    return d, run_train(TrainSpec.model_validate(d))


@pytest.mark.ray
def test_the_bert_example_scans_through_ray_and_matches_plain_pytorch(ray_cluster, trained_bert, tmp_path):
    from cluster.store import ResultStore
    from jobs.examples.hf_text import make_model, make_tokens
    from jobs.scan.point import point_state
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec

    train, run = trained_bert
    d = _example("hf_bert_random_plane.yaml")
    d["data"]["kwargs"]["n"] = N
    d["slice"]["checkpoint"] = str(run / "epoch_001.pt")
    d["grid"] = {"x": {"min": -0.8, "max": 0.4, "num": 4}, "y": {"min": -0.2, "max": 1.0, "num": 3}}  # non-square, asymmetric
    d["tile"] = [2, 3]
    out = tmp_path / "bert.zarr"
    run_scan(ScanSpec.model_validate(d), out=str(out), actors=1, plot=False)

    store = ResultStore.open(str(out))
    meta = store.meta
    [plan] = meta["evaluator_plans"]
    assert plan["points_per_pass"] == 1 and plan["shortcut"] is False  # CPU: one point per pass; an embedding comes first
    assert any("stay int64" in n for n in meta["notes"])
    loss, acc = store.group["loss"][...], store.group["accuracy"][...]
    assert loss.shape == (3, 4) and np.isfinite(loss).all()

    ids, labels = make_tokens(**d["data"]["kwargs"])
    model = make_model(**d["model"]["options"]).eval()  # the Hugging Face model as is: it returns an output object
    xs, ys = np.linspace(-0.8, 0.4, 4), np.linspace(-0.2, 1.0, 3)
    rng = np.random.default_rng(0)
    for i, j in [(0, 0), (2, 3)] + [tuple(rng.integers((3, 4))) for _ in range(3)]:
        model.load_state_dict(point_state(str(out), xs[j], ys[i]))
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        assert loss[i, j] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5), (i, j)
        assert acc[i, j] == pytest.approx((logits.argmax(1) == labels).float().mean().item())


def test_vmap_applies_to_bert_k_points_per_pass_equal_one_at_a_time(trained_bert):
    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec
    from landscape.evaluator import Evaluator
    from landscape.plan import EvalOptions

    train, run = trained_bert
    d = _example("hf_bert_random_plane.yaml")
    d["data"]["kwargs"]["n"] = N
    d["slice"]["checkpoint"] = str(run / "epoch_001.pt")
    problem = build_problem(ScanSpec.model_validate(d)).problem
    one = Evaluator(problem, device="cpu")
    problem.options = EvalOptions(points_per_pass=4)
    four = Evaluator(problem, device="cpu")
    assert four.plan.points_per_pass == 4 and four.describe()["vmap_fallback"] is None
    coords = np.array([[0.0, 0.0], [0.5, -0.5], [-1.0, 0.3], [0.2, 0.9], [0.7, 0.7]])  # 5: one full pass and a padded one
    a, b = one.evaluate(coords), four.evaluate(coords)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    np.testing.assert_array_equal(b["accuracy"], a["accuracy"])

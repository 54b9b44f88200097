"""Train and test in one scan: digits' seeded stratified split, `eval: [train, test]`, and BatchNorm statistics
re-estimated on the training split for a test curve (Garipov et al.'s test curves), against plain loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from jobs.common.build import load_data
from jobs.scan.problem import build_problem
from jobs.scan.run import result_metrics
from jobs.specs import DigitsData, ScanSpec
from landscape import data as datasets
from landscape.curves import curve_slice
from landscape.factories import ModelFactory
from landscape.params import StateLayout
from landscape.plan import EvalOptions
from landscape.problem import ScanProblem
from landscape.splits import SplitsEvaluator, evaluator_for

from .conftest import TINY_MODEL, scan_spec_dict
from .independent import reference_loss, state_at
from .test_batchnorm import update_bn


def test_digits_split_is_seeded_stratified_disjoint_and_complete():
    _, y = datasets.digits()
    test = datasets.stratified_split(y, "test", 0.25, seed=0)
    train = datasets.stratified_split(y, "train", 0.25, seed=0)
    assert len(set(test.tolist()) & set(train.tolist())) == 0 and len(test) + len(train) == len(y)
    for c in range(10):
        n_c = int((y == c).sum())
        assert int((y[test] == c).sum()) == round(0.25 * n_c)  # every class in proportion
    assert torch.equal(test, datasets.stratified_split(y, "test", 0.25, seed=0))  # seeded
    assert not torch.equal(test, datasets.stratified_split(y, "test", 0.25, seed=1))
    x_te, y_te = load_data(DigitsData.model_validate({"kind": "digits", "split": "test"}))
    assert torch.equal(y_te, y[test]) and len(x_te) == len(test)
    # no split: the spec reads (and hashes) as before
    assert "split" not in DigitsData.model_validate({"kind": "digits"}).model_dump(mode="json")


def _curve_problem():
    """Three resnet20 (width 4) states with very different running statistics, joined by a Bezier curve, on digits."""
    x, y = datasets.digits()
    tr, te = (datasets.stratified_split(y, s, 0.25, seed=0)[:n] for s, n in (("train", 300), ("test", 120)))  # small: fast
    factory = ModelFactory("resnet20", (1, 8, 8), 10, {"width": 4}, seed=0)
    models = [ModelFactory("resnet20", (1, 8, 8), 10, {"width": 4}, seed=s)() for s in (0, 1, 2)]
    for m, scale in zip(models, (0.5, 1.0, 3.0)):
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_var.fill_(scale)
    states = [m.state_dict() for m in models]
    layout = StateLayout.of(models[0])
    sl = curve_slice(layout, "bezier", *[layout.flatten(s) for s in states])
    sl.companions = {}
    return factory, states, sl, (x[tr], y[tr]), (x[te], y[te])


def test_a_test_curve_with_training_set_batchnorm_statistics_equals_a_plain_loop(one_thread):
    factory, states, sl, (x_tr, y_tr), (x_te, y_te) = _curve_problem()
    options = EvalOptions(batchnorm="recompute", batchnorm_batch=128, data_chunk=500)
    problem = ScanProblem(factory, sl, x_tr, y_tr, options=options, bn_inputs=x_tr, splits={"test": (x_te, y_te)})
    ev = evaluator_for(problem, device="cpu")
    assert isinstance(ev, SplitsEvaluator) and ev.metric_names == ["loss", "loss_se", "accuracy", "accuracy_se", "test_loss", "test_loss_se", "test_accuracy", "test_accuracy_se"]
    t = np.array([0.0, 0.35, 0.8])
    got = ev.evaluate(t[:, None])
    zero = {k: 0 * v if v.is_floating_point() else v for k, v in states[0].items()}
    for i, ti in enumerate(t):
        ref = factory()
        ref.load_state_dict({**ref.state_dict(), **state_at(ref, zero, states, ((1 - ti) ** 2, 2 * ti * (1 - ti), ti**2))})
        update_bn(ref, x_tr, 128)  # statistics from the training split...
        bn_train = {k: v.clone() for k, v in ref.state_dict().items()}
        want_train = reference_loss(ref, bn_train, x_tr, y_tr)
        want_test = reference_loss(ref, bn_train, x_te, y_te)  # ...then evaluated on the test split
        assert got["loss"][i] == pytest.approx(want_train[0], rel=1e-5) and got["accuracy"][i] == pytest.approx(want_train[1])
        assert got["test_loss"][i] == pytest.approx(want_test[0], rel=1e-5), ti
        assert got["test_accuracy"][i] == pytest.approx(want_test[1], abs=1e-6)
        update_bn(ref, x_te, 128)  # the test split's own statistics give another number: the source matters
        assert abs(reference_loss(ref, ref.state_dict(), x_te, y_te)[0] - want_test[0]) > 1e-4


def test_a_scan_spec_with_eval_splits_builds_both_splits_and_names_their_arrays(tiny_run):
    d = scan_spec_dict(tiny_run, data={"kind": "digits", "subset": 200}, eval=["train", "test"])
    spec = ScanSpec.model_validate(d)
    built = build_problem(spec)
    p = built.problem
    assert len(p.inputs) == 200 and list(p.splits) == ["test"] and len(p.splits["test"][0]) == 200
    assert p.bn_inputs is None  # no batchnorm_data: each split its own samples
    train_x = load_data(DigitsData.model_validate({"kind": "digits", "subset": 200, "split": "train"}))[0]
    assert torch.equal(p.inputs, train_x)
    assert list(result_metrics(spec, p.slice)) == ["loss", "loss_se", "accuracy", "accuracy_se", "test_loss", "test_loss_se", "test_accuracy", "test_accuracy_se"]


@pytest.mark.parametrize("extra, message", [
    ({"data": {"kind": "synthetic", "n": 10, "shape": [4]}, "eval": ["train", "test"]}, "has no splits"),
    ({"eval": ["train", "valid"]}, "has no split 'valid'"),
    ({"eval": ["test", "test"]}, "twice"),
    ({"batchnorm_data": "train"}, "only with batchnorm: recompute"),
])
def test_bad_split_requests_are_refused_with_what_to_fix(tiny_run, extra, message):
    d = {**scan_spec_dict(tiny_run), **extra}
    with pytest.raises(ValueError, match=message):
        ScanSpec.model_validate(d)

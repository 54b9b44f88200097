"""One subset rule for every data kind (landscape/subsets.py): stratified for class labels, uniform otherwise,
an oversized subset refused; and the identities of the specs whose samples it changed."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
import yaml
from pydantic import TypeAdapter

from cluster.store import ResultStore, ResultWriter
from jobs.common.build import load_data, load_data_full
from jobs.specs import DataSpec, GradientsSpec
from jobs.specs.subset_rule import former_identities
from landscape.data import digits, synthetic
from landscape.errors import DataError

from .conftest import TINY_DATA, TINY_MODEL
from .one_line import run_bad
from .user_factories import make_data


def _data(d: dict):
    return TypeAdapter(DataSpec).validate_python(d)


def _largest_remainder(labels: np.ndarray, size: int) -> dict[int, int]:
    """Per class, written independently of stratified_indices: exact shares in fractions, the leftover samples to the
    largest remainders (ties to the lower class)."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = {int(c): Fraction(size * int(k), len(labels)) for c, k in zip(classes, counts)}
    take = {c: int(e) for c, e in exact.items()}  # floor: the shares are >= 0
    for c in sorted(exact, key=lambda c: (-(exact[c] - take[c]), c))[: size - sum(take.values())]:
        take[c] += 1
    return take


class Labelled(torch.utils.data.Dataset):
    """A map-style Dataset with torchvision's `targets`: 3 classes of 40, 12 and 8 items (each read is counted)."""

    reads: list[int] = []

    def __init__(self):
        self.targets = [0] * 40 + [1] * 12 + [2] * 8

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        Labelled.reads.append(i)
        return torch.tensor([float(i)]), self.targets[i]


def labelled_dataset():
    return Labelled()


@pytest.mark.parametrize("spec, full", [
    ({"kind": "digits", "subset": 97, "seed": 3}, lambda: digits()),
    ({"kind": "synthetic", "n": 400, "shape": [5], "classes": 4, "subset": 33, "seed": 1}, lambda: synthetic(400, (5,), 4, 1)),
    ({"kind": "import", "factory": "tests.user_factories:make_data", "kwargs": {"n": 30}, "subset": 11, "seed": 2},
     lambda: make_data(30)),
    ({"kind": "import", "factory": "tests.test_subset_rule:labelled_dataset", "subset": 15},
     lambda: (None, torch.tensor(Labelled().targets))),
], ids=["digits", "synthetic", "factory", "factory-dataset"])
def test_every_kind_keeps_each_class_share_and_samples_by_seed(spec, full, monkeypatch):
    _, y_all = full()
    Labelled.reads.clear()
    x, y = load_data(_data(spec))
    assert len(x) == spec["subset"] and len(y) == spec["subset"]
    got = dict(zip(*[v.tolist() for v in torch.unique(y, return_counts=True)]))
    want = {c: k for c, k in _largest_remainder(y_all.numpy(), spec["subset"]).items() if k}
    assert got == want
    if "labelled" in spec.get("factory", ""):
        assert len(Labelled.reads) == 15 and got == {0: 10, 1: 3, 2: 2}  # only the subset's items are read
    if spec["kind"] != "synthetic":  # (synthetic data's seed makes the data too)
        other_x, other_y = load_data(_data({**spec, "seed": spec.get("seed", 0) + 1}))
        assert not torch.equal(other_x, x) and sorted(other_y.tolist()) == sorted(y.tolist())  # another draw, same counts


def test_regression_and_token_targets_are_sampled_uniformly_as_before(tmp_path):
    d = {"kind": "synthetic", "n": 50, "shape": [3], "classes": 2, "task": "regression", "subset": 7, "seed": 4}
    x, y = load_data(_data(d))
    idx = torch.randperm(50, generator=torch.Generator().manual_seed(4))[:7].sort()[0]  # the rule before, verbatim
    xa, ya = synthetic(50, (3,), 2, 4, "regression")
    assert torch.equal(x, xa[idx]) and torch.equal(y, ya[idx])
    tokens = tmp_path / "t.npy"
    np.save(tokens, np.arange(100, dtype=np.uint16))
    text = {"kind": "text", "path": str(tokens), "block_size": 9}
    whole = load_data_full(_data(text))
    part = load_data_full(_data({**text, "subset": 4, "seed": 2}))
    keep = torch.randperm(len(whole.inputs), generator=torch.Generator().manual_seed(2))[:4].sort()[0]
    assert torch.equal(part.inputs, whole.inputs[keep]) and torch.equal(part.targets, whole.targets[keep])
    with pytest.raises(DataError) as e:
        load_data_full(_data({**text, "subset": len(whole.inputs) + 1}))
    assert str(e.value).count("\n") == 0 and f"is larger than the token blocks of {str(tokens)!r} ({len(whole.inputs)} samples)" in str(e.value)


def _sha16(d) -> str:  # the identity formula, written out
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _grads(data: dict) -> GradientsSpec:
    return GradientsSpec.model_validate({"name": "g", "model": TINY_MODEL, "data": data, "record": "epoch", "epochs": 1})


def test_only_the_specs_whose_samples_changed_change_identity():
    for data in ({"kind": "digits"}, {"kind": "digits", "split": "train"},
                 {"kind": "synthetic", "n": 50, "shape": [3], "task": "regression", "subset": 7},
                 {"kind": "cifar10", "root": "somewhere", "subset": 100}):
        spec = _grads(data)
        assert spec.identity() == _sha16(spec.model_dump(mode="json", exclude={"output", "cluster"})), data
        assert former_identities(spec.identity) == {}
    for data in (TINY_DATA, {"kind": "synthetic", "n": 50, "shape": [3], "subset": 7},
                 {"kind": "import", "factory": "tests.user_factories:make_data", "subset": 7}):
        spec = _grads(data)
        before = _sha16(spec.model_dump(mode="json", exclude={"output", "cluster"}))  # the identity results made before carry
        dump = spec.model_dump(mode="json", exclude={"output", "cluster"})
        assert spec.identity() == _sha16({**dump, "data": {**dump["data"], "subset_rule": 2}}) != before
        assert list(former_identities(spec.identity)) == [before]
        assert "subset_rule" not in json.dumps(spec.model_dump(mode="json"))  # a result records the spec as written


def test_a_result_of_the_earlier_rule_is_refused_in_one_line_and_still_opens(tmp_path, capsys):
    spec = _grads(TINY_DATA)
    (before,) = former_identities(spec.identity)
    out = tmp_path / "old.zarr"
    with ResultWriter(str(out), identity=before, what="gradients") as w:  # as the earlier rule made it
        w.create([], {"name": "g"})
        w.finish()
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    run_bad(capsys, ["gradients", str(path), "--out", str(out), "--no-plot"],
            "holds a gradients ('g') of this spec, but the data sampling changed", "--overwrite", "another --out")
    assert ResultStore.open(str(out)).meta["status"] == "complete"  # left alone, and it opens


@pytest.mark.parametrize("data", [
    {"kind": "digits", "split": "test", "subset": 451},
    {"kind": "import", "factory": "tests.test_subset_rule:labelled_dataset", "subset": 61},
], ids=["digits-test", "factory-dataset"])  # digits, synthetic and factory tensors: tests/bad_input_cases.py
def test_an_oversized_subset_is_refused_in_one_line_naming_the_data_size(data, tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(_grads(data).model_dump(mode="json")))
    size = 60 if data["kind"] == "import" else sum(round(0.25 * int(k)) for k in np.bincount(digits()[1].numpy()))  # the test split
    run_bad(capsys, ["validate", str(path)], f"data.subset {data['subset']:,} is larger than", f"({size:,} samples)",
            f"use at most {size:,}")


def test_a_training_finished_under_the_earlier_rule_is_not_taken_as_this_specs(tmp_path, capsys):
    from jobs.specs import TrainSpec
    from jobs.specs.subset_rule import earlier_rule

    spec = TrainSpec.model_validate({"name": "t", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 1})
    with earlier_rule():  # what train.json recorded of the spec before the rule
        before = spec.model_dump(mode="json", exclude={"output"}, context={"identity": True})
    assert before == spec.model_dump(mode="json", exclude={"output"})
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.json").write_text(json.dumps({"spec": before, "finished": True, "files": []}))
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    run_bad(capsys, ["train", str(path), "--out", str(run)], "holds a run of this spec, but the data sampling changed",
            "--overwrite")


def test_curvature_at_a_scan_of_the_earlier_rule_refuses_to_resample_its_data(tmp_path, capsys):
    """`hessian` at a scan result without its own data: re-reads the scan's data spec, whose subset now keeps other
    samples if the scan predates the rule: refused in one line (before any weight is read); with data: given, it runs."""
    from jobs.specs import ScanSpec

    from .conftest import scan_spec_dict

    scan = ScanSpec.model_validate(scan_spec_dict(tmp_path))  # digits with subset: its samples changed with the rule
    (before,) = former_identities(scan.identity)
    out = tmp_path / "old-scan.zarr"
    with ResultWriter(str(out), identity=before) as w:
        w.create([], {"name": scan.name, "spec": scan.model_dump(mode="json")})
        w.finish()
    at = {"result": str(out), "x": 0.0, "y": 0.0}
    for command, extra in (("hessian", {"top_k": 1}), ("sharpness", {})):
        spec = tmp_path / f"{command}.yaml"
        spec.write_text(yaml.safe_dump({"name": command, "at": at, **extra}))
        run_bad(capsys, [command, str(spec), "--out", str(tmp_path / f"{command}.zarr")],
                "was scanned before the one subset rule", "give data:", "run the scan again")
    assert not (tmp_path / "hessian.zarr").exists()

"""`params: [glob, ...]` on slices: directions zero outside the chosen tensors, the result says what moved."""

import pytest
import torch

from landscape.errors import SpecError
from landscape.param_select import entry_mask, moved, select
from landscape.params import StateLayout
from tests.conftest import scan_spec_dict


def _layout():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    return StateLayout.of(net)


def test_globs_and_the_weights_keyword():
    layout = _layout()
    assert select(layout, ["2.*"]) == ["2.weight", "2.bias"]
    assert select(layout, ["weights"]) == ["0.weight", "2.weight"]  # dimension > 1 only
    assert select(layout, ["1.*"]) == ["1.weight", "1.bias"]  # BatchNorm's running statistics are buffers: never chosen
    assert select(layout, ["*.bias", "0.weight"]) == ["0.weight", "0.bias", "1.bias", "2.bias"]  # layout order
    with pytest.raises(SpecError, match=r"params: 'layer9\.\*' matches no parameter; parameter names look like 0.weight"):
        select(layout, ["layer9.*"])
    m = entry_mask(layout, ["2.bias"])
    assert int(m.sum()) == 2 and bool(m[-2:].all())


def _built(tiny_run, **slice_extra):
    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec

    d = scan_spec_dict(tiny_run)
    d["slice"].update(slice_extra)
    return build_problem(ScanSpec.model_validate(d))


def test_random_plane_moves_only_the_chosen_tensors(tiny_run):
    full = _built(tiny_run).problem.slice
    part = _built(tiny_run, params=["net.2.*"]).problem.slice
    layout = part.layout
    inside = entry_mask(layout, ["net.2.weight", "net.2.bias"])
    assert bool((part.directions[:, ~inside] == 0).all())
    torch.testing.assert_close(part.directions[:, inside], full.directions[:, inside], rtol=0, atol=0)  # same draws
    assert part.info["moved"] == ["net.2.weight"] and part.info["params"] == ["net.2.*"]  # biasbn zeroes the bias
    assert full.info["moved"] == ["net.0.weight", "net.2.weight"] and full.info["params"] is None
    none = _built(tiny_run, params=["net.2.*"], ignore="none").problem.slice
    assert none.info["moved"] == ["net.2.weight", "net.2.bias"]
    assert _built(tiny_run, params=["weights"]).problem.slice.info["moved"] == ["net.0.weight", "net.2.weight"]


def test_random_plane_of_biases_only_is_refused(tiny_run):
    with pytest.raises(SpecError, match="only 1-D parameters"):
        _built(tiny_run, params=["*.bias"])


def test_line_between_restricted_reaches_the_block_of_b(tiny_run):
    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec
    from landscape.checkpoints import load_state
    from landscape.slices import combine

    a, b = tiny_run / "epoch_001.pt", tiny_run / "epoch_003.pt"
    d = scan_spec_dict(tiny_run, slice={"kind": "line_between", "checkpoints": [str(a), str(b)], "params": ["net.0.*"]},
                       grid={"x": {"min": -0.5, "max": 1.5, "num": 5}}, tile=3)
    sl = build_problem(ScanSpec.model_validate(d)).problem.slice
    assert sl.info["moved"] == ["net.0.weight", "net.0.bias"]
    model = build_problem(ScanSpec.model_validate(d)).problem.model_factory()
    end = sl.layout.unflatten(combine(sl.origin, sl.directions, [1.0]))
    sa, sb = load_state(a, model), load_state(b, model)
    for name in ("net.0.weight", "net.0.bias"):
        torch.testing.assert_close(end[name], sb[name])
    for name in ("net.2.weight", "net.2.bias"):
        torch.testing.assert_close(end[name], sa[name], rtol=0, atol=0)


def test_params_is_a_field_of_the_slice_spec(tiny_run):
    from pydantic import ValidationError

    from jobs.specs import ScanSpec

    with pytest.raises(ValidationError, match="at least 1 item"):
        ScanSpec.model_validate(scan_spec_dict(tiny_run, slice={"kind": "random_plane", "checkpoint": str(tiny_run / "epoch_003.pt"), "params": []}))


def test_trajectory_pca_of_a_block_is_the_pca_of_that_block(tiny_run):
    """params on trajectory_pca: the principal components of the chosen entries' trajectory (plain SVD), zero elsewhere."""
    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec
    from landscape.checkpoints import load_state

    ckpts = [tiny_run / f"epoch_{i:03d}.pt" for i in range(4)]
    d = scan_spec_dict(tiny_run, slice={"kind": "trajectory_pca", "checkpoints": [str(p) for p in ckpts], "params": ["net.2.*"]})
    sl = build_problem(ScanSpec.model_validate(d)).problem.slice
    assert sl.info["moved"] == ["net.2.weight"] and sl.info["params"] == ["net.2.*"]
    inside = entry_mask(sl.layout, ["net.2.weight"])
    assert bool((sl.directions[:, ~inside] == 0).all())
    model = build_problem(ScanSpec.model_validate(d)).problem.model_factory()
    w = [load_state(p, model)["net.2.weight"].double().reshape(-1) for p in ckpts]
    rows = torch.stack([v - w[-1] for v in w])
    _, _, vt = torch.linalg.svd(rows - rows.mean(0), full_matrices=False)
    for k in range(2):
        assert abs(float(sl.directions[k, inside].double() @ vt[k])) == pytest.approx(1.0, abs=1e-5)

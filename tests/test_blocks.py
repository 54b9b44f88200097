"""Per-block curvature: each block's Hessian (the diagonal block of the full one) against dense Hessians, through
`landscape hessian --blocks`, the hessian_plane slice with params:, and a tiny GPT-2's tied layers."""

import numpy as np
import pytest
import torch
import yaml

from cluster.store import ResultStore
from jobs.common.build import load_data
from jobs.scan.problem import build_problem
from jobs.cli import main
from jobs.specs import DigitsData, ScanSpec
from landscape.blocks import auto_blocks, block_of
from landscape.factories import ModelFactory
from landscape.param_select import vector_mask

from .conftest import TINY_DATA, TINY_MODEL, scan_spec_dict
from .hessian_reference import dense_hessian


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _tiny_model():
    return ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()


def _block_eigs(h, model, names):
    """Ascending eigenvalues of the dense Hessian's block of the tensors `names`."""
    ps = list(model.named_parameters())
    keep = vector_mask([n for n, _ in ps], [tuple(p.shape) for _, p in ps], names).numpy()
    return np.linalg.eigh(h[np.ix_(keep, keep)])[0], float(np.trace(h[np.ix_(keep, keep)]))


def test_auto_blocks_are_layers():
    names = ["transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "transformer.h.0.ln_1.bias",
             "transformer.h.1.mlp.c_fc.weight", "transformer.ln_f.weight", "layer2.0.conv1.weight", "linear.bias", "a"]
    assert [block_of(n) for n in names] == ["transformer.wte", "transformer.h.0", "transformer.h.0", "transformer.h.1",
                                            "transformer.ln_f", "layer2.0", "linear", "a"]
    assert list(auto_blocks(names[:4])) == ["transformer.wte", "transformer.h.0", "transformer.h.1"]


def test_hessian_blocks_match_dense_block_hessians(tiny_run, tmp_path, capsys):
    ckpt = tiny_run / "epoch_003.pt"
    d = {"name": "tiny-blocks", "model": TINY_MODEL, "data": TINY_DATA, "at": {"checkpoint": str(ckpt)}, "top_k": 1,
         "eigen": {"iterations": 300, "tol": 1e-6}, "trace": {"samples": 64}, "density": {"runs": 2, "iterations": 30, "points": 400}}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(d))
    out = tmp_path / "b.zarr"
    assert main(["hessian", str(spec), "--out", str(out), "--blocks", "auto"]) == 0
    printed = capsys.readouterr().out
    assert "net.0: 780 parameters in 2 tensor(s)" in printed and "net.2: 130 parameters" in printed
    meta = ResultStore.open(str(out)).meta
    x, y = load_data(DigitsData(kind="digits", subset=240, seed=0))
    h = dense_hessian(_tiny_model(), torch.load(ckpt, weights_only=True), x, y)
    assert [b["name"] for b in meta["blocks"]] == ["net.0", "net.2"]
    for b in meta["blocks"]:
        w, tr = _block_eigs(h, _tiny_model(), b["tensors"])
        assert b["top_eigenvalue"] == pytest.approx(w[-1], rel=1e-4), b["name"]
        assert b["smallest_eigenvalue"] == pytest.approx(w[0], rel=1e-3, abs=1e-5 * w[-1]), b["name"]
        assert abs(b["trace"] - tr) <= 4 * b["trace_stderr"], b["name"]
    assert max(b["top_eigenvalue"] for b in meta["blocks"]) <= meta["eigenvalues"][0] * (1 + 1e-5)  # a block never beats the whole
    g = ResultStore.open(str(out)).group
    assert g["block_density"].shape[0] == 2 and g["block_density"].shape[1] >= 400  # at least `points` per block
    for i in range(2):
        keep = ~np.isnan(g["block_eigenvalue"][i])  # a block's own grid, then NaN padding
        assert keep.sum() >= 400 and np.isnan(g["block_density"][i][~keep]).all()
        assert np.trapezoid(g["block_density"][i][keep], g["block_eigenvalue"][i][keep]) == pytest.approx(1.0, abs=1e-6)
    from matplotlib.image import imread

    assert imread(tmp_path / "b-plots" / "blocks.png").std() > 0.05
    # a glob block, and a bad one: one line, exit 2
    assert main(["hessian", str(spec), "--out", str(tmp_path / "w.zarr"), "--blocks", "weights", "--no-plot"]) == 0
    assert ResultStore.open(str(tmp_path / "w.zarr")).meta["blocks"][0]["tensors"] == ["net.0.weight", "net.2.weight"]
    assert main(["hessian", str(spec), "--out", str(tmp_path / "x.zarr"), "--blocks", "net.9.*"]) == 2
    assert "matches no parameter" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_hessian_plane_of_a_block(tiny_run):
    ckpt = tiny_run / "epoch_003.pt"
    d = scan_spec_dict(tiny_run)
    d["slice"] = {"kind": "hessian_plane", "checkpoint": str(ckpt), "tol": 1e-6, "iterations": 200, "params": ["net.2.*"]}
    sl = build_problem(ScanSpec.model_validate(d)).problem.slice
    assert sl.info["moved"] == ["net.2.weight", "net.2.bias"]
    x, y = load_data(DigitsData(kind="digits", subset=240, seed=0))
    w, _ = _block_eigs(dense_hessian(_tiny_model(), torch.load(ckpt, weights_only=True), x, y), _tiny_model(), ["net.2.weight", "net.2.bias"])
    np.testing.assert_allclose(sl.info["eigenvalues"], w[::-1][:2], rtol=1e-4)


def test_gpt2_block_hessian_equals_a_dense_one_of_the_hugging_face_loss(tmp_path):
    """The final LayerNorm's block of a tiny GPT-2 (tied embeddings): every column of H_BB against float64 autograd
    on HF's own `model(block, labels=block).loss`."""
    pytest.importorskip("transformers")
    from landscape.blocks import RestrictedOperator
    from landscape.hessian import operator_at, point_evaluator
    from landscape.params import StateLayout
    from tests.lm_corpus import lm_spec_dict, write_corpus
    from tests.test_lm import plain_gpt2

    write_corpus(tmp_path, sentences=60)
    d = lm_spec_dict(tmp_path, tmp_path / "none.pt", data={"kind": "text", "path": str(tmp_path / "corpus.txt"),
                     "tokenizer": str(tmp_path), "block_size": 8, "max_tokens": 64})
    spec = ScanSpec.model_validate(d)
    from jobs.common.build import prepare

    p = prepare(spec.data, spec.model)
    layout = StateLayout.of(p.factory())
    state = p.factory().state_dict()
    ev = point_evaluator(p.factory, layout, layout.flatten(state), p.inputs, p.targets, "cross_entropy", device="cpu")
    op = operator_at(ev, p.factory(), [0.0])
    names = ["transformer.ln_f.weight", "transformer.ln_f.bias"]
    rop = RestrictedOperator.of(op, names)
    got = rop.matvec(torch.eye(rop.size)).double().numpy()  # (32, 32) columns of H_BB

    model = plain_gpt2(20).double()
    from landscape.lm import load_causal_lm_state

    load_causal_lm_state(model, {k: v.double() for k, v in state.items()})
    blocks = torch.cat([p.inputs, p.targets[:, -1:]], 1)
    w0, b0 = model.transformer.ln_f.weight.detach().clone(), model.transformer.ln_f.bias.detach().clone()

    def loss(wb):
        w, b = wb[:16], wb[16:]
        st = {"transformer.ln_f.weight": w, "transformer.ln_f.bias": b}
        return torch.func.functional_call(model, st, (blocks,), {"labels": blocks}).loss

    want = torch.autograd.functional.hessian(loss, torch.cat([w0, b0])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_curvature_map_restricted_to_weights_is_the_hessian_of_the_weights(tiny_run):
    """Li et al.'s Figure 7 convention: metrics hessian with hessian.params: [weights] differentiates tensors of dim > 1."""
    from landscape.evaluator import Evaluator

    d = scan_spec_dict(tiny_run, metrics=["loss", "accuracy", "hessian"],
                       hessian={"iterations": 200, "tol": 1e-6, "params": ["weights"]})
    ev = Evaluator(build_problem(ScanSpec.model_validate(d)).problem, device="cpu")
    got = ev.evaluate(np.zeros((1, 2)))
    x, y = load_data(DigitsData(kind="digits", subset=240, seed=0))
    w, _ = _block_eigs(dense_hessian(_tiny_model(), torch.load(tiny_run / "epoch_003.pt", weights_only=True), x, y),
                       _tiny_model(), ["net.0.weight", "net.2.weight"])
    assert got["hessian_max"][0] == pytest.approx(w[-1], rel=1e-4)
    assert got["hessian_min"][0] == pytest.approx(w[0], rel=1e-3, abs=1e-4 * w[-1])


def test_a_curvature_map_params_typo_is_one_line_before_any_work(tiny_run, tmp_path, capsys):
    from .one_line import run_bad

    d = scan_spec_dict(tiny_run, metrics=["loss", "accuracy", "hessian"], hessian={"params": ["net.7.*"]})
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(d))
    run_bad(capsys, ["validate", str(spec)], "hessian.params: 'net.7.*' matches no parameter")


def test_hessian_plane_of_a_block_normalized_without_biasbn_stays_in_the_block(tiny_run):
    """ignore: none sets 1-D entries of a normalized direction to the weights (Li et al.): outside params they stay 0."""
    d = scan_spec_dict(tiny_run)
    d["slice"] = {"kind": "hessian_plane", "checkpoint": str(tiny_run / "epoch_003.pt"), "iterations": 60,
                  "params": ["net.2.weight"], "normalization": "filter", "ignore": "none"}
    sl = build_problem(ScanSpec.model_validate(d)).problem.slice
    assert sl.info["moved"] == ["net.2.weight"]


def test_hessian_blocks_auto_on_a_tiny_gpt2(tmp_path, capsys):
    """`landscape hessian --blocks auto` on a language model: one block per layer, HF's own names (tied output: no
    lm_head block), each block no sharper than the whole model."""
    pytest.importorskip("transformers")
    from tests.lm_corpus import TINY_GPT2, write_corpus

    write_corpus(tmp_path, sentences=60)
    model = {"kind": "hf_causal_lm", "config": TINY_GPT2, "seed": 0}
    from landscape.factories import ModelFactory as F

    torch.save(F("hf_causal_lm", (8,), 20, {"config": TINY_GPT2})().state_dict(), tmp_path / "g.pt")
    d = {"name": "gpt2-blocks", "model": model, "at": {"checkpoint": str(tmp_path / "g.pt")}, "top_k": 1,
         "data": {"kind": "text", "path": str(tmp_path / "corpus.txt"), "tokenizer": str(tmp_path), "block_size": 8, "max_tokens": 64},
         "eigen": {"iterations": 40, "tol": 1e-3}, "trace": None, "density": None}
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(d))
    assert main(["hessian", str(spec), "--out", str(tmp_path / "h.zarr"), "--blocks", "auto", "--no-plot"]) == 0
    meta = ResultStore.open(str(tmp_path / "h.zarr")).meta
    assert [b["name"] for b in meta["blocks"]] == ["transformer.wte", "transformer.wpe", "transformer.h.0", "transformer.h.1",
                                                   "transformer.ln_f"]
    assert sum(b["parameters"] for b in meta["blocks"]) == meta["parameters"]
    assert max(b["top_eigenvalue"] for b in meta["blocks"]) <= meta["eigenvalues"][0] * (1 + 1e-3)

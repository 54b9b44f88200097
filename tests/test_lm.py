"""Causal language models on text: token blocks, a tiny GPT-2, the mean token cross-entropy against
Hugging Face's own `model(input_ids, labels=...)`, and a scan through the normal Ray path."""

from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.vision import prepare_torchvision

prepare_torchvision()
transformers = pytest.importorskip("transformers", reason="transformers is not installed (optional extra): pip install -e '.[hf]'")

from tests.lm_corpus import TINY_GPT2, lm_spec_dict, write_corpus  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    write_corpus(folder)
    return folder


@pytest.fixture(scope="module")
def gpt2_checkpoint(corpus) -> Path:
    """A tiny GPT-2's random initial weights (seed 0) as a checkpoint."""
    from jobs.common.build import model_factory
    from jobs.specs import ScanSpec

    spec = ScanSpec.model_validate(lm_spec_dict(corpus, corpus / "unused.pt"))
    from jobs.common.build import load_data_full

    d = load_data_full(spec.data)
    path = corpus / "gpt2.pt"
    torch.save(model_factory(spec.model, d.inputs, d.targets, d.classes)().state_dict(), path)
    return path


def plain_gpt2(vocab: int) -> torch.nn.Module:
    """The Hugging Face model as is (tied output layer, its own loss)."""
    cfg = {k: v for k, v in TINY_GPT2.items() if k != "model_type"}
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=vocab, **cfg)).eval()


def hf_loss(model, inputs, targets, batch: int = 7) -> float:
    """Mean over blocks of model(block, labels=block).loss: every block predicts the same number of tokens."""
    blocks = torch.cat([inputs, targets[:, -1:]], 1)  # (N, T + 1)
    losses = []
    with torch.no_grad():
        for s in range(0, len(blocks), batch):
            b = blocks[s : s + batch]
            losses.append(model(input_ids=b, labels=b).loss.item() * len(b))
    return sum(losses) / len(blocks)


def test_token_blocks_are_the_stream_shifted_by_one(tmp_path):
    from landscape.text import load_tokens

    ids = np.arange(3, 3 + 50, dtype=np.uint16)
    ids.tofile(tmp_path / "ids.bin")
    np.save(tmp_path / "ids.npy", ids.astype(np.int32))
    for name in ("ids.bin", "ids.npy"):
        t = load_tokens(tmp_path / name, None, block_size=8, max_tokens=40)
        assert t.inputs.shape == (5, 8) and t.targets.shape == (5, 8) and t.inputs.dtype == torch.int64
        assert t.inputs[1].tolist() == list(range(11, 19)) and t.targets[1].tolist() == list(range(12, 20))
        assert t.targets[-1, -1] == 3 + 40  # max_tokens 40 + the one token the last block predicts


def test_text_through_the_tokenizer(corpus):
    from landscape.text import load_tokens
    from tokenizers import Tokenizer

    t = load_tokens(corpus / "corpus.txt", str(corpus), block_size=16, max_tokens=800)
    ids = Tokenizer.from_file(str(corpus / "tokenizer.json")).encode((corpus / "corpus.txt").read_text()).ids
    assert t.vocab == 20 and t.inputs.shape == (50, 16)
    assert t.inputs.reshape(-1).tolist() == ids[:800] and t.targets.reshape(-1).tolist() == ids[1:801]


def test_token_loss_matches_hugging_face_at_grid_points(corpus, gpt2_checkpoint):
    """The evaluator's loss and accuracy at grid points = the HF model's own loss on the same weights (1e-5)."""
    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec
    from landscape.evaluator import Evaluator
    from landscape.lm import load_causal_lm_state

    built = build_problem(ScanSpec.model_validate(lm_spec_dict(corpus, gpt2_checkpoint)))
    p = built.problem
    assert "lm_head.weight" not in {e.name for e in p.slice.layout.entries}  # tied: one entry moves both uses
    ev = Evaluator(p, device="cpu")
    coords = np.array([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.6]])
    got = ev.evaluate(coords)
    model = plain_gpt2(20)
    for i, c in enumerate(coords):
        load_causal_lm_state(model, {k: v.clone() for k, v in ev.state_at(c).items()})
        assert got["loss"][i] == pytest.approx(hf_loss(model, p.inputs, p.targets), rel=1e-5, abs=1e-6)
        with torch.no_grad():
            pred = model(input_ids=p.inputs).logits.argmax(-1)
        assert got["accuracy"][i] == pytest.approx((pred == p.targets).float().mean().item(), abs=1e-6)
        # A block is one sample: the standard errors are those of the per-block mean token loss and accuracy.
        per_block = np.array([hf_loss(model, p.inputs[b : b + 1], p.targets[b : b + 1]) for b in range(len(p.inputs))])
        right = (pred == p.targets).double().mean(1).numpy()
        n = len(per_block)
        assert got["loss_se"][i] == pytest.approx(per_block.std(ddof=1) / np.sqrt(n), rel=1e-4)
        assert got["accuracy_se"][i] == pytest.approx(right.std(ddof=1) / np.sqrt(n), rel=1e-5, abs=1e-9)
    assert got["loss"][1] != got["loss"][0]  # the plane moves the model


def test_memory_plan_counts_sequence_and_vocabulary(corpus):
    """The plan sizes a pass by the widest activation: the logits, T x V per sample."""
    from landscape.factories import ModelFactory
    from landscape.plan import widest_output_elements

    ids = torch.zeros(2, 16, dtype=torch.int64)
    for vocab in (20, 5000):
        model = ModelFactory("hf_causal_lm", (16,), vocab, {"config": TINY_GPT2})()
        assert widest_output_elements(model, ids) == 16 * max(vocab, 4 * TINY_GPT2["n_embd"])  # logits, or the MLP's 4d


@pytest.mark.ray
def test_tiny_gpt2_scans_through_ray(ray_cluster, corpus, gpt2_checkpoint, tmp_path):
    from cluster.store import ResultStore
    from jobs.scan.point import point_state
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec
    from landscape.lm import load_causal_lm_state

    spec = ScanSpec.model_validate(lm_spec_dict(corpus, gpt2_checkpoint))
    out = tmp_path / "gpt2.zarr"
    run_scan(spec, out=str(out), actors=1, plot=False)
    store = ResultStore.open(str(out))
    loss = store.group["loss"][...]
    assert loss.shape == (3, 4) and np.isfinite(loss).all()
    assert store.meta["slice_info"]["moved"][0] == "transformer.wte.weight"
    from jobs.plot import plot_result

    drawn = [str(p) for p in plot_result(str(out), tmp_path / "plots", "png")]
    assert any(p.endswith("perplexity.png") for p in drawn)
    from landscape.text import load_tokens

    t = load_tokens(corpus / "corpus.txt", str(corpus), 16, 800)
    model = plain_gpt2(20)
    xs, ys = np.linspace(-0.5, 0.3, 4), np.linspace(-0.2, 0.6, 3)
    for i, j in [(0, 0), (2, 3), (1, 2)]:
        load_causal_lm_state(model, point_state(str(out), xs[j], ys[i]))
        assert loss[i, j] == pytest.approx(hf_loss(model, t.inputs, t.targets), rel=1e-5)


@pytest.mark.parametrize("data, model, needles", [
    ({"tokenizer": None}, None, ["give data.tokenizer"]),
    ({"tokenizer": "/nonexistent/tok"}, None, ["data.tokenizer", "nothing is downloaded"]),
    ({"block_size": 5000}, None, ["make no block of block_size 5000"]),
    ({"path": "/nonexistent/corpus.txt"}, None, ["data.path", "does not exist"]),
    ({}, {"config": {**TINY_GPT2, "vocab_size": 10}}, ["vocabulary has 10 tokens but the data need 20"]),
    ({}, {"config": {"n_layer": "two"}}, ["model.config"]),
    ({}, {"path": "/nonexistent/model"}, ["model.path", "no config.json"]),
    ({}, {"config": TINY_GPT2, "options": {"x": 1}}, ["takes path or config, not options"]),
])
def test_bad_language_model_input_is_one_line_exit_2(data, model, needles, corpus, gpt2_checkpoint, tmp_path, capsys):
    import yaml

    from tests.one_line import run_bad

    d = lm_spec_dict(corpus, gpt2_checkpoint)
    d["data"] = {k: v for k, v in {**d["data"], **data}.items() if v is not None}
    if model is not None:
        d["model"] = {"kind": "hf_causal_lm", "seed": 0, **model}
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(d))
    run_bad(capsys, ["validate", str(spec)], *needles)


def test_vmap_applies_to_gpt2_k_points_per_pass_equal_one_at_a_time(corpus, gpt2_checkpoint):
    """As on a GPU (K points per pass through vmap): the same losses as one point at a time."""
    from dataclasses import replace

    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec
    from landscape.evaluator import Evaluator
    from landscape.plan import EvalOptions

    p = build_problem(ScanSpec.model_validate(lm_spec_dict(corpus, gpt2_checkpoint))).problem
    one = Evaluator(p, device="cpu")
    four = Evaluator(replace(p, options=EvalOptions(points_per_pass=4)), device="cpu")
    assert four.plan.points_per_pass == 4 and four.describe()["vmap_fallback"] is None
    coords = np.array([[0.0, 0.0], [0.5, -0.5], [-1.0, 0.3], [0.2, 0.9], [0.7, 0.7]])
    a, b = one.evaluate(coords), four.evaluate(coords)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    np.testing.assert_allclose(b["accuracy"], a["accuracy"], atol=1e-6)


def test_ensemble_metric_on_tokens_is_refused(corpus, gpt2_checkpoint):
    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec
    from landscape.errors import SpecError

    with pytest.raises(SpecError, match="token data"):
        build_problem(ScanSpec.model_validate(lm_spec_dict(corpus, gpt2_checkpoint, metrics=["loss", "ensemble"])))


def test_max_tokens_reads_enough_text_even_for_long_tokens():
    from landscape.text import _encode_prefix

    words = [f"{i:04d}" + "x" * 36 for i in range(500)]  # 40-character tokens: 16 characters per token is too few
    text = " ".join(words)

    def encode(t):
        return [int(w[:4]) for w in t.split()]

    ids = _encode_prefix(encode, text, 101)
    assert ids[:101].tolist() == list(range(101))
    assert _encode_prefix(encode, text, None).tolist() == list(range(500))


def test_landscape_train_trains_a_tiny_gpt2_on_tokens(corpus, tmp_path):
    """The training loop takes the mean token cross-entropy: it lowers HF's own loss, and the saved checkpoint
    is scanned at the trained loss (evaluator = HF's own loss on those weights)."""
    from jobs.scan.problem import build_problem
    from jobs.specs import ScanSpec, TrainSpec
    from jobs.training.train import run_train
    from landscape.evaluator import Evaluator
    from landscape.lm import load_causal_lm_state

    d = lm_spec_dict(corpus, tmp_path / "x.pt")
    spec = TrainSpec.model_validate({"name": "gpt2-train", "model": d["model"], "data": d["data"], "epochs": 3, "lr": 0.2,
                                     "batch_size": 10})
    run = run_train(spec, out=str(tmp_path / "run"))
    ckpt = run / "epoch_003.pt"
    p = build_problem(ScanSpec.model_validate(lm_spec_dict(corpus, ckpt))).problem
    got = Evaluator(p, device="cpu").evaluate(np.zeros((1, 2)))["loss"][0]
    model = plain_gpt2(20)
    load_causal_lm_state(model, torch.load(ckpt, weights_only=True))
    trained = hf_loss(model, p.inputs, p.targets)
    assert got == pytest.approx(trained, rel=1e-5)
    start = plain_gpt2(20)
    load_causal_lm_state(start, torch.load(run / "epoch_000.pt", weights_only=True))
    assert trained < hf_loss(start, p.inputs, p.targets) - 0.02  # the training loop lowered HF's own token loss

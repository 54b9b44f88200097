"""Causal language models (Hugging Face `AutoModelForCausalLM`) as scan models.

`build_causal_lm` loads a local model folder (never downloaded) or builds a
randomly initialised model from a config (seeded by the factory). Its forward
takes token ids (N, T) and, through `adapters.with_logits`, returns the logits
(N, T, V); `metrics.loss_terms` turns them into the mean token cross-entropy.

Tied embeddings: GPT-2's output layer shares the input embedding's matrix. The
project's flat state has one entry per state_dict key, and the evaluator binds
each entry to its own view, which would cut the tie (the output layer would keep
the origin's matrix while the embedding moves). So the output layer's own
Parameter is removed and a pre-hook hands it the embedding's current matrix on
every call: one entry (`transformer.wte.weight`) moves both uses, under the
evaluator's bound state and under `functional_call` (vmap, Hessian) alike.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import DataError, SpecError


def _tie_by_hook(model: nn.Module) -> bool:
    """Make a tied output layer read the input embedding's matrix at call time; True if it was tied."""
    emb, out = model.get_input_embeddings(), model.get_output_embeddings()
    if out is None or emb is None or out.weight is not emb.weight:
        return False
    del out._parameters["weight"]

    def hand_over(module, args):
        module.__dict__["weight"] = emb.weight  # a plain attribute: not registered again as a parameter

    out.register_forward_pre_hook(hand_over)
    out.__dict__["weight"] = emb.weight
    return True


def build_causal_lm(path: str | None = None, config: dict | None = None, vocab: int | None = None) -> nn.Module:
    """A causal LM from a local folder (`path`) or a config dict (random init; `vocab` fills vocab_size if absent)."""
    from .vision import prepare_torchvision

    prepare_torchvision()  # transformers imports torchvision when it is installed
    try:
        import transformers
    except ImportError:
        raise SpecError("model kind hf_causal_lm needs transformers: pip install -e '.[hf]'") from None
    transformers.logging.set_verbosity_error()
    if path is not None:
        p = Path(path).expanduser()
        if not (p / "config.json").is_file():
            raise SpecError(f"model.path {str(path)!r} holds no config.json; give a folder written by save_pretrained")
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True)
        except Exception as e:
            raise SpecError(f"model.path {str(path)!r}: cannot load a causal LM ({type(e).__name__}: {str(e)[:160]})") from None
    else:
        cfg = dict(config or {})
        model_type = cfg.pop("model_type", "gpt2")
        if vocab is not None:
            cfg.setdefault("vocab_size", int(vocab))
        try:
            conf = transformers.AutoConfig.for_model(model_type, **cfg)
            model = transformers.AutoModelForCausalLM.from_config(conf)
        except Exception as e:
            raise SpecError(f"model.config: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    model.config.use_cache = False  # no key/value cache in the outputs: the logits are all a scan reads
    if hasattr(model.config, "_attn_implementation"):
        model.config._attn_implementation = "eager"  # differentiable twice and vmap-able everywhere
    _tie_by_hook(model)
    return model.eval()


def load_causal_lm_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a scan's state (no separate output matrix when tied) into a plain Hugging Face model, re-tied."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(k != "lm_head.weight" for k in missing):
        raise ValueError(f"state does not fit: missing {missing}, unexpected {unexpected}")
    model.tie_weights()


def check_token_fit(out: torch.Tensor, targets: torch.Tensor, classes: int | None) -> None:
    """DataError unless the outputs are (n, T, V) logits for token targets (n, T) with every id below V."""
    if out.dim() != 3 or tuple(out.shape[:2]) != tuple(targets[: len(out)].shape):
        raise DataError(
            f"token targets {tuple(targets.shape[1:])} per sample need logits (T, vocabulary) per sample; the model "
            f"outputs {tuple(out.shape[1:])}: use model kind hf_causal_lm"
        )
    _check_vocabulary(out.shape[-1], int(targets.max()), classes)


def check_vocabulary(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, classes: int | None) -> None:
    """Before any forward pass (an embedding fails on an id past its table with no word of why): the ids fit."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if isinstance(emb, nn.Embedding) and not inputs.is_floating_point():
        _check_vocabulary(emb.num_embeddings, max(int(inputs.max()), int(targets.max())), classes)


def _check_vocabulary(vocab: int, hi: int, classes: int | None) -> None:
    if hi >= vocab or (classes is not None and classes > vocab):
        need = max(hi + 1, classes or 0)
        raise DataError(
            f"the model's vocabulary has {vocab} tokens but the data need {need} (token ids up to {hi}); "
            "set model.config.vocab_size to the tokenizer's size or leave it out"
        )

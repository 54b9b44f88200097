"""A generated corpus, a word-level tokenizer trained on it, and a tiny GPT-2 config: language-model tests offline."""

from __future__ import annotations

import random
from pathlib import Path

TINY_GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 16, "n_positions": 32}
WORDS = "the a cat dog sat ran on under mat log and then it saw big small red blue".split()


def write_corpus(folder: Path, sentences: int = 400, seed: int = 0) -> tuple[Path, Path]:
    """(corpus.txt, tokenizer.json) in `folder`: seeded sentences over a small vocabulary, word-level tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) + " ." for _ in range(sentences)]
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train([str(corpus)], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return corpus, path


def lm_spec_dict(folder: Path, checkpoint: Path, **overrides) -> dict:
    corpus, tok = folder / "corpus.txt", folder / "tokenizer.json"
    d = {
        "name": "tiny-gpt2",
        "model": {"kind": "hf_causal_lm", "config": TINY_GPT2, "seed": 0},
        "data": {"kind": "text", "path": str(corpus), "tokenizer": str(tok), "block_size": 16, "max_tokens": 800},
        "slice": {"kind": "random_plane", "checkpoint": str(checkpoint), "seed": 1},
        "grid": {"x": {"min": -0.5, "max": 0.3, "num": 4}, "y": {"min": -0.2, "max": 0.6, "num": 3}},
        "tile": [2, 3],
    }
    d.update(overrides)
    return d

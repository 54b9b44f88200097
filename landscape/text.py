"""Text as a causal language model sees it: a stream of token ids cut into blocks.

Sample i is the block tokens[i*T : i*T + T + 1] of T + 1 ids (nanoGPT's layout:
consecutive blocks share one boundary token); its input is the first T ids and
its targets the last T, so every position predicts the next token. The loss of
a point is the mean cross-entropy over all N x T predicted tokens, the number
`model(block, labels=block).loss` gives for each block (Hugging Face shifts the
labels itself), averaged over blocks of equal length.

Sources, all local (nothing is downloaded):
- a text file and a tokenizer: a `tokenizer.json` of the `tokenizers` library, a
  folder holding one, or a Hugging Face tokenizer folder or cached name (loaded
  with local_files_only);
- `.npy` token ids (any integer dtype), or `.bin` raw ids (nanoGPT's uint16 by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .memory import check_data_memory


@dataclass
class Tokens:
    inputs: torch.Tensor  # (N, T) int64 token ids
    targets: torch.Tensor  # (N, T) int64: the next token at each position
    vocab: int | None  # the tokenizer's vocabulary size (None: ids only, the largest id + 1 is used)
    notes: list[str] = field(default_factory=list)


def load_tokenizer(name: str):
    """(encode: str -> list[int], vocabulary size) of a local tokenizer."""
    p = Path(name).expanduser()
    file = p if p.is_file() else p / "tokenizer.json"
    if file.is_file() and file.suffix == ".json":
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(file))
        except Exception as e:
            raise DataError(f"data.tokenizer {name!r}: {file} is not a tokenizers JSON file ({str(e)[:160]})") from None
        return (lambda text: tok.encode(text).ids), tok.get_vocab_size()
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(name), local_files_only=True)
    except Exception as e:
        raise DataError(
            f"data.tokenizer {name!r} is neither a tokenizer.json nor a Hugging Face tokenizer available offline "
            f"({type(e).__name__}); save one with tokenizer.save_pretrained(DIR) and give DIR (nothing is downloaded)"
        ) from None
    return (lambda text: tok(text)["input_ids"]), len(tok)


def _encode_prefix(encode, text: str, need: int | None) -> np.ndarray:
    """The token ids of `text`, or at least its first `need` ids without encoding all of a long text: encode a
    prefix of 16 characters per token wanted, more until it holds `need` + 8 ids (a cut may change the last few)."""
    chars = len(text) if need is None else max(64, 16 * need)
    while True:
        ids = np.asarray(encode(text[:chars]), dtype=np.int64)
        if chars >= len(text) or len(ids) >= need + 8:
            return ids
        chars *= 4


def read_ids(path: Path, dtype: str) -> np.ndarray:
    """(L,) int64 token ids from a .npy (its own dtype) or a .bin of raw `dtype` values."""
    try:
        ids = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.fromfile(path, dtype=np.dtype(dtype))
    except (OSError, ValueError) as e:
        raise DataError(f"data.path {str(path)!r}: cannot read token ids ({str(e)[:160]})") from None
    if ids.dtype.kind not in "iu":
        raise DataError(f"data.path {str(path)!r} holds {ids.dtype} values; token ids must be integers")
    ids = ids.reshape(-1).astype(np.int64)
    if len(ids) and ids.min() < 0:
        raise DataError(f"data.path {str(path)!r} holds negative token ids (min {ids.min()}); is data.dtype right?")
    return ids


def load_tokens(path, tokenizer: str | None, block_size: int, max_tokens: int | None = None,
                dtype: str = "uint16") -> Tokens:
    """The token blocks of `path` (see the module docstring); DataError with one line on bad input."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path {str(path)!r} does not exist; give a text file, or a .npy/.bin of token ids")
    notes = []
    if path.suffix in (".npy", ".bin"):
        ids, vocab = read_ids(path, dtype), None
        if tokenizer is not None:
            vocab = load_tokenizer(tokenizer)[1]
        notes.append(f"{len(ids):,} token ids read from {path.name}")
    else:
        if tokenizer is None:
            raise DataError(f"data.path {str(path)!r} is text: give data.tokenizer (a tokenizer.json or a tokenizer folder)")
        encode, vocab = load_tokenizer(tokenizer)
        text = path.read_text(encoding="utf-8", errors="replace")
        ids = _encode_prefix(encode, text, None if max_tokens is None else max_tokens + 1)
        notes.append(f"{len(ids):,} tokens from {path.name} (tokenizer {tokenizer})")
    if max_tokens is not None:
        ids = ids[: max_tokens + 1]
    blocks = (len(ids) - 1) // block_size
    if blocks < 1:
        raise DataError(f"data: {len(ids):,} tokens make no block of block_size {block_size} + 1; lower block_size or add text")
    if vocab is not None and len(ids) and ids.max() >= vocab:
        raise DataError(f"data: token id {ids.max()} is past the tokenizer's vocabulary of {vocab}; is it the right tokenizer?")
    check_data_memory(blocks, (2 * block_size,), "data text", bytes_per_value=8)  # inputs and targets, int64
    t = torch.from_numpy(ids[: blocks * block_size + 1].copy())
    x = t[:-1].view(blocks, block_size)  # (N, T)
    y = t[1:].reshape(blocks, block_size)  # (N, T) shifted by one token
    notes.append(f"{blocks:,} blocks of {block_size} tokens ({blocks * block_size:,} predicted tokens)")
    return Tokens(x.contiguous(), y.contiguous(), vocab, notes)

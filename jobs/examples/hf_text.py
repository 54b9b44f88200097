"""A small BERT-style text classifier from a `transformers` config, and token data for it.

Used by `train_hf_bert.yaml` and `hf_bert_random_plane.yaml` through `kind: import`:

    model: {kind: import, factory: jobs.examples.hf_text:make_model, options: {hidden: 32}}
    data:  {kind: import, factory: jobs.examples.hf_text:make_tokens, kwargs: {n: 512}}

Nothing is downloaded: the model is built from a config with random initial weights
(seeded by model.seed), and the token ids come from `make_tokens`, not a tokenizer.
Bring your own text by returning (input_ids (N, L) int64, labels (N,)) from a
factory of your own, tokenized wherever you like beforehand. The model returns a
SequenceClassifierOutput; landscape takes its `logits`. Token ids stay integers (an
embedding reads them), so the first-layer shortcut is off; vmap over K points per
pass applies to BERT (on GPU by default), else the result's evaluator plan says why not.
Needs the optional extra: pip install -e '.[hf]'.
"""

from __future__ import annotations

import torch


def make_model(vocab_size: int = 64, hidden: int = 32, layers: int = 2, heads: int = 2, classes: int = 2,
               max_length: int = 32, dropout: float = 0.1):
    """BertForSequenceClassification with random weights: `layers` blocks of width `hidden`, `classes` outputs."""
    try:
        from transformers import BertConfig, BertForSequenceClassification
    except ImportError as e:
        raise ImportError(f"transformers is not installed ({e}); pip install -e '.[hf]'") from None
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, max_position_embeddings=max_length, num_labels=classes,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
        attn_implementation="eager",  # plain matmul-softmax attention: the same on every device, batches under vmap
    )
    return BertForSequenceClassification(config)


def make_tokens(n: int = 256, length: int = 16, vocab_size: int = 64, classes: int = 2, seed: int = 0):
    """(token ids (n, length) int64, labels (n,)): each sequence holds its label's marker token (id 1 + label) 3 times.

    The other tokens are random ids above the markers, so a classifier can learn the task
    from a few hundred sequences (a landscape with a real minimum), in seconds on a CPU.
    """
    if length < 3 or vocab_size <= classes + 1:
        raise ValueError(f"need length >= 3 and vocab_size > classes + 1, got length {length}, vocab_size {vocab_size}")
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(classes + 1, vocab_size, (n, length), generator=g)  # (n, L) background tokens
    labels = torch.randint(0, classes, (n,), generator=g)  # (n,)
    where = torch.rand(n, length, generator=g).argsort(dim=1)[:, :3]  # (n, 3) distinct positions
    ids.scatter_(1, where, (1 + labels).view(-1, 1).expand(-1, 3))
    return ids, labels

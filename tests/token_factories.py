"""Import factories for the adapter tests: token-id models, dict and object outputs, a model vmap cannot batch."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Output:
    logits: torch.Tensor
    hidden: torch.Tensor


class TokenNet(nn.Module):
    """Embedding -> mean over positions -> Linear; returns a dict or an object with `logits`, as transformers does."""

    def __init__(self, vocab: int = 20, width: int = 6, classes: int = 3, output: str = "dict"):
        super().__init__()
        self.emb = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, classes)
        self.output = output

    def forward(self, ids: torch.Tensor):
        h = self.emb(ids).mean(1)  # (N, width)
        logits = self.head(torch.tanh(h))  # (N, classes)
        return {"logits": logits, "hidden": h} if self.output == "dict" else Output(logits, h)


def make_token_model(output: str = "dict") -> nn.Module:
    return TokenNet(output=output)


def make_token_data(n: int = 40, length: int = 7):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 20, (n, length), generator=g, dtype=torch.int32)
    return ids, ids[:, 0].long() % 3


def make_byte_images(n: int = 30):
    """uint8 'images' for a float model: cast to float32, as before."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 1, 2, 2), generator=g, dtype=torch.uint8)
    return x, (x[:, 0, 0, 0] > 127).long()


def make_byte_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))


class Branchy(nn.Module):
    """Reads a weight's value in Python: vmap cannot batch that (data-dependent control flow)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.out = nn.Linear(3, 3)

    def forward(self, x):
        h = torch.tanh(self.lin(x))
        return self.out(h) if float(self.out.bias.abs().sum()) < 1e6 else -h


def make_branchy() -> nn.Module:
    return Branchy()


def make_image_model(classes: int = 10) -> nn.Module:
    """A linear classifier of 3x32x32 images with a fixed number of outputs."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, classes))

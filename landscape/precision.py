"""Arithmetic precision of an evaluation: fp32 (default), tf32, bf16.

fp32 is true fp32 everywhere: PyTorch lets cuDNN use TF32 for convolutions by
default, which would silently cost ~3 decimal digits, so we switch that off.
tf32 keeps fp32 storage and lets the matrix units round operands to 10 bits.
bf16 stores weights, data and activations in bfloat16; losses are summed in fp32.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

Precision = Literal["fp32", "tf32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")


def compute_dtype(precision: Precision) -> torch.dtype:
    return torch.bfloat16 if precision == "bf16" else torch.float32


@contextlib.contextmanager
def matmul_mode(precision: Precision):
    """TF32 on for tf32 only; deterministic cuDNN algorithm choice (same spec, same bits)."""
    cuda_mm, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (cuda_mm.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic)
    tf32 = precision == "tf32"
    cuda_mm.allow_tf32, cudnn.allow_tf32 = tf32, tf32
    cudnn.benchmark, cudnn.deterministic = False, True
    try:
        yield
    finally:
        cuda_mm.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic = saved

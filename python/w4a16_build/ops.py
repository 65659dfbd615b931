"""`torch.ops.w4a16.gemm`: the GEMM as a PyTorch custom operator.

Registered through `torch.library` with a fake (meta) implementation, so
`torch.compile(fullgraph=True)` traces through it and CUDA graphs capture it.
The weight travels as plain tensors plus its shape and format:

    torch.ops.w4a16.gemm(x, qweight, scales, zeros, bias, n, k, group_size, mode, tactic)

`zeros` and `bias` may be None; `tactic` "" means "select" (selection.py).
"""

from __future__ import annotations

from typing import Optional

import torch

from .packing import PackedWeight
from .runner import gemm


@torch.library.custom_op("w4a16::gemm", mutates_args=())
def gemm_op(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, zeros: Optional[torch.Tensor],
            bias: Optional[torch.Tensor], n: int, k: int, group_size: int, mode: str,
            tactic: str) -> torch.Tensor:
    packed = PackedWeight(qweight=qweight, scales=scales, zeros=zeros, n=n, k=k, group_size=group_size,
                          mode=mode, dtype=x.dtype)
    return gemm(x, packed, bias, tactic or None)


@gemm_op.register_fake
def _(x, qweight, scales, zeros, bias, n, k, group_size, mode, tactic):
    torch._check(x.shape[-1] == k, lambda: f"x has K = {x.shape[-1]}, the weight has K = {k}")
    return x.new_empty((*x.shape[:-1], n))

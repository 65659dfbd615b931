"""The activation dtypes, written once: torch dtype <-> the model's short name ("fp16", "bf16")."""

from __future__ import annotations

import torch

NAMES: dict[torch.dtype, str] = {torch.float16: "fp16", torch.bfloat16: "bf16"}
TORCH: dict[str, torch.dtype] = {name: dt for dt, name in NAMES.items()}


def name_of(dtype) -> str:
    """"fp16" / "bf16" from a torch dtype or that name; ValueError for anything else."""
    name = NAMES.get(dtype) if isinstance(dtype, torch.dtype) else dtype
    if name not in TORCH:
        raise ValueError(f"dtype must be fp16 or bf16 (torch.float16 / torch.bfloat16), got {dtype!r}")
    return name

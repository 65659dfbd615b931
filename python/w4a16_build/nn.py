"""`W4A16Linear`, a drop-in `nn.Linear` with a 4-bit weight, and `replace_linears`."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from . import ops  # noqa: F401  (registers torch.ops.w4a16.gemm)
from .dtypes import NAMES as DTYPES
from .packing import PackedWeight, pack, padded_rows
from .quant import check_mode, quantize


def unservable_reason(out_features: int, in_features: int, group: int) -> str | None:
    """Why the kernels cannot take a layer of this shape and group size, or None if they can."""
    if out_features % 8 or in_features % 64:
        return (f"W4A16Linear needs out_features % 8 == 0 and in_features % 64 == 0, "
                f"got {out_features} x {in_features}")
    if group < 1 or in_features % group or (group != in_features and group % 64):
        return (f"group_size {group} must divide in_features = {in_features} "
                "and be a multiple of 64 (or equal in_features)")
    return None


class W4A16Linear(nn.Module):
    """y = x @ dequant(W)^T + b with W stored once in the kernels' packed layout.

    Buffers (all in the state_dict): `qweight` (uint8, packed), `scales`
    ([K/group, N], or [N] for per_column), `zeros` (groupwise_zero only,
    pre-multiplied), and `bias` ([N]) when the layer has one.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, group_size: int = 128,
                 mode: str = "groupwise", dtype: torch.dtype = torch.float16, device=None):
        super().__init__()
        check_mode(mode)
        if dtype not in DTYPES:
            raise TypeError(f"dtype must be torch.float16 or torch.bfloat16, got {dtype}")
        group = in_features if mode == "per_column" else group_size
        reason = unservable_reason(out_features, in_features, group)
        if reason:
            raise ValueError(reason)
        self.in_features, self.out_features = in_features, out_features
        self.group_size, self.mode, self.dtype = group, mode, dtype
        self.tactic = ""  # "" = select per call (selection.py); or a kernel name
        groups = in_features // group
        self.register_buffer("qweight", torch.zeros(padded_rows(out_features) * in_features // 2,
                                                    dtype=torch.uint8, device=device))
        sshape = (out_features,) if mode == "per_column" else (groups, out_features)
        self.register_buffer("scales", torch.zeros(sshape, dtype=dtype, device=device))
        self.register_buffer("zeros", torch.zeros(sshape, dtype=dtype, device=device)
                             if mode == "groupwise_zero" else None)
        self.register_buffer("bias", torch.zeros(out_features, dtype=dtype, device=device) if bias else None)
        # Act-order checkpoints (GPTQ g_idx): x[..., input_perm] is what the weight's K order expects.
        self.register_buffer("input_perm", None)

    def set_input_perm(self, perm: torch.Tensor | None) -> None:
        if perm is not None:
            if not isinstance(perm, torch.Tensor) or tuple(perm.shape) != (self.in_features,):
                raise ValueError(f"input_perm must be [{self.in_features}], got "
                                 f"{tuple(perm.shape) if isinstance(perm, torch.Tensor) else perm!r}")
            if perm.is_floating_point() or perm.is_complex() or perm.dtype == torch.bool:
                raise ValueError(f"input_perm must hold integer indices, got {perm.dtype}")
            perm = perm.to(device=self.qweight.device, dtype=torch.int64)
            # An index out of range would fault inside index_select on the GPU.
            if not torch.equal(torch.sort(perm).values, torch.arange(self.in_features, device=perm.device)):
                raise ValueError(f"input_perm must be a permutation of 0..{self.in_features - 1}")
        self.input_perm = perm

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # input_perm is a buffer only on act-order layers, so a fresh layer has no slot for it:
        # take it from the state dict (checked) before the default loading copies into it.
        key = prefix + "input_perm"
        if key in state_dict and state_dict[key] is not None and self.input_perm is None:
            self.set_input_perm(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if self.input_perm is not None and key in state_dict:
            self.set_input_perm(self.input_perm)  # validate what was copied into an existing buffer

    @property
    def packed(self) -> PackedWeight:
        return PackedWeight(qweight=self.qweight, scales=self.scales, zeros=self.zeros, n=self.out_features,
                            k=self.in_features, group_size=self.group_size, mode=self.mode, dtype=self.dtype)

    def _load_packed(self, p: PackedWeight) -> None:
        self.qweight.copy_(p.qweight)
        self.scales.copy_(p.scales)
        if p.zeros is not None:
            self.zeros.copy_(p.zeros)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int = 128, mode: str = "groupwise") -> "W4A16Linear":
        """Quantize an fp16/bf16 nn.Linear with the reference round-to-nearest quantizer."""
        w = linear.weight.detach()
        if w.dtype not in DTYPES:
            raise TypeError(f"from_linear needs an fp16 or bf16 nn.Linear, got {w.dtype}")
        mod = cls(linear.in_features, linear.out_features, linear.bias is not None, group_size=group_size,
                  mode=mode, dtype=w.dtype, device=w.device)
        q, s, z = quantize(w, None if mode == "per_column" else group_size, mode)
        mod._load_packed(pack(q, s, z, mode=mode, dtype=w.dtype))
        if linear.bias is not None:
            mod.bias.copy_(linear.bias.detach())
        return mod

    @classmethod
    def from_quantized(cls, q: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None = None,
                       bias: torch.Tensor | None = None, *, mode: str | None = None,
                       group_size: int | None = None, dtype: torch.dtype | None = None,
                       nibbles_packed: bool = False) -> "W4A16Linear":
        """From codes, scales and zeros in the formats of `w4a16_build.pack`."""
        p = pack(q, scales, zeros, mode=mode, group_size=group_size, dtype=dtype, nibbles_packed=nibbles_packed)
        mod = cls(p.k, p.n, bias is not None, group_size=p.group_size, mode=p.mode, dtype=p.dtype,
                  device=p.device)
        mod._load_packed(p)
        if bias is not None:
            if tuple(bias.shape) != (p.n,):
                raise ValueError(f"bias must be [{p.n}], got {tuple(bias.shape)}")
            mod.bias.copy_(bias)
        return mod

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Like nn.Linear, accept any strides (the kernels need contiguous rows;
        # a no-op when x already is).
        x = x.index_select(-1, self.input_perm) if self.input_perm is not None else x.contiguous()
        return torch.ops.w4a16.gemm(x, self.qweight, self.scales, self.zeros, self.bias, self.out_features,
                                    self.in_features, self.group_size, self.mode, self.tactic)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, mode={self.mode}, group_size={self.group_size}, "
                f"dtype={str(self.dtype).replace('torch.', '')}"
                + (", act_order=True" if self.input_perm is not None else ""))


def replace_linears(model: nn.Module, filter: Callable[[str, nn.Linear], bool] | None = None, *,
                    group_size: int = 128, mode: str = "groupwise") -> dict[str, nn.Linear]:
    """Swap the model's fp16/bf16 nn.Linear layers for W4A16Linear, in place.

    `filter(name, linear)` chooses layers (default: all). Layers the kernels
    cannot take (dtype, out_features % 8, in_features % 64, group size) are
    left alone. Returns {qualified name: the replaced nn.Linear}.
    """
    replaced = {}
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, nn.Linear) or isinstance(mod, W4A16Linear):
            continue
        if filter is not None and not filter(name, mod):
            continue
        group = mod.in_features if mode == "per_column" else group_size
        if (mod.weight.dtype not in DTYPES or mod.out_features % 8 or mod.in_features % 64
                or mod.in_features % group):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, W4A16Linear.from_linear(mod, group_size=group_size, mode=mode))
        replaced[name] = mod
    return replaced

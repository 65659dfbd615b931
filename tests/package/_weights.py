"""Random quantized weights and an fp32 reference for the GPU tests.

Weights are drawn directly as codes and scales (no quantizer in the loop), so
a test of a huge layer costs one `pack()`; the reference dequantizes from the
original codes, a slab of rows at a time, independently of the packed layout.
Seeds are fixed integers: a failing case re-runs the same way in any process.
"""

from __future__ import annotations

import dataclasses
import zlib

import torch

import w4a16_build

DT = {"fp16": torch.float16, "bf16": torch.bfloat16}
TOL = {"fp16": 2e-3, "bf16": 1e-2}
# Worst single element against the largest |ref|: output rounding is ~2^-11 (fp16) and
# 2^-8 (bf16) of an element; a wrong or unwritten tile is O(1).
WORST = {"fp16": 1e-2, "bf16": 3e-2}


def seed_of(*parts) -> int:
    """A seed that is the same in every process (unlike hash() of a string)."""
    return zlib.crc32(repr(parts).encode())


def quantized_weight(n, k, mode, group, dtype, device="cuda"):
    """A random weight through quantize() and pack(): (PackedWeight, its dequantized fp32 [n, k])."""
    w = torch.randn(n, k, device=device) * 0.05
    q, s, z = w4a16_build.quantize(w, group, mode)
    ref = w4a16_build.dequantize(q, s.to(dtype), None if z is None else z.to(dtype), mode=mode)
    p = w4a16_build.pack(q, s.to(dtype), None if z is None else z.to(dtype), mode=mode, dtype=dtype)
    return p, ref


@dataclasses.dataclass
class Weight:
    q: torch.Tensor                 # int8 [N, K] codes as given to pack()
    s: torch.Tensor                 # scales as given to pack() ([N] or [N, G])
    z: torch.Tensor | None          # zeros [N, G] or None
    mode: str
    packed: "w4a16_build.PackedWeight"


def random_weight(n: int, k: int, mode: str, group: int | None, dtype: torch.dtype,
                  gen: torch.Generator | None = None, device="cuda") -> Weight:
    """Random codes and scales (never zeros), packed for `dtype`. group None = per_column."""
    g = k if mode == "per_column" else group
    groups = k // g
    if mode == "groupwise_zero":
        q = torch.randint(0, 16, (n, k), generator=gen, device=device, dtype=torch.int8)
        z = torch.randint(0, 16, (n, groups), generator=gen, device=device).to(dtype)
    else:
        q = torch.randint(-8, 8, (n, k), generator=gen, device=device, dtype=torch.int8)
        z = None
    # Scales ~ 1/sqrt(K) so that outputs stay O(1) at every K (no fp16 overflow).
    shape = (n,) if mode == "per_column" else (n, groups)
    s = ((torch.rand(shape, generator=gen, device=device) + 0.5) / (4 * k ** 0.5)).to(dtype)
    p = w4a16_build.pack(q, s, z, mode=mode, dtype=dtype)
    return Weight(q, s, z, mode, p)


def reference(x: torch.Tensor, w: Weight, bias: torch.Tensor | None = None,
              rows: slice | None = None, slab: int = 8192) -> torch.Tensor:
    """fp32 x @ dequant(W)[rows]^T (+ bias), computed `slab` output rows at a time."""
    n, k = w.q.shape
    rows = rows or slice(0, n)
    x2 = x.reshape(-1, k).float()
    parts = []
    for r0 in range(rows.start, rows.stop, slab):
        r1 = min(r0 + slab, rows.stop)
        q = w.q[r0:r1].float()
        if w.mode == "per_column":
            wd = q * w.s[r0:r1].float()[:, None]
        else:
            g = k // w.s.shape[1]
            qg = q.reshape(r1 - r0, -1, g)
            if w.z is not None:
                qg = qg - w.z[r0:r1].float()[:, :, None]
            wd = (qg * w.s[r0:r1].float()[:, :, None]).reshape(r1 - r0, k)
        y = x2 @ wd.t()
        if bias is not None:
            y += bias[r0:r1].float()
        parts.append(y)
    return torch.cat(parts, dim=1)


def errors(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(relative Frobenius error, worst element error relative to the largest |ref|)."""
    o = out.reshape(ref.shape).float()
    if not torch.isfinite(o).all():
        return float("inf"), float("inf")
    d = o - ref
    scale = ref.abs().max().clamp(min=1e-6)
    return (d.norm() / ref.norm().clamp(min=1e-6)).item(), (d.abs().max() / scale).item()


def check(out: torch.Tensor, ref: torch.Tensor, dtype_name: str, what: str = "") -> None:
    rel, worst = errors(out, ref)
    # Frobenius error as every GPU test; the worst element catches a wrong tile or row
    # that a norm over a large output would dilute.
    assert rel < TOL[dtype_name] and worst < WORST[dtype_name], \
        f"{what}: relative error {rel:.2e}, worst element {worst:.2e}"

"""The one packed weight layout every kernel reads, and `pack()` into it.

Layout of `PackedWeight.qweight` (uint8, ceil(N/16)*16 * K/2 bytes), the same
as `PackedWeightLayout` in csrc/w4a16/cutlass_gemm.cuh:

- Codes are signed 4-bit two's complement, two per byte, the element with the
  even nibble offset in the low nibble.
- The weight [N, K] is cut into 16x16 atoms. Atom (r, c) (rows 16r.., k 16c..)
  starts at nibble 256 * (c + r * K/16): K-fastest, so 16 rows form one
  contiguous stream of 8*K bytes.
- Inside an atom, element (m, k) with m = m0 + 8*m1, k = k0 + 2*k1 + 8*k2
  sits at nibble 32*m0 + 8*k1 + 4*k0 + 2*k2 + m1: the 8 values one thread
  of a 16-bit wgmma A fragment holds become one 32-bit word, in the order
  [0,2,4,6,1,3,5,7] that the lop3 int4 -> 16-bit conversion wants.
- Rows N..ceil(N/16)*16 are zero padding.

Scales (and zeros) are stored [K/group, N] (N contiguous) in the activation
dtype; per_column scales are [N]. Zero points are stored pre-multiplied for
the kernels' `code * scale + zero` with signed codes: for w = (q - z) * s with
q in [0, 15], the signed code is q - 8 and the stored zero is (8 - z) * s.
"""

from __future__ import annotations

import dataclasses
import numbers

import torch

from .dtypes import NAMES as DTYPES
from .quant import MODES, check_mode

ATOM = 16  # rows and k per reorder atom


@dataclasses.dataclass(frozen=True)
class PackedWeight:
    """A 4-bit weight in the kernels' layout, with its scales (and zeros)."""

    qweight: torch.Tensor           # uint8 [ceil(N/16)*16 * K/2]
    scales: torch.Tensor            # [K/group, N] or [N] (per_column), activation dtype
    zeros: torch.Tensor | None      # [K/group, N], pre-multiplied, or None
    n: int
    k: int
    group_size: int                 # == k for per_column
    mode: str
    dtype: torch.dtype              # activation (and scale) dtype

    @property
    def device(self) -> torch.device:
        return self.qweight.device

    @property
    def dtype_name(self) -> str:
        return DTYPES[self.dtype]

    def to(self, device) -> "PackedWeight":
        return dataclasses.replace(
            self, qweight=self.qweight.to(device), scales=self.scales.to(device),
            zeros=None if self.zeros is None else self.zeros.to(device))

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check n, k, group_size, mode and dtype against the tensors' sizes, dtypes and devices
        (cheap integer checks): a mismatch would make a kernel read past the weight."""
        if self.mode not in MODES:
            raise ValueError(f"unknown quant mode {self.mode!r}; allowed: {', '.join(MODES)}")
        if self.dtype not in DTYPES:
            raise TypeError(f"dtype must be torch.float16 or torch.bfloat16, got {self.dtype}")
        n, k, g = self.n, self.k, self.group_size
        for name, v in (("n", n), ("k", k), ("group_size", g)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"PackedWeight.{name} must be a positive integer, got {v!r}")
        if n % 8:
            raise ValueError(f"PackedWeight.n = {n}: must be a multiple of 8")
        if k % 64:
            raise ValueError(f"PackedWeight.k = {k}: must be a multiple of 64")
        if self.mode == "per_column" and g != k:
            raise ValueError(f"per_column has one group of K = {k}, got group_size {g}")
        if k % g or (g != k and g % 64):
            raise ValueError(f"group_size {g} must divide K = {k} and be a multiple of 64 (or K)")
        for name, t in (("qweight", self.qweight), ("scales", self.scales), ("zeros", self.zeros)):
            if t is None and name != "zeros":
                raise TypeError(f"PackedWeight.{name} is None")
            if t is not None and not isinstance(t, torch.Tensor):
                raise TypeError(f"PackedWeight.{name} must be a torch.Tensor, got {type(t).__name__}")
        if self.qweight.dtype != torch.uint8:
            raise TypeError(f"PackedWeight.qweight must be uint8, got {self.qweight.dtype}")
        want = padded_rows(n) * k // 2
        if self.qweight.numel() != want:
            raise ValueError(f"PackedWeight.qweight holds {self.qweight.numel()} bytes; N = {n}, K = {k} "
                             f"need {want} (ceil(N/16)*16 * K/2)")
        sshape = (n,) if self.mode == "per_column" else (k // g, n)
        if self.scales.dtype != self.dtype:
            raise TypeError(f"PackedWeight.scales has dtype {self.scales.dtype}, expected {self.dtype}")
        if tuple(self.scales.shape) != sshape:
            raise ValueError(f"PackedWeight.scales has shape {tuple(self.scales.shape)}; {self.mode} with "
                             f"N = {n}, K = {k}, group_size = {g} needs {sshape}")
        if self.mode == "groupwise_zero":
            if self.zeros is None:
                raise ValueError("groupwise_zero needs zeros [K/group, N]")
            if self.zeros.dtype != self.dtype:
                raise TypeError(f"PackedWeight.zeros has dtype {self.zeros.dtype}, expected {self.dtype}")
            if tuple(self.zeros.shape) != sshape:
                raise ValueError(f"PackedWeight.zeros has shape {tuple(self.zeros.shape)}, expected {sshape}")
        elif self.zeros is not None:
            raise ValueError(f"{self.mode} takes no zeros (use groupwise_zero)")
        devices = {t.device for t in (self.qweight, self.scales, self.zeros) if t is not None}
        if len(devices) > 1:
            raise ValueError(f"PackedWeight tensors are on several devices: {sorted(map(str, devices))}")

    def __repr__(self) -> str:
        return (f"PackedWeight(n={self.n}, k={self.k}, mode={self.mode}, group_size={self.group_size}, "
                f"dtype={self.dtype_name}, device={self.device})")


def padded_rows(n: int) -> int:
    return (n + ATOM - 1) // ATOM * ATOM


# Source dims after reshaping codes [Np, K] -> [R, m1, m0, C, k2, k1, k0]
# (n = 16R' + 8*m1 + m0, k = 16C' + 8*k2 + 2*k1 + k0); the target order
# (R, C, m0, k1, k0, k2, m1) lists nibbles in memory order.
_TO_PACKED = (0, 3, 2, 5, 6, 4, 1)
_FROM_PACKED = tuple(_TO_PACKED.index(i) for i in range(7))


def reorder_codes(codes: torch.Tensor) -> torch.Tensor:
    """[Np, K] int8 codes (Np a multiple of 16) -> flat nibble stream in memory order."""
    np_, k = codes.shape
    v = codes.reshape(np_ // 16, 2, 8, k // 16, 2, 4, 2)
    return v.permute(*_TO_PACKED).reshape(-1)


def restore_codes(stream: torch.Tensor, np_: int, k: int) -> torch.Tensor:
    """Inverse of `reorder_codes`."""
    v = stream.reshape(np_ // 16, k // 16, 8, 4, 2, 2, 2)
    return v.permute(*_FROM_PACKED).reshape(np_, k)


def _nibbles_to_bytes(stream: torch.Tensor) -> torch.Tensor:
    s = stream.to(torch.uint8) & 0xF
    return s[0::2] | (s[1::2] << 4)


def _bytes_to_signed_nibbles(b: torch.Tensor) -> torch.Tensor:
    lo = (b & 0xF).to(torch.int8)
    hi = (b >> 4).to(torch.int8)
    out = torch.stack([lo, hi], dim=-1).reshape(-1)
    return torch.where(out >= 8, out - 16, out)


def unpack_nibbles(packed: torch.Tensor, k: int) -> torch.Tensor:
    """[N, K/2] uint8, low nibble = even k -> [N, K] int8 in [0, 15]."""
    lo = packed & 0xF
    hi = packed >> 4
    return torch.stack([lo, hi], dim=-1).reshape(packed.shape[0], k).to(torch.int8)


def _as_codes(q: torch.Tensor, nibbles_packed: bool) -> torch.Tensor:
    if not isinstance(q, torch.Tensor):
        raise TypeError(f"q must be a torch.Tensor, got {type(q).__name__}")
    if q.dim() != 2:
        raise ValueError(f"q must be 2-D, got shape {tuple(q.shape)}")
    if nibbles_packed:
        if q.dtype != torch.uint8:
            raise TypeError(f"nibble-packed q must be uint8 [N, K/2], got {q.dtype}")
        return unpack_nibbles(q, q.shape[1] * 2)
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError(f"q must hold integer codes, got {q.dtype}")
    return q


def _check_finite(name: str, t: torch.Tensor) -> None:
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite: found NaN or inf (every output of such a group "
                         "would be NaN)")


def _check_fits(name: str, converted: torch.Tensor, dtype: torch.dtype) -> None:
    """Finite inputs that became inf on conversion to the activation dtype overflowed it."""
    if converted.numel() and not bool(torch.isfinite(converted).all()):
        raise ValueError(f"{name} do not fit {str(dtype).replace('torch.', '')} (largest finite value "
                         f"{torch.finfo(dtype).max:g}): pack for bfloat16 or rescale the weight")


def pack(q: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None = None, *,
         mode: str | None = None, group_size: int | None = None, dtype: torch.dtype | None = None,
         nibbles_packed: bool = False) -> PackedWeight:
    """Convert a quantized weight to the kernels' layout, once.

    q: [N, K] integer codes (int8/int16/int32/int64/uint8), signed [-8, 7] for
       scale-only modes, unsigned [0, 15] for groupwise_zero; or, with
       `nibbles_packed=True`, [N, K/2] uint8 with the even k in the low nibble.
    scales: [N] or [N, 1] (per_column), [N, K/group] (groupwise modes).
    zeros: [N, K/group] (groupwise_zero), integer or float valued.
    mode: inferred when omitted (zeros -> groupwise_zero; one scale per row ->
       per_column; else groupwise).
    dtype: activation dtype the weight will be used with (fp16 or bf16);
       defaults to the scales' dtype when that is fp16/bf16, else fp16.

    Runs where the inputs are (on the GPU for CUDA tensors).
    """
    codes = _as_codes(q, nibbles_packed)
    n, k = codes.shape
    if not isinstance(scales, torch.Tensor):
        raise TypeError(f"scales must be a torch.Tensor, got {type(scales).__name__}")
    if scales.device != codes.device or (zeros is not None and zeros.device != codes.device):
        raise ValueError(f"q, scales and zeros must be on one device (q on {codes.device}, "
                         f"scales on {scales.device}{'' if zeros is None else f', zeros on {zeros.device}'})")
    if mode is None:
        mode = ("groupwise_zero" if zeros is not None else
                "per_column" if scales.dim() == 1 or (scales.dim() == 2 and scales.shape[1] == 1)
                else "groupwise")
    check_mode(mode)
    if dtype is None:
        dtype = scales.dtype if scales.dtype in DTYPES else torch.float16
    if dtype not in DTYPES:
        raise TypeError(f"dtype must be torch.float16 or torch.bfloat16, got {dtype}")
    if n % 8:
        raise ValueError(f"N = {n} output features: must be a multiple of 8")
    if k % 64:
        raise ValueError(f"K = {k} input features: must be a multiple of 64")

    if mode == "per_column":
        if scales.numel() != n or scales.dim() not in (1, 2):
            raise ValueError(f"per_column scales must be [N] = [{n}], got {tuple(scales.shape)}")
        if zeros is not None:
            raise ValueError("per_column takes no zeros (use groupwise_zero)")
        if group_size not in (None, k):
            raise ValueError(f"per_column has one group of K = {k}, got group_size {group_size}")
        group_size = k
        s_packed = scales.reshape(n).to(dtype).contiguous()
        z_packed = None
    else:
        if scales.dim() != 2 or scales.shape[0] != n:
            raise ValueError(f"{mode} scales must be [N, K/group] with N = {n}, got {tuple(scales.shape)}")
        groups = scales.shape[1]
        if groups < 1:
            raise ValueError(f"{mode} scales [N, K/group] have no group (shape {tuple(scales.shape)})")
        if k % groups:
            raise ValueError(f"{groups} scale groups do not divide K = {k}")
        g = k // groups
        if group_size is not None and group_size != g:
            raise ValueError(f"group_size {group_size} disagrees with scales: K = {k} / {groups} groups = {g}")
        if g != k and g % 64:
            raise ValueError(f"group size {g} is not supported: use a multiple of 64 (e.g. 64, 128) or K")
        group_size = g
        s32 = scales.float()
        if mode == "groupwise_zero":
            if zeros is None:
                raise ValueError("groupwise_zero needs zeros [N, K/group]")
            if tuple(zeros.shape) != (n, groups):
                raise ValueError(f"zeros must be [N, K/group] = [{n}, {groups}], got {tuple(zeros.shape)}")
            z_packed = ((8.0 - zeros.float()) * s32).t().to(dtype).contiguous()
        else:
            if zeros is not None:
                raise ValueError(f"{mode} takes no zeros (use groupwise_zero)")
            z_packed = None
        s_packed = s32.t().to(dtype).contiguous()

    _check_finite("scales", scales)
    if zeros is not None:
        _check_finite("zeros", zeros)
    _check_fits("scales", s_packed, dtype)
    if z_packed is not None:
        _check_fits("zeros, stored pre-multiplied as (8 - z) * scale,", z_packed, dtype)
    lo, hi = (0, 15) if mode == "groupwise_zero" else (-8, 7)
    if codes.numel():
        cmin, cmax = int(codes.min()), int(codes.max())
        if cmin < lo or cmax > hi:
            raise ValueError(f"codes for {mode} must lie in [{lo}, {hi}], found [{cmin}, {cmax}]")
    signed = codes.to(torch.int8) - 8 if mode == "groupwise_zero" else codes.to(torch.int8)
    np_ = padded_rows(n)
    if np_ != n:
        signed = torch.cat([signed, signed.new_zeros(np_ - n, k)])
    qweight = _nibbles_to_bytes(reorder_codes(signed.contiguous()))
    return PackedWeight(qweight=qweight, scales=s_packed, zeros=z_packed, n=n, k=k,
                        group_size=group_size, mode=mode, dtype=dtype)


def unpack_codes(p: PackedWeight) -> torch.Tensor:
    """The signed codes [N, K] stored in a PackedWeight (q - 8 for groupwise_zero)."""
    np_ = padded_rows(p.n)
    return restore_codes(_bytes_to_signed_nibbles(p.qweight), np_, p.k)[: p.n]


def dequantize_packed(p: PackedWeight) -> torch.Tensor:
    """The float32 weight [N, K] a PackedWeight multiplies by, from its packed data."""
    c = unpack_codes(p).float()
    if p.mode == "per_column":
        return c * p.scales.float().reshape(p.n, 1)
    groups = p.k // p.group_size
    c = c.reshape(p.n, groups, p.group_size)
    s = p.scales.float().t().reshape(p.n, groups, 1)
    w = c * s
    if p.zeros is not None:
        w = w + p.zeros.float().t().reshape(p.n, groups, 1)
    return w.reshape(p.n, p.k)

"""Reference round-to-nearest 4-bit quantizer and its inverse.

Conventions (weights shaped [N (out_features), K (in_features)], as nn.Linear):

- `per_column`: one scale per output channel, scales [N]; signed codes
  q in [-8, 7]; w = q * s.
- `groupwise`: one scale per group of `group_size` consecutive K, scales
  [N, K/group]; signed codes; w = q * s.
- `groupwise_zero`: scale and zero point per group, scales and zeros
  [N, K/group]; unsigned codes q in [0, 15]; w = (q - z) * s (GPTQ/AWQ).

These run on any device; they are for tests, examples and users without a
calibrated quantizer of their own.
"""

from __future__ import annotations

import torch

MODES = ("per_column", "groupwise", "groupwise_zero")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown quant mode {mode!r}; allowed: {', '.join(MODES)}")
    return mode


def _group_view(w: torch.Tensor, group_size: int) -> torch.Tensor:
    n, k = w.shape
    if group_size <= 0 or k % group_size:
        raise ValueError(f"group_size {group_size} does not divide K = {k}")
    return w.reshape(n, k // group_size, group_size)


# Ranges tried per group by the clipping search: shrinking the range clips a
# few outliers but halves the rounding step for everything else.
CLIP_RATIOS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)


def _quantize_groups(wg: torch.Tensor, mode: str, ratio: float):
    """Round to nearest with the group range scaled by `ratio`; returns (q, s, z)."""
    if mode == "groupwise_zero":
        lo = wg.amin(dim=-1, keepdim=True).clamp(max=0) * ratio
        hi = wg.amax(dim=-1, keepdim=True).clamp(min=0) * ratio
        s = ((hi - lo) / 15).clamp(min=1e-8)
        z = torch.round(-lo / s).clamp(0, 15)
        q = torch.round(wg / s + z).clamp(0, 15)
        return q, s, z
    amax = wg.abs().amax(dim=-1, keepdim=True) * ratio
    s = (amax / 7.5).clamp(min=1e-8)  # [-8, 7] covers +-amax after rounding
    return torch.round(wg / s).clamp(-8, 7), s, None


def quantize(w: torch.Tensor, group_size: int | None = 128, mode: str = "groupwise", *,
             clip_search: bool = True):
    """Quantize a [N, K] float weight. Returns (q, scales, zeros):

    q int8 [N, K]; scales [N] (per_column) or [N, K/group] in w's dtype (fp32
    for fp32 input); zeros [N, K/group] (groupwise_zero, integer-valued, same
    dtype as scales) or None.

    Round to nearest; with `clip_search` (default) each group's range is the
    one of CLIP_RATIOS that gives the smallest squared error, else the full
    min/max range.
    """
    check_mode(mode)
    if w.dim() != 2 or not w.is_floating_point():
        raise ValueError(f"quantize expects a 2-D float weight [N, K], got {tuple(w.shape)} {w.dtype}")
    n, k = w.shape
    # The shapes pack() and the kernels take, refused here rather than after a slow quantization.
    if n % 8:
        raise ValueError(f"N = {n} output features: must be a multiple of 8")
    if k % 64:
        raise ValueError(f"K = {k} input features: must be a multiple of 64")
    if w.numel() and not bool(torch.isfinite(w).all()):
        raise ValueError("the weight holds NaN or inf: its groups would get NaN scales")
    if mode == "per_column":
        group_size = k
    if group_size is None:
        raise ValueError(f"mode {mode!r} needs a group_size")
    wg = _group_view(w.float(), group_size)
    q, s, z = _quantize_groups(wg, mode, 1.0)
    if clip_search:
        def err(q, s, z):
            return ((q - (z if z is not None else 0)) * s - wg).square().sum(dim=-1, keepdim=True)

        best = err(q, s, z)
        for ratio in CLIP_RATIOS[1:]:
            q2, s2, z2 = _quantize_groups(wg, mode, ratio)
            e2 = err(q2, s2, z2)
            better = e2 < best
            q, s = torch.where(better, q2, q), torch.where(better, s2, s)
            if z is not None:
                z = torch.where(better, z2, z)
            best = torch.minimum(best, e2)
    zeros = z.squeeze(-1) if z is not None else None
    out_dtype = w.dtype if w.dtype in (torch.float16, torch.bfloat16) else torch.float32
    scales = s.squeeze(-1).to(out_dtype)
    if mode == "per_column":
        scales = scales.reshape(n)
    if zeros is not None:
        zeros = zeros.to(out_dtype)
    return q.reshape(n, k).to(torch.int8), scales, zeros


def dequantize(q: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None = None,
               group_size: int | None = None, mode: str | None = None) -> torch.Tensor:
    """The float32 weight [N, K] that (q, scales, zeros) stand for."""
    if q.dim() != 2:
        raise ValueError(f"q must be [N, K], got {tuple(q.shape)}")
    n, k = q.shape
    mode = mode or ("groupwise_zero" if zeros is not None else
                    "per_column" if scales.dim() == 1 else "groupwise")
    check_mode(mode)
    s = scales.float().reshape(n, -1)
    groups = s.shape[1]
    if k % groups:
        raise ValueError(f"{groups} scale groups do not divide K = {k}")
    if group_size is not None and group_size * groups != k:
        raise ValueError(f"group_size {group_size} x {groups} groups != K = {k}")
    g = k // groups
    qf = q.float().reshape(n, groups, g)
    if mode == "groupwise_zero":
        if zeros is None:
            raise ValueError("groupwise_zero needs zeros")
        qf = qf - zeros.float().reshape(n, groups, 1)
    return (qf * s.reshape(n, groups, 1)).reshape(n, k)

"""Importers for 4-bit checkpoints quantized elsewhere: GPTQ and AWQ.

Both become the package's zero-point mode (`groupwise_zero`, w = (q - z) * s
with q, z in [0, 15]) and one `PackedWeight`. Layouts expected, for a layer
with K = in_features, N = out_features and group size g:

GPTQ (AutoGPTQ / GPTQModel / transformers):
  qweight int32 [K/8, N]   bits 4i..4i+3 of qweight[r, n] hold q[k = 8r + i, n]
  qzeros  int32 [K/g, N/8] bits 4i..4i+3 of qzeros[j, c] hold z[j, n = 8c + i]
  scales  fp16  [K/g, N]
  g_idx   int32 [K]        optional: the group of each k (act-order when not k // g)
  GPTQ v1 checkpoints store z - 1 ("zeros minus one": z = stored + 1, so a
  stored 15 means 16, as GPTQ v1's own kernels read it), v2 checkpoints store
  z itself, and labels are often missing or wrong. So by default the data
  decides (`gptq_zeros_minus_one=None`), per layer:
  - a symmetric quantization stores one zero everywhere: 7 means v1, 8 v2;
  - otherwise, in each group of a real quantized weight the mean code sits
    within a fraction of a step of the zero point (the weights' mean over a
    group is small against the step), so the median over all groups of
    (mean code - stored zero) is near 0 for v2 and near 1 for v1: below 0.25
    is v2, above 0.75 v1, and in between the data cannot tell (a layer whose
    median group mean is a quarter step or more off zero, about 0.1 standard
    deviations of the weight at 4 bits; trained layers sit far below that).
  Layers the data cannot tell follow the layers that it can; layers of one
  checkpoint that disagree are refused; with no layer decided, the caller
  must say (True for v1, False for v2). hf_checkpoint.py also uses the
  config's label (checkpoint_format "gptq" / "gptq_v2") where the data
  cannot tell.

AWQ (AutoAWQ, GEMM version):
  qweight int32 [K, N/8]   bits 4i..4i+3 of qweight[k, c] hold q[k, n = 8c + AWQ_ORDER[i]]
  qzeros  int32 [K/g, N/8] the same interleaved order, z stored as is
  scales  fp16  [K/g, N]
  with AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7].

Act-order (a g_idx that is not k // g): the weight's K is permuted once at
load so that groups are contiguous, and the layer permutes the activation's
columns the same way at run time (`W4A16Linear.input_perm`): mathematically
the same product.
"""

from __future__ import annotations

import torch

from .nn import W4A16Linear

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def _check(name: str, t, dtype, shape):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name} must be {dtype}, got {t.dtype}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")


def _nibbles(x: torch.Tensor) -> torch.Tensor:
    """int32 [..., C] -> int8 [..., C, 8]: nibble i (bits 4i..4i+3) at index i."""
    shifts = torch.arange(0, 32, 4, dtype=torch.int32, device=x.device)
    return ((x.unsqueeze(-1) >> shifts) & 0xF).to(torch.int8)


def unpack_gptq(qweight, qzeros, scales, g_idx=None, *, zeros_minus_one: bool = True):
    """GPTQ tensors -> (q [N, K] in [0,15], zeros [N, G], scales [N, G], g_idx [K] or None)."""
    if not isinstance(qweight, torch.Tensor) or qweight.dim() != 2:
        raise ValueError("GPTQ qweight must be a 2-D int32 tensor [K/8, N]")
    k, n = qweight.shape[0] * 8, qweight.shape[1]
    if not isinstance(scales, torch.Tensor) or scales.dim() != 2 or scales.shape[1] != n:
        raise ValueError(f"GPTQ scales must be [K/group, N] with N = {n}, got "
                         f"{tuple(scales.shape) if isinstance(scales, torch.Tensor) else scales}")
    groups = scales.shape[0]
    if groups < 1:
        raise ValueError(f"GPTQ scales [K/group, N] have no group (shape {tuple(scales.shape)})")
    _check("qweight", qweight, torch.int32, (k // 8, n))
    _check("qzeros", qzeros, torch.int32, (groups, n // 8))
    if scales.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise TypeError(f"scales must be a float tensor, got {scales.dtype}")
    q = _nibbles(qweight).permute(0, 2, 1).reshape(k, n).t().contiguous()  # [N, K]
    z = _nibbles(qzeros).reshape(groups, n).t().contiguous().to(torch.int16)  # [N, G]
    if zeros_minus_one:
        # A stored 15 means 16 here, as in the GPTQ v1 kernels themselves
        # ((stored & 0xF) + 1); the zero-point mode keeps zeros as floats, so 16 is fine.
        z = z + 1
    if g_idx is not None:
        check_g_idx(g_idx, k, groups)
    return q, z, scales.t().contiguous(), g_idx


def check_g_idx(g_idx, k: int, groups: int, name: str = "g_idx") -> None:
    """A group index per input feature: an int32/int64 tensor [K] with values in [0, groups)."""
    if not isinstance(g_idx, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(g_idx).__name__}")
    if g_idx.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} must be int32 or int64, got {g_idx.dtype}")
    if tuple(g_idx.shape) != (k,):
        raise ValueError(f"{name} must have shape ({k},), got {tuple(g_idx.shape)}")
    lo, hi = int(g_idx.min()), int(g_idx.max())
    if lo < 0 or hi >= groups:
        raise ValueError(f"{name} must hold group indices in [0, {groups}), got values in [{lo}, {hi}]")


def gptq_zero_offset(q: torch.Tensor, stored_zeros: torch.Tensor, g_idx: torch.Tensor | None = None) -> float:
    """Median over (row, group) of (mean code in the group - stored zero): ~0 when the zeros are
    stored as is (GPTQ v2), ~1 when stored minus one (v1). q [N, K] and stored_zeros [N, G] as
    unpack_gptq(..., zeros_minus_one=False) returns them."""
    n, k = q.shape
    groups = stored_zeros.shape[1]
    gid = (g_idx.to(torch.int64) if g_idx is not None
           else torch.arange(k, device=q.device) // (k // groups))
    sums = torch.zeros(n, groups, dtype=torch.float64, device=q.device).index_add_(1, gid, q.to(torch.float64))
    counts = torch.bincount(gid, minlength=groups).clamp(min=1).to(torch.float64)
    return float((sums / counts - stored_zeros.to(torch.float64)).median())


# The data rule's margin: offsets between these two are too close to call.
GPTQ_V2_BELOW, GPTQ_V1_ABOVE = 0.25, 0.75


def gptq_convention_from_unpacked(q: torch.Tensor, stored_zeros: torch.Tensor,
                                  g_idx: torch.Tensor | None = None) -> tuple[bool | None, float]:
    """(True for v1, False for v2, None when the data cannot tell; the offset it was decided by)
    from q [N, K] and the zeros as stored ([N, G], unpack_gptq(..., zeros_minus_one=False)).

    A symmetric quantization stores one zero everywhere: 7 in v1 (8 minus one), 8 in v2; that is
    exact. Otherwise the median over (row, group) of (mean code - stored zero) is near 0 for v2
    and near 1 for v1; below 0.25 is v2, above 0.75 v1, and between them the data cannot tell."""
    lo, hi = int(stored_zeros.min()), int(stored_zeros.max())
    if lo == hi and lo in (7, 8):
        return lo == 7, float(8 - lo)
    offset = gptq_zero_offset(q, stored_zeros, g_idx)
    if offset > GPTQ_V1_ABOVE:
        return True, offset
    if offset < GPTQ_V2_BELOW:
        return False, offset
    return None, offset


def gptq_zeros_minus_one_from_data(qweight, qzeros, scales, g_idx=None) -> tuple[bool | None, float]:
    """(True for GPTQ v1 "zeros minus one", False for v2, None when the data cannot tell; the
    median offset it was decided by). See gptq_convention_from_unpacked."""
    q, z, _, g = unpack_gptq(qweight, qzeros, scales, g_idx, zeros_minus_one=False)
    return gptq_convention_from_unpacked(q, z, g)


def _undecided(offset: float) -> ValueError:
    return ValueError(f"GPTQ zero points: the data cannot tell v1 (zeros minus one) from v2 (median offset "
                      f"{offset:.2f}, between {GPTQ_V2_BELOW} and {GPTQ_V1_ABOVE}); pass "
                      "gptq_zeros_minus_one=True (v1) or False (v2)")


def unpack_awq(qweight, qzeros, scales):
    """AWQ tensors -> (q [N, K] in [0,15], zeros [N, G], scales [N, G])."""
    if not isinstance(qweight, torch.Tensor) or qweight.dim() != 2:
        raise ValueError("AWQ qweight must be a 2-D int32 tensor [K, N/8]")
    k, n = qweight.shape[0], qweight.shape[1] * 8
    if not isinstance(scales, torch.Tensor) or scales.dim() != 2 or scales.shape[1] != n:
        raise ValueError(f"AWQ scales must be [K/group, N] with N = {n}, got "
                         f"{tuple(scales.shape) if isinstance(scales, torch.Tensor) else scales}")
    groups = scales.shape[0]
    if groups < 1:
        raise ValueError(f"AWQ scales [K/group, N] have no group (shape {tuple(scales.shape)})")
    _check("qweight", qweight, torch.int32, (k, n // 8))
    _check("qzeros", qzeros, torch.int32, (groups, n // 8))
    inv = torch.tensor([AWQ_ORDER.index(c) for c in range(8)], device=qweight.device)
    q = _nibbles(qweight)[..., inv].reshape(k, n).t().contiguous()     # [N, K]
    z = _nibbles(qzeros)[..., inv].reshape(groups, n).t().contiguous()  # [N, G]
    return q, z, scales.t().contiguous()


def _act_order(q, z, s, g_idx, group: int):
    """Permute K so that groups are contiguous; returns (q, z, s, perm or None)."""
    k = q.shape[1]
    if g_idx is None:
        return q, z, s, None
    g_idx = g_idx.to(torch.int64)
    if torch.equal(g_idx, torch.arange(k, device=g_idx.device) // group):
        return q, z, s, None
    counts = torch.bincount(g_idx, minlength=k // group)
    if counts.numel() != k // group or (counts != group).any():
        raise ValueError(f"g_idx does not assign exactly {group} input features to each of {k // group} groups")
    perm = torch.argsort(g_idx, stable=True)
    return q[:, perm].contiguous(), z, s, perm


def layer_from_gptq(qweight, qzeros, scales, g_idx=None, bias=None, *, zeros_minus_one: bool | None = None,
                    dtype: torch.dtype | None = None) -> W4A16Linear:
    """zeros_minus_one: True (GPTQ v1), False (v2), None: decided from the data (module docstring;
    a ValueError where the data cannot tell)."""
    q, z, s, g_idx = unpack_gptq(qweight, qzeros, scales, g_idx, zeros_minus_one=False)
    if zeros_minus_one is None:
        zeros_minus_one, offset = gptq_convention_from_unpacked(q, z, g_idx)
        if zeros_minus_one is None:
            raise _undecided(offset)
    if zeros_minus_one:
        z = z + 1      # a stored 15 means 16 (unpack_gptq)
    k = q.shape[1]
    group = k // s.shape[1]
    q, z, s, perm = _act_order(q, z, s, g_idx, group)
    dtype = dtype or (scales.dtype if scales.dtype in (torch.float16, torch.bfloat16) else torch.float16)
    mod = W4A16Linear.from_quantized(q, s.to(dtype), z.to(dtype), None if bias is None else bias.to(dtype),
                                     mode="groupwise_zero", dtype=dtype)
    mod.set_input_perm(perm)
    return mod


def layer_from_awq(qweight, qzeros, scales, bias=None, *, dtype: torch.dtype | None = None) -> W4A16Linear:
    q, z, s = unpack_awq(qweight, qzeros, scales)
    dtype = dtype or (scales.dtype if scales.dtype in (torch.float16, torch.bfloat16) else torch.float16)
    return W4A16Linear.from_quantized(q, s.to(dtype), z.to(dtype), None if bias is None else bias.to(dtype),
                                      mode="groupwise_zero", dtype=dtype)


def load_quantized(path_or_dict, prefix: str = "", *, format: str = "auto", gptq_zeros_minus_one: bool | None = None,
                   dtype: torch.dtype | None = None, device=None) -> dict[str, W4A16Linear]:
    """W4A16Linear modules for every quantized layer under `prefix`.

    path_or_dict: a .safetensors file (read through safetensors) or a dict of
    tensors. A layer is any "<name>.qweight" with "<name>.qzeros" and
    "<name>.scales" beside it ("<name>.g_idx" and "<name>.bias" optional).
    format: "gptq", "awq" or "auto" (told apart by the shape of qweight
    against scales). gptq_zeros_minus_one: True (GPTQ v1), False (v2) or None: decided from the
    data, one decision per layer, and layers that disagree are refused (module docstring).
    Returns {name (without prefix): module}.
    """
    if isinstance(path_or_dict, dict):
        tensors = path_or_dict
    else:
        from safetensors.torch import load_file

        tensors = load_file(str(path_or_dict), device=str(device) if device is not None else "cpu")
    if format not in ("auto", "gptq", "awq"):
        raise ValueError(f"format must be 'auto', 'gptq' or 'awq', got {format!r}")
    # A prefix matches whole dotted names: "model.layers.1" takes layer 1, not 10 or 11.
    stem = prefix if prefix.endswith(".") or not prefix else prefix + "."
    layers = {}
    decided: dict[str, tuple[bool, float]] = {}   # GPTQ layers whose zero convention the data decided
    undecided: dict[str, tuple[dict, float]] = {}  # ... and those whose data cannot tell
    for key in sorted(tensors):
        if not key.endswith(".qweight"):
            continue
        name = key[: -len(".qweight")]
        if prefix and not (name == prefix.rstrip(".") or name.startswith(stem)):
            continue
        parts = {p: tensors.get(f"{name}.{p}") for p in ("qweight", "qzeros", "scales", "g_idx", "bias")}
        for p in ("qzeros", "scales"):
            if parts[p] is None:
                raise ValueError(f"{name}: has qweight but no {p}")
        qw, sc = parts["qweight"], parts["scales"]
        fmt = format
        if fmt == "auto":
            if qw.dim() == 2 and sc.dim() == 2 and qw.shape[1] == sc.shape[1]:
                fmt = "gptq"
            elif qw.dim() == 2 and sc.dim() == 2 and qw.shape[1] * 8 == sc.shape[1]:
                fmt = "awq"
            else:
                raise ValueError(f"{name}: cannot tell GPTQ from AWQ: qweight {tuple(qw.shape)}, "
                                 f"scales {tuple(sc.shape)}")
        try:
            if fmt == "gptq":
                minus_one = gptq_zeros_minus_one
                if minus_one is None:
                    minus_one, offset = gptq_zeros_minus_one_from_data(qw, parts["qzeros"], sc, parts["g_idx"])
                    if minus_one is None:       # decided below, by the layers whose data can tell
                        undecided[name] = (parts, offset)
                        continue
                    decided[name] = (minus_one, offset)
                mod = layer_from_gptq(qw, parts["qzeros"], sc, parts["g_idx"], parts["bias"],
                                      zeros_minus_one=minus_one, dtype=dtype)
            else:
                if parts["g_idx"] is not None:
                    raise ValueError("AWQ checkpoints have no g_idx")
                mod = layer_from_awq(qw, parts["qzeros"], sc, parts["bias"], dtype=dtype)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name} ({fmt}): {e}") from None
        layers[name[len(stem):] if name.startswith(stem) else ""] = mod.to(device) if device is not None else mod
    if len({v for v, _ in decided.values()}) > 1:
        v1 = sorted(n for n, (v, _) in decided.items() if v)
        v2 = sorted(n for n, (v, _) in decided.items() if not v)
        raise ValueError(f"GPTQ zero points: {len(v1)} layers look like v1 (zeros minus one, e.g. {v1[0]}) and "
                         f"{len(v2)} like v2 (e.g. {v2[0]}); pass gptq_zeros_minus_one=True (v1) or False (v2)")
    for name, (parts, offset) in undecided.items():
        if not decided:
            raise ValueError(f"{name} (gptq): {_undecided(offset)}")
        minus_one = next(iter(decided.values()))[0]
        try:
            mod = layer_from_gptq(parts["qweight"], parts["qzeros"], parts["scales"], parts["g_idx"], parts["bias"],
                                  zeros_minus_one=minus_one, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name} (gptq): {e}") from None
        layers[name[len(stem):] if name.startswith(stem) else ""] = mod.to(device) if device is not None else mod
    return dict(sorted(layers.items()))

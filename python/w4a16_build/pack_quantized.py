"""Importer for compressed-tensors `pack-quantized` checkpoints (written by llm-compressor).

Tensors of one layer <name> with K = in_features, N = out_features (int4 weights):

  weight_packed      int32 [N, ceil(K/8)]  element k of row n sits at bits 4*(k % 8) .. of word
                                           k // 8, stored as q + 8 (q signed, in [-8, 7])
  weight_scale       float [N, G]          G = K / group ("group" strategy) or 1 ("channel")
  weight_zero_point  int32 [ceil(N/8), G]  asymmetric schemes only: element n of column j sits at
                                           bits 4*(n % 8) .. of word [n // 8, j], stored as zp + 8
  weight_shape       int   [2]             (N, K)
  weight_g_idx       int   [K]             optional: the group of each input feature, written by
                                           llm-compressor's actorder="group" (GPTQ act-order). The
                                           library removed that ordering in 2026-08 (0.20 writes no
                                           g_idx), so only older checkpoints hold it; a g_idx of all
                                           -1 is the library's "not set" value and means k // group

The library dequantizes w[n, k] = (q[n, k] - zp[n, grp(k)]) * scale[n, grp(k)] with
grp(k) = g_idx[k] where present, else k // group; that is what a layer computes here:

- symmetric (no zero point): the codes q with the scales, `groupwise` mode ("group") or
  `per_column` ("channel");
- asymmetric: `groupwise_zero` with q + 8 and zp + 8 in [0, 15] (w = (q' - z') * s), one group
  of all K for "channel";
- an act-order g_idx permutes K once at load (as GPTQ act-order does, checkpoints.py) and the layer
  permutes the activation's columns the same way.

Only 4-bit integer weights are taken; a config with other settings (8 bits, floats, block or
tensor strategy, quantized activations or KV cache, a transform or sparsity config, a group stored
in another format) is refused by name, never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoints import _act_order, check_g_idx
from .nn import W4A16Linear

SUFFIXES = ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx", "bias")


def _unpack_rows(packed: torch.Tensor, count: int) -> torch.Tensor:
    """int32 [R, W] -> int16 [R, count]: nibble i of word w is element 8w + i (unsigned 0..15)."""
    shifts = torch.arange(0, 32, 4, dtype=torch.int32, device=packed.device)
    nib = (packed.unsqueeze(-1) >> shifts) & 0xF                   # [R, W, 8]
    return nib.reshape(packed.shape[0], -1)[:, :count].to(torch.int16)


def unpack_pack_quantized(weight_packed, weight_scale, weight_shape, weight_zero_point=None):
    """The checkpoint's tensors -> (q [N, K] unsigned 0..15, scales [N, G], zp [N, G] unsigned
    0..15 or None): q and zp as stored (value + 8)."""
    if not isinstance(weight_packed, torch.Tensor) or weight_packed.dtype != torch.int32 or weight_packed.dim() != 2:
        raise TypeError("weight_packed must be a 2-D int32 tensor [N, ceil(K/8)]")
    if not isinstance(weight_shape, torch.Tensor) or weight_shape.numel() != 2:
        raise ValueError("weight_shape must hold (out_features, in_features)")
    n, k = (int(v) for v in weight_shape.flatten().tolist())
    if n <= 0 or k <= 0:
        raise ValueError(f"weight_shape {(n, k)} is not a weight shape")
    if tuple(weight_packed.shape) != (n, (k + 7) // 8):
        raise ValueError(f"weight_packed must be [{n}, {(k + 7) // 8}] for weight_shape {(n, k)}, "
                         f"got {tuple(weight_packed.shape)}")
    if not isinstance(weight_scale, torch.Tensor) or weight_scale.dim() != 2 or weight_scale.shape[0] != n:
        raise ValueError(f"weight_scale must be [{n}, groups], got "
                         f"{tuple(weight_scale.shape) if isinstance(weight_scale, torch.Tensor) else weight_scale}")
    if weight_scale.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise TypeError(f"weight_scale must be a float tensor, got {weight_scale.dtype}")
    groups = weight_scale.shape[1]
    if groups < 1 or k % groups:
        raise ValueError(f"weight_scale has {groups} groups, which does not divide in_features = {k}")
    q = _unpack_rows(weight_packed, k)
    zp = None
    if weight_zero_point is not None:
        if not isinstance(weight_zero_point, torch.Tensor) or weight_zero_point.dtype != torch.int32:
            raise TypeError("weight_zero_point must be an int32 tensor [ceil(N/8), groups] (packed along N)")
        if tuple(weight_zero_point.shape) != ((n + 7) // 8, groups):
            raise ValueError(f"weight_zero_point must be [{(n + 7) // 8}, {groups}], got "
                             f"{tuple(weight_zero_point.shape)}")
        zp = _unpack_rows(weight_zero_point.t().contiguous(), n).t().contiguous()   # [N, G]
    return q, weight_scale, zp


def g_idx_or_none(weight_g_idx, k: int, groups: int):
    """The checked weight_g_idx, or None for the library's "not set" (all -1: column order)."""
    if isinstance(weight_g_idx, torch.Tensor) and weight_g_idx.numel() == k and bool((weight_g_idx == -1).all()):
        return None
    check_g_idx(weight_g_idx, k, groups, "weight_g_idx")
    return weight_g_idx


def layer_from_pack_quantized(weight_packed, weight_scale, weight_shape, weight_zero_point=None, weight_g_idx=None,
                              bias=None, *, dtype: torch.dtype | None = None) -> W4A16Linear:
    """One W4A16Linear from a pack-quantized layer's tensors (see the module docstring)."""
    q, s, zp = unpack_pack_quantized(weight_packed, weight_scale, weight_shape, weight_zero_point)
    n, k = q.shape
    groups = s.shape[1]
    group = k // groups
    if weight_g_idx is not None:
        weight_g_idx = g_idx_or_none(weight_g_idx, k, groups)
    dtype = dtype or (s.dtype if s.dtype in (torch.float16, torch.bfloat16) else torch.float16)
    bias = None if bias is None else bias.to(dtype)
    if zp is None:
        codes = q.to(torch.int8) - 8
        codes, _, s, perm = _act_order(codes, None, s, weight_g_idx, group)
        if groups == 1:
            mod = W4A16Linear.from_quantized(codes, s[:, 0].to(dtype), None, bias, mode="per_column", dtype=dtype)
        else:
            mod = W4A16Linear.from_quantized(codes, s.to(dtype), None, bias, mode="groupwise", dtype=dtype)
    else:
        q, zp, s, perm = _act_order(q, zp, s, weight_g_idx, group)
        mod = W4A16Linear.from_quantized(q, s.to(dtype), zp.to(dtype), bias, mode="groupwise_zero",
                                         group_size=group, dtype=dtype)
    mod.set_input_perm(perm)
    return mod


def check_config(quantization_config: dict) -> None:
    """Refuse, by name, what this importer does not take: a config group stored in a format other
    than pack-quantized, weights that are not 4-bit integers in the group or channel strategy,
    quantized input or output activations or KV cache, and transform (rotation) or sparsity
    configs, which change what the stored weights mean."""
    top = quantization_config.get("format")
    groups = quantization_config.get("config_groups") or {}
    if not groups:
        raise ValueError("compressed-tensors quantization_config has no config_groups: nothing is quantized")
    for key, what in (("kv_cache_scheme", "a quantized KV cache"), ("transform_config", "weight transforms"),
                      ("sparsity_config", "sparse weights"), ("moe_sparsity_config", "sparse experts")):
        if quantization_config.get(key):
            raise ValueError(f"compressed-tensors {key} is set ({what}): only plain pack-quantized int4 weights "
                             "are supported")
    for name, grp in groups.items():
        if not isinstance(grp, dict):
            raise ValueError(f"config group {name!r}: {grp!r} is not a quantization scheme")
        gfmt = grp.get("format") or top
        if gfmt != "pack-quantized":
            raise ValueError(f"config group {name!r}: format {gfmt!r}, only 'pack-quantized' (int4 weights) "
                             "is supported")
        w = grp.get("weights") or {}
        problems = []
        if w.get("num_bits") != 4:
            problems.append(f"num_bits={w.get('num_bits')}")
        if w.get("type", "int") != "int":
            problems.append(f"type={w.get('type')!r}")
        if w.get("strategy") not in ("group", "channel"):
            problems.append(f"strategy={w.get('strategy')!r}")
        if w.get("dynamic"):
            problems.append(f"dynamic={w.get('dynamic')!r}")
        if grp.get("input_activations"):
            problems.append("quantized input activations")
        if grp.get("output_activations"):
            problems.append("quantized output activations")
        if problems:
            raise ValueError(f"config group {name!r}: {', '.join(problems)}: only 4-bit integer weights "
                             f"(group or channel strategy) with 16-bit activations are supported")


def load_pack_quantized(path_or_dict, prefix: str = "", *, quantization_config: dict | None = None,
                        dtype: torch.dtype | None = None, device=None) -> dict[str, W4A16Linear]:
    """W4A16Linear modules for every pack-quantized layer under `prefix`.

    path_or_dict: a checkpoint directory (its config.json's `quantization_config` is checked and
    every *.safetensors file read), a .safetensors file, or a dict of tensors. A layer is any
    "<name>.weight_packed" with "<name>.weight_scale" and "<name>.weight_shape" beside it.
    Returns {name (without prefix): module}.
    """
    if isinstance(path_or_dict, dict):
        tensors = path_or_dict
    else:
        from safetensors.torch import load_file

        path = Path(path_or_dict)
        files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
        if path.is_dir():
            cfg_path = path / "config.json"
            if quantization_config is None and cfg_path.is_file():
                quantization_config = json.loads(cfg_path.read_text()).get("quantization_config")
            if not files:
                raise FileNotFoundError(f"{path}: no .safetensors file")
        tensors = {}
        for f in files:
            tensors.update(load_file(str(f), device="cpu"))
    if quantization_config is not None:
        check_config(quantization_config)
    stem = prefix if prefix.endswith(".") or not prefix else prefix + "."
    layers = {}
    for key in sorted(tensors):
        if not key.endswith(".weight_packed"):
            continue
        name = key[: -len(".weight_packed")]
        if prefix and not (name == prefix.rstrip(".") or name.startswith(stem)):
            continue
        parts = {p: tensors.get(f"{name}.{p}") for p in SUFFIXES}
        for p in ("weight_scale", "weight_shape"):
            if parts[p] is None:
                raise ValueError(f"{name}: has weight_packed but no {p}")
        try:
            mod = layer_from_pack_quantized(parts["weight_packed"], parts["weight_scale"], parts["weight_shape"],
                                            parts["weight_zero_point"], parts["weight_g_idx"], parts["bias"],
                                            dtype=dtype)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name} (pack-quantized): {e}") from None
        layers[name[len(stem):] if name.startswith(stem) else ""] = mod.to(device) if device is not None else mod
    return layers

"""Serve a Hugging Face transformers model's quantized linear layers from its checkpoint directory.

`load_into(model, checkpoint_dir)` reads the directory's config.json `quantization_config`
(`quant_method` "gptq", "awq" or "compressed-tensors" with the pack-quantized format), builds a
`W4A16Linear` for every quantized layer with the importers of checkpoints.py / pack_quantized.py,
puts each in place of the model's `nn.Linear` of the same name, and loads the checkpoint's other
tensors (embeddings, norms, unquantized heads) into the model. A quantized layer the kernels
cannot take (shape, group size) is dequantized into the model's own `nn.Linear` instead and listed
in the report: nothing is silently dropped. The model is typically built from the checkpoint's
config without weights (`AutoModelForCausalLM.from_config(config, torch_dtype=torch.float16)`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import nn

from . import checkpoints, pack_quantized
from .nn import W4A16Linear
from .nn import unservable_reason as nn_unservable


@dataclasses.dataclass
class LoadReport:
    """What `load_into` did: layers served by the kernels, quantized layers kept dense (with why),
    model tensors the checkpoint did not provide, checkpoint tensors the model has no place for."""

    method: str
    served: list[str] = dataclasses.field(default_factory=list)
    dense: dict[str, str] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    gptq_zeros_minus_one: bool | None = None
    gptq_rule: str = ""          # how the GPTQ convention was decided: override, data or label


# Per format: the tensors a quantized layer must have.
_REQUIRED = {"gptq": ("qweight", "qzeros", "scales"), "awq": ("qweight", "qzeros", "scales"),
             "pack-quantized": ("weight_packed", "weight_scale", "weight_shape")}
# Per format: the suffix that marks a quantized layer, and every suffix that belongs to one.
_LAYER_PARTS = {
    "gptq": ("qweight", ("qweight", "qzeros", "scales", "g_idx")),
    "awq": ("qweight", ("qweight", "qzeros", "scales")),
    "pack-quantized": ("weight_packed", ("weight_packed", "weight_scale", "weight_zero_point", "weight_shape",
                                         "weight_g_idx")),
}


def read_quantization_config(checkpoint_dir) -> dict:
    path = Path(checkpoint_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: no config.json")
    qc = json.loads(path.read_text()).get("quantization_config")
    if not isinstance(qc, dict):
        raise ValueError(f"{path}: no quantization_config (not a quantized checkpoint)")
    return qc


def checkpoint_format(qc: dict) -> str:
    """'gptq', 'awq' or 'pack-quantized' from a quantization_config; anything else is refused."""
    method = str(qc.get("quant_method", "")).lower()
    if method == "gptq":
        if qc.get("bits", 4) != 4:
            raise ValueError(f"GPTQ with {qc.get('bits')} bits: only 4-bit weights are supported")
        return "gptq"
    if method == "awq":
        if qc.get("bits", 4) != 4:
            raise ValueError(f"AWQ with {qc.get('bits')} bits: only 4-bit weights are supported")
        if str(qc.get("version", "gemm")).lower() != "gemm":
            raise ValueError(f"AWQ version {qc.get('version')!r}: only the GEMM layout is supported")
        return "awq"
    if method == "compressed-tensors":
        pack_quantized.check_config(qc)
        return "pack-quantized"
    raise ValueError(f"quant_method {qc.get('quant_method')!r}: supported are 'gptq', 'awq' and "
                     f"'compressed-tensors' (pack-quantized)")


def _dense_weight(fmt: str, parts: dict, zeros_minus_one: bool | None) -> torch.Tensor:
    """The layer's weight [N, K] in fp32, dequantized as its format defines it."""
    if fmt == "pack-quantized":
        q, s, zp = pack_quantized.unpack_pack_quantized(parts["weight_packed"], parts["weight_scale"],
                                                        parts["weight_shape"], parts["weight_zero_point"])
        g_idx = parts.get("weight_g_idx")
        if g_idx is not None:
            g_idx = pack_quantized.g_idx_or_none(g_idx, q.shape[1], s.shape[1])
        z = zp.float() if zp is not None else torch.full_like(s, 8, dtype=torch.float32)
    elif fmt == "gptq":
        q, z, s, g_idx = checkpoints.unpack_gptq(parts["qweight"], parts["qzeros"], parts["scales"],
                                                 parts.get("g_idx"), zeros_minus_one=bool(zeros_minus_one))
        z = z.float()
    else:
        q, z, s = checkpoints.unpack_awq(parts["qweight"], parts["qzeros"], parts["scales"])
        g_idx, z = None, z.float()
    k, groups = q.shape[1], s.shape[1]
    if g_idx is None and k % groups:
        raise ValueError(f"in_features {k} is not a multiple of the {groups} groups and there is no g_idx "
                         "saying which group each input feature belongs to")
    gid = g_idx.long() if g_idx is not None else torch.arange(k) // (k // groups)
    return (q.float() - z[:, gid]) * s.float()[:, gid]


def _layer(fmt: str, parts: dict, bias, dtype, zeros_minus_one: bool | None) -> W4A16Linear:
    if fmt == "pack-quantized":
        return pack_quantized.layer_from_pack_quantized(
            parts["weight_packed"], parts["weight_scale"], parts["weight_shape"], parts.get("weight_zero_point"),
            parts.get("weight_g_idx"), bias, dtype=dtype)
    if fmt == "gptq":
        return checkpoints.layer_from_gptq(parts["qweight"], parts["qzeros"], parts["scales"], parts.get("g_idx"),
                                           bias, zeros_minus_one=zeros_minus_one, dtype=dtype)
    return checkpoints.layer_from_awq(parts["qweight"], parts["qzeros"], parts["scales"], bias, dtype=dtype)


# GPTQ's own label: transformers / optimum / GPTQModel write checkpoint_format "gptq" for v1
# (zeros minus one) and "gptq_v2" for v2.
_GPTQ_LABELS = {"gptq": True, "gptq_v2": False}


def _gptq_convention(qc: dict, tensors: dict, names: list[str], override: bool | None) -> tuple[bool | None, str]:
    """(True for v1 / False for v2, how it was decided) for a GPTQ checkpoint: the override, else
    the data of the layers that can tell (checkpoints.py; they must agree), else the config's
    checkpoint_format label; neither is a ValueError."""
    if override is not None:
        return override, "override"
    label = _GPTQ_LABELS.get(str(qc.get("checkpoint_format", "")).lower())
    votes = {}
    for n in names:
        try:
            v, _ = checkpoints.gptq_zeros_minus_one_from_data(tensors[f"{n}.qweight"], tensors[f"{n}.qzeros"],
                                                              tensors[f"{n}.scales"], tensors.get(f"{n}.g_idx"))
        except (TypeError, ValueError) as e:
            raise type(e)(f"{n} (gptq): {e}") from None
        if v is not None:
            votes.setdefault(v, []).append(n)
    if len(votes) > 1:
        raise ValueError(f"GPTQ zero points: the checkpoint's layers disagree ({len(votes[True])} look like v1, "
                         f"e.g. {votes[True][0]}; {len(votes[False])} like v2, e.g. {votes[False][0]}); pass "
                         "gptq_zeros_minus_one=True (v1) or False (v2)")
    if votes:
        v = next(iter(votes))
        agrees = "" if label is None else (", agreeing with" if label == v else ", overruling")
        tail = f" the label checkpoint_format={qc.get('checkpoint_format')!r}" if label is not None else ""
        return v, f"data ({len(votes[v])} of {len(names)} layers{agrees}{tail})"
    if label is not None:
        return label, f"label (checkpoint_format={qc.get('checkpoint_format')!r}; the data cannot tell)"
    if not names:
        return None, "no GPTQ layer"
    raise ValueError("GPTQ zero points: neither the data nor the config (checkpoint_format) tells v1 (zeros minus "
                     "one) from v2; pass gptq_zeros_minus_one=True (v1) or False (v2)")


def _geometry(fmt: str, parts: dict) -> tuple[int, int, int] | None:
    """(out_features, in_features, group) as the layer's tensors state them (group 0 where K is
    not a multiple of the group count: GPTQ stores a last, partial group), or None where they do
    not fit together (the importers then say what is wrong)."""
    try:
        if fmt == "pack-quantized":
            n, k = (int(v) for v in parts["weight_shape"].flatten().tolist())
            groups = parts["weight_scale"].shape[1]
        elif fmt == "gptq":
            k, n = parts["qweight"].shape[0] * 8, parts["qweight"].shape[1]
            groups = parts["scales"].shape[0]
        else:
            k, n = parts["qweight"].shape[0], parts["qweight"].shape[1] * 8
            groups = parts["scales"].shape[0]
    except (AttributeError, IndexError, ValueError, TypeError):
        return None
    if n <= 0 or k <= 0 or groups <= 0:
        return None
    return n, k, (k // groups if k % groups == 0 else 0)   # 0: a last, partial group


def _float_dtype(t: torch.Tensor | None, dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        return dtype
    return t.dtype if t is not None and t.dtype in (torch.float16, torch.bfloat16) else torch.float16


def load_into(model: nn.Module, checkpoint_dir, *, dtype: torch.dtype | None = None, device=None,
              gptq_zeros_minus_one: bool | None = None) -> LoadReport:
    """Load a GPTQ / AWQ / compressed-tensors checkpoint directory into `model` (in place):
    quantized layers served by W4A16Linear, the rest as the checkpoint holds it. Returns a
    LoadReport.

    dtype: of the served layers; default each replaced layer's own (fp16 or bf16, else fp16).
    device: where the served layers go; default where each replaced layer is (so a model spread
    over devices stays so). The model must hold real tensors (not the meta device).
    gptq_zeros_minus_one: True (v1) / False (v2) overrides the data and the config's label."""
    from safetensors.torch import load_file

    qc = read_quantization_config(checkpoint_dir)
    fmt = checkpoint_format(qc)
    files = sorted(Path(checkpoint_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{checkpoint_dir}: no .safetensors file")
    on_meta = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if on_meta:
        raise ValueError(f"the model holds {len(on_meta)} tensors on the meta device (e.g. {on_meta[0]}): "
                         "build it with real storage (e.g. AutoModelForCausalLM.from_config on the CPU) before "
                         "loading into it")
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(str(f), device="cpu"))

    report = LoadReport(method=fmt)
    marker, suffixes = _LAYER_PARTS[fmt]
    names = sorted(k[: -len(marker) - 1] for k in tensors if k.endswith("." + marker))
    for name in names:
        lacking = [p for p in _REQUIRED[fmt] if f"{name}.{p}" not in tensors]
        if lacking:
            raise ValueError(f"{name} ({fmt}): has {marker} but no {', '.join(lacking)}")
    if fmt == "gptq":
        gptq_zeros_minus_one, report.gptq_rule = _gptq_convention(qc, tensors, names, gptq_zeros_minus_one)
        report.gptq_zeros_minus_one = gptq_zeros_minus_one

    used: set[str] = set()
    expected_missing: set[str] = set()     # keys of replaced layers load_state_dict will not find
    for name in names:
        parts = {s: tensors.get(f"{name}.{s}") for s in suffixes}
        used.update(f"{name}.{s}" for s in suffixes if f"{name}.{s}" in tensors)
        try:
            target = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"{name}: the checkpoint quantizes a layer the model does not have") from None
        if not isinstance(target, nn.Linear):
            raise ValueError(f"{name}: the model's module is a {type(target).__name__}, not an nn.Linear")
        if f"{name}.weight" in tensors:         # a dense weight beside the quantized one: not ours to pick
            used.add(f"{name}.weight")
            report.unexpected.append(f"{name}.weight")
        # The bias follows the model's architecture, as load_state_dict would: a model bias the
        # checkpoint lacks is missing, a checkpoint bias the model has no place for unexpected.
        bias = tensors.get(f"{name}.bias")
        if bias is not None:
            used.add(f"{name}.bias")
            if target.bias is None:
                report.unexpected.append(f"{name}.bias")
                bias = None
            elif tuple(bias.shape) != (target.out_features,):
                raise ValueError(f"{name}: checkpoint bias {tuple(bias.shape)}, the model's "
                                 f"({target.out_features},)")
        elif target.bias is not None:
            report.missing.append(f"{name}.bias")
        expected_missing.update({f"{name}.weight", f"{name}.bias"})
        geometry = _geometry(fmt, parts)
        if geometry is not None and geometry[:2] != (target.out_features, target.in_features):
            raise ValueError(f"{name}: checkpoint layer is {geometry[0]}x{geometry[1]}, the model's "
                             f"{target.out_features}x{target.in_features}")
        # Dense only where the kernels cannot take the layer's shape or group; any other problem
        # with its tensors is an error naming the layer, never a quietly different model.
        if geometry is not None and geometry[2] == 0:
            reason = (f"in_features {geometry[1]} is not a multiple of the checkpoint's group count (a last, "
                      "partial group): the kernels take whole groups only")
        else:
            reason = nn_unservable(*geometry) if geometry is not None else None
        try:
            if reason is None:
                layer = _layer(fmt, parts, bias, _float_dtype(target.weight, dtype), gptq_zeros_minus_one)
            else:
                w = _dense_weight(fmt, parts, gptq_zeros_minus_one)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name} ({fmt}): {e}") from None
        if reason is not None:
            with torch.no_grad():
                target.weight.copy_(w.to(target.weight.dtype))
                if bias is not None:
                    target.bias.copy_(bias.to(target.bias.dtype))
            report.dense[name] = reason
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.to(device if device is not None else target.weight.device))
        report.served.append(name)

    rest = {k: v for k, v in tensors.items() if k not in used}
    result = model.load_state_dict(rest, strict=False)
    served = {f"{n}." for n in report.served}
    # A tied parameter (e.g. lm_head.weight sharing the embedding) is loaded through its twin.
    params = dict(model.named_parameters(remove_duplicate=False))
    loaded = {params[k].data_ptr() for k in rest if k in params}
    report.missing = sorted(set(report.missing) | {
        k for k in result.missing_keys
        if k not in expected_missing and not any(k.startswith(p) for p in served)
        and not (k in params and params[k].data_ptr() in loaded)})
    report.unexpected = sorted(set(report.unexpected) | set(result.unexpected_keys))
    return report


def from_pretrained(checkpoint_dir, *, dtype: torch.dtype | None = None, device=None,
                    gptq_zeros_minus_one: bool | None = None):
    """(model, LoadReport): the checkpoint's transformers causal-LM architecture built from its
    config.json (transformers' AutoModelForCausalLM.from_config) on the CPU, `load_into` it with
    the served layers put straight on `device` (default: CUDA when there is one, else CPU), then
    the rest moved there: the GPU never holds the dense weights of the served layers (the CPU
    does, for a moment). dtype: default the config's (float16 or bfloat16), else float16."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(checkpoint_dir))
    if hasattr(config, "quantization_config"):
        del config.quantization_config        # ours to apply, not transformers' quantizers
    if dtype is None:
        want = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        want = getattr(torch, want, None) if isinstance(want, str) else want
        dtype = want if want in (torch.float16, torch.bfloat16) else torch.float16
    major, minor = (int(v) for v in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"      # renamed in transformers 4.56
    model = transformers.AutoModelForCausalLM.from_config(config, **{key: dtype})
    model = model.to(dtype)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    report = load_into(model, checkpoint_dir, dtype=dtype, device=device, gptq_zeros_minus_one=gptq_zeros_minus_one)
    return model.to(device).eval(), report

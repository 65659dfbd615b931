"""w4a16_build: fast W4A16 GEMM kernels for NVIDIA Hopper, generated from a manifest.

    q, s, z = w4a16_build.quantize(weight, group_size=128, mode="groupwise")
    packed = w4a16_build.pack(q, s, z, dtype=torch.float16)   # once, on the GPU
    y = w4a16_build.gemm(x, packed, bias=None)                # x[..., K] -> y[..., N]

The compiled extension (`w4a16_build._C`) holds the kernels the build's
manifest selected. Importing the package never needs a GPU; the generator
(`python -m w4a16_build.generate`) needs neither a GPU nor the extension.
Modules that need PyTorch (quantize, pack, gemm) load on first use.
"""

from __future__ import annotations

from ._ext import ExtensionNotBuiltError, build_info, list_kernels

__version__ = "0.1.0"

_LAZY = {
    "quantize": "quant", "dequantize": "quant",
    "pack": "packing", "PackedWeight": "packing", "unpack_codes": "packing",
    "dequantize_packed": "packing",
    "gemm": "runner", "tactics": "kernels", "W4A16Error": "kernels", "UnsupportedDeviceError": "kernels",
    "tune": "tuning", "select_tactic": "tuning", "bucket_for": "selection", "BUCKETS": "selection",
    "TuneCache": "tune_cache",
    "W4A16Linear": "nn", "replace_linears": "nn",
    "load_quantized": "checkpoints", "layer_from_gptq": "checkpoints", "layer_from_awq": "checkpoints",
    "load_pack_quantized": "pack_quantized", "layer_from_pack_quantized": "pack_quantized",
    "load_into": "hf_checkpoint", "from_pretrained": "hf_checkpoint",
}

# The package's modules, loaded on first attribute access like the names above.
_SUBMODULES = frozenset({"bench", "checkpoints", "corpus", "derive", "dtypes", "generate", "hf_checkpoint", "kernels",
                         "nn", "ops", "pack_quantized", "packing", "plot", "quant", "runner", "schema", "selection",
                         "timing", "tune_cache", "tuning"})

__all__ = ["build_info", "list_kernels", "ExtensionNotBuiltError", "__version__", *_LAZY]


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:      # w4a16_build.kernels etc. without importing them first
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'w4a16_build' has no attribute {name!r}")

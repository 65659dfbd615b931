"""w4a16_build: fast W4A16 GEMM kernels for NVIDIA Hopper, generated from a manifest.

The compiled extension (`w4a16_build._C`) holds the kernels the build's
manifest selected. Importing the package never needs a GPU; the generator
(`python -m w4a16_build.generate`) needs neither a GPU nor the extension.
"""

from __future__ import annotations

from ._ext import ExtensionNotBuiltError, build_info, list_kernels

__version__ = "0.1.0"
__all__ = ["build_info", "list_kernels", "ExtensionNotBuiltError", "__version__"]

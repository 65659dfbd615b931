"""Shared test set-up.

- The source `generator/` package is importable as `generator` (CPU tests
  exercise the source tree, no install needed).
- Tests marked `gpu` skip, with the reason, where there is no GPU of sm_80 or newer, no
  compiled extension, or no kernel in the build for the GPU; they never fail for that. On an
  Ampere/Ada GPU (or with W4A16_FORCE_SM80=1 on Hopper) the tests that need Hopper's own kernels
  (stream-K workspaces, the GEMV) skip themselves.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@functools.lru_cache(maxsize=None)
def gpu_skip_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine"
    major, minor = torch.cuda.get_device_capability()
    if major < 8:
        return f"GPU is sm_{major}{minor}: w4a16_build's kernels need sm_80 or newer"
    try:
        import w4a16_build._C  # noqa: F401
    except ImportError as e:
        return f"w4a16_build extension not built: {e}"
    import w4a16_build

    if not any(w4a16_build.tactics(d, m, device="cuda") for d in ("fp16", "bf16")
               for m in ("per_column", "groupwise", "groupwise_zero")):
        return (f"GPU is sm_{major}{minor} and this build has no kernels for it (W4A16_CUDA_ARCHS: 90a-real for "
                "Hopper, 80-real for Ampere/Ada; 80-virtual for W4A16_FORCE_SM80=1 on Hopper)")
    return None


def pytest_collection_modifyitems(config, items):
    reason = None
    for item in items:
        if item.get_closest_marker("gpu"):
            reason = reason or gpu_skip_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT

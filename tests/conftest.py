"""Shared test set-up.

- The source `generator/` package is importable as `generator` (CPU tests
  exercise the source tree, no install needed).
- Tests marked `gpu` skip, with the reason, where there is no SM90 GPU or no
  compiled extension; they never fail for that.
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
    if (major, minor) != (9, 0):
        return (f"GPU is sm_{major}{minor}: the GPU tests are written for Hopper (sm_90a); the SM80 kernels are "
                "tested on Hopper through their PTX (tests/package/test_tiled_gpu.py, W4A16_FORCE_SM80=1)")
    try:
        import w4a16_build._C  # noqa: F401
    except ImportError as e:
        return f"w4a16_build extension not built: {e}"
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

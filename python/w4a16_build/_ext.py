"""Access to the compiled extension, with a clear error when it is missing."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources


class ExtensionNotBuiltError(ImportError):
    pass


@functools.lru_cache(maxsize=None)
def ext():
    try:
        from . import _C
    except ImportError as e:
        raise ExtensionNotBuiltError(
            "w4a16_build's compiled extension is not available "
            f"({e}). Install the package with `pip install .` from a source checkout "
            "(CUDA toolkit with nvcc needed at build time)."
        ) from e
    return _C


def list_kernels() -> list[dict]:
    """Name and configuration of every compiled kernel, in name order: the registry holds the
    names, the generator's model (schema.py) parses each into its configuration."""
    from .schema import parse_name

    return [parse_name(name).to_dict() for name in ext().list_kernels()]


@functools.lru_cache(maxsize=None)
def _build_manifest() -> dict:
    return json.loads(resources.files(__package__).joinpath("build_manifest.json").read_text())


def build_info() -> dict:
    """What this build holds: manifest name and sha256, kernel count and names,
    CUDA architectures, CUTLASS version and nvcc version."""
    info = dict(ext().build_info())
    names = list(ext().list_kernels())
    plan = _build_manifest()
    info.update(
        kernel_count=len(names),
        kernel_names=names,
        manifest_path=plan.get("manifest_path"),
        family_archs=plan.get("family_archs", {}),
        # One id for this build's set of kernels, for tuning-cache keys.
        build_hash=hashlib.sha256(
            "\n".join([info["manifest_sha256"], info["cuda_archs"], *names]).encode()
        ).hexdigest()[:16],
    )
    return info

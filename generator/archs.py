"""The CUDA architectures of a build (W4A16_CUDA_ARCHS, CMake's CMAKE_CUDA_ARCHITECTURES syntax) and
which of them each kernel family compiles for (its model class's `archs`).

An entry is an arch with an optional "-real" (SASS only) or "-virtual" (PTX only) suffix; a bare
arch means both. "90a" serves Hopper (wgmma, TMA, clusters: every family but `tiled` and `skinny80`); "80" serves
Ampere and Ada (sm_80 SASS runs on 8.x GPUs) and, as PTX ("80" or "80-virtual"), any newer GPU
through the driver's JIT: the test path on Hopper (issue 18)."""

from __future__ import annotations

import re

DEFAULT = "80-real;90a-real"
_ENTRY_RE = re.compile(r"(?P<arch>90a|80)(?P<kind>-real|-virtual)?")


def entries(archs: str | None) -> list[str]:
    """The entries of a CMAKE_CUDA_ARCHITECTURES value (';' or ',' separated)."""
    return [a.strip() for a in re.split(r"[;,]", archs or "") if a.strip()]


def base(entry: str) -> str:
    """'80-real' -> '80'."""
    m = _ENTRY_RE.fullmatch(entry)
    return m["arch"] if m else entry


def check(archs: str) -> str | None:
    """Why a W4A16_CUDA_ARCHS value cannot build these kernels, or None."""
    es = entries(archs)
    if not es:
        return f"W4A16_CUDA_ARCHS is empty: use {DEFAULT} (Hopper and Ampere/Ada) or 90a-real (Hopper only)"
    bad = [a for a in es if not _ENTRY_RE.fullmatch(a)]
    if bad:
        return (f"W4A16_CUDA_ARCHS={archs!r}: {', '.join(bad)} cannot build these kernels; the kernel families "
                "take 90a (Hopper wgmma/TMA: H100, H200) and 80 (Ampere and Ada, and as PTX any newer GPU), "
                "each as NN, NN-real or NN-virtual -- e.g. W4A16_CUDA_ARCHS=" + DEFAULT)
    return None


def for_family(cls, archs: str | None) -> list[str]:
    """The entries of `archs` a family compiles for (none: the family is not built). No `archs`
    given (listing, estimating): the default."""
    return [e for e in entries(archs if archs is not None else DEFAULT) if base(e) in cls.archs]

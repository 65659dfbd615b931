"""enumerate -> validate -> filter -> shard: from a manifest to a build plan.

Every step is a plain function over `Kernel`s so tests can check each
one; `plan()` runs them in order. Ordering is by kernel name everywhere, so
the same manifest always gives the same plan (and byte-identical files).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Iterable

from . import archs
from .manifest import Manifest, expand_set, matches
from .model import FAMILIES, Kernel, family, parse_name

Config = Kernel


@dataclasses.dataclass(frozen=True)
class Rejected:
    config: Kernel
    rule: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Shard:
    """One generated .cu file and the kernels it instantiates."""

    filename: str
    kernels: tuple[Kernel, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    manifest: Manifest
    kernels: tuple[Config, ...]            # valid, filtered, sorted by name
    rejected: tuple[Rejected, ...]         # dropped by a validity rule
    filtered_out: tuple[Kernel, ...]  # valid but excluded by a filter
    shards: tuple[Shard, ...]
    cuda_archs: str | None = None     # W4A16_CUDA_ARCHS of the build (None: listing, the default)
    no_arch: tuple[Kernel, ...] = ()  # valid and selected, but of a family none of cuda_archs builds

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.kernels]


def enumerate_configs(manifest: Manifest) -> list[Kernel]:
    """Every configuration the manifest names, deduplicated by name."""
    seen: dict[str, Kernel] = {}
    for fam, sets in manifest.sections:
        for s in sets:
            for cfg in expand_set(s, family(fam)):
                seen.setdefault(cfg.name, cfg)
    for name in manifest.kernels:
        cfg = parse_name(name)
        seen.setdefault(cfg.name, cfg)
    return [seen[n] for n in sorted(seen)]


def validate(configs: Iterable[Kernel]) -> tuple[list[Kernel], list[Rejected]]:
    valid, rejected = [], []
    for cfg in configs:
        broken = cfg.violations()
        if broken:
            rejected.append(Rejected(cfg, *broken[0]))
        else:
            valid.append(cfg)
    return valid, rejected


def filter_configs(configs: Iterable[Kernel], include: Iterable[str] = (),
                   exclude: Iterable[str] = ()) -> tuple[list[Kernel], list[Kernel]]:
    include, exclude = list(include), list(exclude)
    kept, dropped = [], []
    for cfg in configs:
        (kept if matches(cfg.name, include, exclude) else dropped).append(cfg)
    return kept, dropped


def starts_shard(name: str, per_file: int) -> bool:
    """A content-defined boundary: about one kernel in `per_file` starts a new file, chosen
    by a hash of its own name, so adding or removing a kernel changes only the file it lands
    in (and at most the one after it), not every file after it in name order."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % per_file == 0


def shard(configs: Iterable[Config], per_file: int) -> list[Shard]:
    """Groups of at most `per_file` kernels of one family each, in name order.

    One kernel per file is named after the kernel. Larger groups close at a content-defined
    boundary (`starts_shard`) or when full, and are named after their first kernel, so a
    manifest edit recompiles only the shard it touches.
    """
    out = []
    configs = list(configs)
    for cls in FAMILIES:
        fam = sorted((c for c in configs if c.family == cls.family), key=lambda c: c.name)
        if per_file == 1:
            out += [Shard(f"{c.name}.cu", (c,)) for c in fam]
            continue
        groups: list[list[Config]] = []
        for c in fam:
            if not groups or len(groups[-1]) == per_file or starts_shard(c.name, per_file):
                groups.append([])
            groups[-1].append(c)
        out += [Shard(f"{g[0].name}__shard.cu", tuple(g)) for g in groups]
    return out


def plan(manifest: Manifest, extra_include: Iterable[str] = (), cuda_archs: str | None = None) -> Plan:
    """`extra_include` (e.g. from W4A16_KERNELS) narrows the manifest further; a family that
    none of `cuda_archs` builds (archs.for_family) is left out (no_arch)."""
    valid, rejected = validate(enumerate_configs(manifest))
    kept, dropped = filter_configs(valid, manifest.include, manifest.exclude)
    extra = list(extra_include)
    if extra:
        kept, dropped2 = filter_configs(kept, extra, ())
        dropped += dropped2
    built = {cls for cls in {type(c) for c in kept} if archs.for_family(cls, cuda_archs)}
    no_arch = [c for c in kept if type(c) not in built]
    kept = [c for c in kept if type(c) in built]
    return Plan(
        manifest=manifest,
        kernels=tuple(kept),
        rejected=tuple(rejected),
        filtered_out=tuple(sorted(dropped, key=lambda c: c.name)),
        shards=tuple(shard(kept, manifest.kernels_per_file)),
        cuda_archs=cuda_archs,
        no_arch=tuple(no_arch),
    )

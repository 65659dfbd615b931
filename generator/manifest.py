"""YAML manifests: which kernels a build compiles.

A manifest is a mapping with these keys (all but `name` optional):

    name: default                 # shown by the build and in build_info()
    description: free text
    kernels_per_file: 1           # kernels per generated .cu (compile memory)
    sets:                         # each set is the product of its axes
      - dtype: [fp16, bf16]
        mode: [per_column, groupwise, groupwise_zero]
        tile_rows: [128]
        tile_tokens: [16, 32]
        tile_k: [64]
        cluster: [1x1, 2x1]
        schedule: [coop]
        scheduler: [persistent, streamk]
    kernels: [fp16_int4_groupwise_t128x32x64_c1x1_coop_streamk]  # explicit names (CUTLASS or GEMV)
    gemv:                         # the GEMV kernels (gemv/); omitted: all of them
      dtype: [fp16, bf16]
      mode: [per_column, groupwise, groupwise_zero]
      max_m: [8, 16]
      rows_per_warp: [16, 32]
      stages: [4]
    include: ["*"]                # globs on kernel names
    exclude: []

`gemv: false` builds no GEMV kernel.

Within `sets`, combinations that break a validity rule (rules.py) are dropped:
a set spans axes, not every point of it must exist. An explicit name in
`kernels` that breaks a rule is an error. Every axis must be given in every
set, so a manifest says exactly what it builds.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import itertools
import re
from pathlib import Path
from typing import Any, Iterable, Optional

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    raise SystemExit("w4a16_build's generator needs PyYAML to read manifests: pip install pyyaml") from None

from . import rules
from .model import (AXES, GEMV_AXES, Cluster, DType, GemvConfig, KernelConfig, QuantMode, Schedule, Tile,
                    TileScheduler, parse_name)

TOP_KEYS = ("name", "description", "kernels_per_file", "sets", "kernels", "gemv", "include", "exclude")
MAX_KERNELS_PER_FILE = 8


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names file, key and allowed values."""


@dataclasses.dataclass(frozen=True)
class Manifest:
    name: str
    path: str
    sha256: str
    description: str
    kernels_per_file: int
    sets: tuple[dict[str, tuple[str, ...]], ...]
    kernels: tuple[str, ...]
    gemv: Optional[dict[str, tuple[str, ...]]]   # None: no GEMV kernels
    include: tuple[str, ...]
    exclude: tuple[str, ...]


def _err(path: str, key: str, msg: str) -> ManifestError:
    return ManifestError(f"{path}: {key}: {msg}")


def _as_list(path: str, key: str, value: Any) -> list:
    if isinstance(value, (str, int)):
        return [value]
    if not isinstance(value, list) or not value:
        raise _err(path, key, f"expected a non-empty list, got {value!r}")
    return value


def _axis_values(path: str, key: str, raw: Any, allowed: list[str]) -> tuple[str, ...]:
    values = [str(v) for v in _as_list(path, key, raw)]
    for v in values:
        if v not in allowed:
            raise _err(path, key, f"unknown value {v!r}; allowed: {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise _err(path, key, f"repeated value in {values}")
    return tuple(values)


def _parse_set(path: str, index: int, raw: Any) -> dict[str, tuple[str, ...]]:
    where = f"sets[{index}]"
    if not isinstance(raw, dict):
        raise _err(path, where, f"expected a mapping of axes, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(AXES))
    if unknown:
        raise _err(path, f"{where}.{unknown[0]}", f"unknown axis; allowed axes: {', '.join(AXES)}")
    out = {axis: _axis_values(path, f"{where}.{axis}", raw[axis], allowed)
           for axis, allowed in AXES.items() if axis in raw}
    missing = [a for a in AXES if a not in raw]
    if missing:
        raise _err(path, f"{where}.{missing[0]}", f"axis missing; every set names all of: {', '.join(AXES)}")
    return out


def _parse_gemv(path: str, raw: Any) -> Optional[dict[str, tuple[str, ...]]]:
    if raw is False:
        return None
    if raw is None or raw is True:
        return {axis: tuple(values) for axis, values in GEMV_AXES.items()}
    if not isinstance(raw, dict):
        raise _err(path, "gemv", "expected a mapping of axes (dtype, mode, max_m) or false")
    unknown = sorted(set(raw) - set(GEMV_AXES))
    if unknown:
        raise _err(path, f"gemv.{unknown[0]}", f"unknown axis; allowed axes: {', '.join(GEMV_AXES)}")
    # An omitted axis means all of its values.
    return {axis: _axis_values(path, f"gemv.{axis}", raw[axis], allowed) if axis in raw else tuple(allowed)
            for axis, allowed in GEMV_AXES.items()}


def _globs(path: str, key: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = _as_list(path, key, raw)
    for g in items:
        if not isinstance(g, str) or not g or not re.fullmatch(r"[A-Za-z0-9_*?\[\]!-]+", g):
            raise _err(path, key, f"{g!r} is not a name glob (letters, digits, _ and * ? [ ] only)")
    return tuple(items)


def _outside_axes(cfg) -> Optional[str]:
    """Why an explicitly named kernel lies outside the values a set may use, or None
    (names get the same allowed values as sets: AXES, GEMV_AXES)."""
    if not isinstance(cfg, KernelConfig):
        return None  # GemvConfig.from_name checks its own axes
    values = {"tile_rows": str(cfg.tile.rows), "tile_tokens": str(cfg.tile.tokens), "tile_k": str(cfg.tile.k),
              "cluster": cfg.cluster.short}
    for axis, value in values.items():
        if value not in AXES[axis]:
            return f"{axis} {value} is not allowed; allowed: {', '.join(AXES[axis])}"
    return None


def parse(text: str, path: str = "<string>") -> Manifest:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not valid YAML: {e}") from None
    if raw is None:
        raise ManifestError(f"{path}: the manifest is empty; it needs at least `name:` and a set, kernel or gemv section")
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise _err(path, unknown[0], f"unknown key; allowed keys: {', '.join(TOP_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise _err(path, "name", f"expected a name of letters, digits, _ . -, got {name!r}")
    kpf = raw.get("kernels_per_file", 1)
    if not isinstance(kpf, int) or isinstance(kpf, bool) or not 1 <= kpf <= MAX_KERNELS_PER_FILE:
        raise _err(path, "kernels_per_file", f"expected an integer 1..{MAX_KERNELS_PER_FILE}, got {kpf!r}")
    sets_raw = raw.get("sets") or []
    if not isinstance(sets_raw, list):
        raise _err(path, "sets", "expected a list of axis mappings")
    sets = tuple(_parse_set(path, i, s) for i, s in enumerate(sets_raw))
    kernels_raw = raw.get("kernels") or []
    if not isinstance(kernels_raw, list):
        raise _err(path, "kernels", "expected a list of kernel names")
    for i, k in enumerate(kernels_raw):
        try:
            cfg = parse_name(str(k))
        except ValueError as e:
            raise _err(path, f"kernels[{i}]", str(e)) from None
        outside = _outside_axes(cfg)
        if outside:
            raise _err(path, f"kernels[{i}]", f"{k}: {outside}")
        broken = rules.violations(cfg)
        if broken:
            rule, reason = broken[0]
            raise _err(path, f"kernels[{i}]", f"{k} breaks rule {rule}: {reason}")
    gemv = _parse_gemv(path, raw.get("gemv"))
    if not sets and not kernels_raw and not gemv:
        raise _err(path, "sets", "a manifest needs at least one set, kernel name or GEMV kernel")
    desc = raw.get("description", "")
    return Manifest(
        name=name,
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        description=str(desc).strip(),
        kernels_per_file=kpf,
        sets=sets,
        kernels=tuple(str(k) for k in kernels_raw),
        gemv=gemv,
        include=_globs(path, "include", raw.get("include")),
        exclude=_globs(path, "exclude", raw.get("exclude")),
    )


def load(path: str | Path) -> Manifest:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{p}: manifest file not found") from None
    except OSError as e:
        raise ManifestError(f"{p}: cannot read manifest: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ManifestError(f"{p}: not UTF-8 text (byte {e.start}): a manifest is a UTF-8 YAML file") from None
    return parse(text, str(p))


def expand_set(s: dict[str, tuple[str, ...]]) -> Iterable[KernelConfig]:
    """Every point of a set's product, valid or not."""
    for dt, mode, r, t, k, cl, sch, ts in itertools.product(
        s["dtype"], s["mode"], s["tile_rows"], s["tile_tokens"], s["tile_k"],
        s["cluster"], s["schedule"], s["scheduler"],
    ):
        yield KernelConfig(
            dtype=DType.parse(dt),
            mode=QuantMode.parse(mode),
            tile=Tile(int(r), int(t), int(k)),
            cluster=Cluster.parse(cl),
            schedule=Schedule.parse(sch),
            scheduler=TileScheduler.parse(ts),
        )


def expand_gemv(g: Optional[dict[str, tuple[str, ...]]]) -> Iterable[GemvConfig]:
    if not g:
        return
    for dt, mode, max_m, rows, stages in itertools.product(
            g["dtype"], g["mode"], g["max_m"], g["rows_per_warp"], g["stages"]):
        yield GemvConfig(DType.parse(dt), QuantMode.parse(mode), int(max_m), int(rows), int(stages))


def matches(name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    include = list(include)
    if include and not any(fnmatch.fnmatchcase(name, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(name, g) for g in exclude)


def parse_kernel_filter(text: Optional[str], source: str = "W4A16_KERNELS") -> tuple[str, ...]:
    """`W4A16_KERNELS`-style comma-separated include globs; `source` names where they came from
    in error messages (the environment variable or the --kernels option)."""
    if not text:
        return ()
    globs = tuple(g.strip() for g in text.split(",") if g.strip())
    for g in globs:
        if not re.fullmatch(r"[A-Za-z0-9_*?\[\]!-]+", g):
            raise ManifestError(f"{source}: {g!r} is not a name glob (letters, digits, _ and * ? [ ] only)")
    return globs

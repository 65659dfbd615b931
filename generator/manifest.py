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

Each kernel family has its section, keyed by its model class's `manifest_key`
(model.py): `sets` (CUTLASS), `gemv`, `skinny`, `skinny80`, `tiled` and `dequant`. A section is a list of sets, one
set, `true` (every value of every axis) or `false`. An omitted CUTLASS, `skinny`, `skinny80`, `tiled` or `dequant`
section builds nothing, an omitted `gemv` every GEMV kernel; `gemv: false` builds
none. In a CUTLASS set every axis must be given, so a manifest says exactly what it
builds; in a GEMV or skinny set an omitted axis means all of its values, except an
axis added later, which means its family's default (AXIS_DEFAULTS: skinny's
k_warps, 1, and mma, sync).

Within a set, combinations that break a validity rule (the family's RULES) are
dropped: a set spans axes, not every point of it must exist. An explicit name
in `kernels` that breaks a rule is an error.
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

from .model import FAMILIES, Kernel, parse_name



def sections() -> dict[str, type[Kernel]]:
    """One section per kernel family: its model class's manifest_key (`sets` for CUTLASS, `gemv`)."""
    return {cls.manifest_key: cls for cls in FAMILIES}


def top_keys() -> tuple[str, ...]:
    return ("name", "description", "kernels_per_file", *sections(), "kernels", "include", "exclude")
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
    # family -> its sets (axis -> values), in FAMILIES order; a family without sets builds nothing
    sections: tuple[tuple[str, tuple[dict[str, tuple[str, ...]], ...]], ...]
    kernels: tuple[str, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    def sets_of(self, family: str) -> tuple[dict[str, tuple[str, ...]], ...]:
        return dict(self.sections).get(family, ())


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


def _parse_set(path: str, where: str, raw: Any, cls: type[Kernel]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise _err(path, where, f"expected a mapping of axes, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(cls.AXES))
    if unknown:
        raise _err(path, f"{where}.{unknown[0]}", f"unknown axis; allowed axes: {', '.join(cls.AXES)}")
    given = {axis: _axis_values(path, f"{where}.{axis}", raw[axis], allowed)
             for axis, allowed in cls.AXES.items() if axis in raw}
    missing = [a for a in cls.AXES if a not in raw]
    if missing and cls.axes_required:
        raise _err(path, f"{where}.{missing[0]}", f"axis missing; every set names all of: {', '.join(cls.AXES)}")
    # Where axes may be left out (the GEMV, skinny), an omitted axis means all of its values, or
    # the family's default for an axis added later (AXIS_DEFAULTS: skinny's k_warps is 1, mma sync).
    return {axis: given.get(axis, cls.AXIS_DEFAULTS.get(axis, tuple(allowed))) for axis, allowed in cls.AXES.items()}


def _parse_section(path: str, raw: Any, cls: type[Kernel]) -> tuple[dict[str, tuple[str, ...]], ...]:
    """A family's section: a list of sets, one set (a mapping), true (every value of every axis) or
    false (none). Omitted: none, or all where the family says so (section_default_all)."""
    key = cls.manifest_key
    if raw is None:
        raw = cls.section_default_all
    if raw is False:
        return ()
    if raw is True:
        return ({axis: tuple(values) for axis, values in cls.AXES.items()},)
    if isinstance(raw, dict):
        return (_parse_set(path, key, raw, cls),)
    if isinstance(raw, list):
        return tuple(_parse_set(path, f"{key}[{i}]", s, cls) for i, s in enumerate(raw))
    raise _err(path, key, f"expected a list of axis mappings ({', '.join(cls.AXES)}), a mapping, true or false")


def _globs(path: str, key: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = _as_list(path, key, raw)
    for g in items:
        if not isinstance(g, str) or not g or not re.fullmatch(r"[A-Za-z0-9_*?\[\]!-]+", g):
            raise _err(path, key, f"{g!r} is not a name glob (letters, digits, _ and * ? [ ] only)")
    return tuple(items)


def parse(text: str, path: str = "<string>") -> Manifest:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not valid YAML: {e}") from None
    if raw is None:
        raise ManifestError(f"{path}: the manifest is empty; it needs at least `name:` and a set, kernel or gemv section")
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(top_keys()))
    if unknown:
        raise _err(path, unknown[0], f"unknown key; allowed keys: {', '.join(top_keys())}")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise _err(path, "name", f"expected a name of letters, digits, _ . -, got {name!r}")
    kpf = raw.get("kernels_per_file", 1)
    if not isinstance(kpf, int) or isinstance(kpf, bool) or not 1 <= kpf <= MAX_KERNELS_PER_FILE:
        raise _err(path, "kernels_per_file", f"expected an integer 1..{MAX_KERNELS_PER_FILE}, got {kpf!r}")
    parsed = tuple((cls.family, _parse_section(path, raw.get(key), cls)) for key, cls in sections().items())
    kernels_raw = raw.get("kernels") or []
    if not isinstance(kernels_raw, list):
        raise _err(path, "kernels", "expected a list of kernel names")
    for i, k in enumerate(kernels_raw):
        try:
            cfg = parse_name(str(k))
        except ValueError as e:
            raise _err(path, f"kernels[{i}]", str(e)) from None
        outside = cfg.outside_axes()
        if outside:
            raise _err(path, f"kernels[{i}]", f"{k}: {outside}")
        broken = cfg.violations()
        if broken:
            rule, reason = broken[0]
            raise _err(path, f"kernels[{i}]", f"{k} breaks rule {rule}: {reason}")
    if not kernels_raw and not any(sets for _, sets in parsed):
        raise _err(path, "sets", f"a manifest needs at least one kernel name or set ({', '.join(sections())})")
    desc = raw.get("description", "")
    return Manifest(
        name=name,
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        description=str(desc).strip(),
        kernels_per_file=kpf,
        sections=parsed,
        kernels=tuple(str(k) for k in kernels_raw),
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


def expand_set(s: dict[str, tuple[str, ...]], cls: type[Kernel]) -> Iterable[Kernel]:
    """Every point of a set's product, valid or not."""
    axes = list(cls.AXES)
    for point in itertools.product(*(s[a] for a in axes)):
        yield cls.from_axes(dict(zip(axes, point)))


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

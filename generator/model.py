"""The typed model of a kernel configuration: the one definition of every kernel family.

A family is a frozen dataclass derived from `Kernel`. Its fields are its axes
(axes.py); its class attributes say everything the rest of the product needs
to know about it: the manifest section and axis values it takes, its name
pattern, its validity rules, the template that instantiates it, the include
directories of its generated files, what one kernel costs to build, and how
the shipped heuristic ranks it. A configuration's `name` is its identity
everywhere (file names, registry keys, filters, tuning-cache keys), and
`parse_name` turns any name back into its configuration: the runtime learns a
compiled kernel's configuration this way (the registry holds names only).

Adding a family: a subclass here, listed in FAMILIES (ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, ClassVar

from . import cost_residuals, rules
from .axes import (CLUSTERS, TILE_K, TILE_ROWS, TILE_TOKENS, WEIGHT, Cluster, DType, QuantMode, Schedule, Tile,
                   TileScheduler)

__all__ = [
    "AXES", "CLUSTERS", "Cluster", "DType", "DequantConfig", "FAMILIES", "GEMV_AXES", "GemvConfig", "Kernel", "KernelConfig",
    "QuantMode", "SKINNY_AXES", "Schedule", "Skinny80Config", "SkinnyConfig", "TILED_AXES", "TiledConfig", "TILE_K", "TILE_ROWS", "TILE_TOKENS", "Tile", "TileScheduler", "BuildCost",
    "family", "parse_name",
]


@dataclasses.dataclass(frozen=True)
class BuildCost:
    """What one generated file of a family costs to compile and ship (generator/estimate.py):
    seconds of one core and peak GB per file (fixed + per kernel), KB of extension per kernel."""

    file_s: float
    kernel_s: float
    file_gb: float
    kernel_gb: float
    kernel_kb: float


class Kernel:
    """The base of every family. Subclasses are frozen dataclasses whose fields are their axes,
    among them `dtype: DType` and `mode: QuantMode` (the runtime matches weights by them)."""

    family: ClassVar[str]                 # short family name (manifest.json, list_kernels())
    manifest_key: ClassVar[str]           # the manifest's top-level key for this family's sets
    section_default_all: ClassVar[bool]   # an omitted section means every kernel of the family
    axes_required: ClassVar[bool]         # every axis must be given in each set (else: omitted = all)
    AXES: ClassVar[dict[str, list[str]]]  # axis -> allowed values, in name order
    # An omitted axis whose values are given here means these, not all (axes added later, so that
    # sets written before them keep their kernels).
    AXIS_DEFAULTS: ClassVar[dict[str, tuple[str, ...]]] = {}
    NAME_RE: ClassVar[re.Pattern]
    NAME_FORM: ClassVar[str]              # the name's form, for error messages
    RULES: ClassVar[dict] = {}            # rule name -> predicate(config) -> reason or None
    template: ClassVar[str]               # templates/<template>
    include_dirs: ClassVar[tuple[str, ...]] = ()  # extra include dirs of its files, from the source root
    cost: ClassVar[BuildCost]
    # The CUDA architectures its files compile for (the W4A16_CUDA_ARCHS entries it takes, without
    # "-real"/"-virtual"); a build emits the family only when one of them is requested.
    archs: ClassVar[tuple[str, ...]] = ("90a",)
    # max_m: the largest M (tokens) a kernel accepts, 0 = any: a field or a class attribute.

    # ----------------------------------------------------------------- identity

    @property
    def name(self) -> str:
        raise NotImplementedError

    def axis_values(self) -> dict[str, Any]:
        """This configuration's value on each of AXES (ints where the axis is a number). The
        default reads the dataclass fields: `dtype` and `mode` by their short names, every other
        field an int (families with other kinds of axes override it and from_axes)."""
        return {f.name: getattr(self, f.name).short if f.name in ("dtype", "mode") else getattr(self, f.name)
                for f in dataclasses.fields(self)}

    @property
    def k_step(self) -> int:
        """K consumed per step: a group size must be a multiple of it (or equal K)."""
        raise NotImplementedError

    @classmethod
    def from_axes(cls, values: dict[str, str]) -> "Kernel":
        """The configuration at one point of a manifest set (values as the manifest spells them).
        The default, for the fields axis_values reads: refused outside the AXES values (the
        template parameters exist for those only)."""
        parse = {"dtype": DType.parse, "mode": QuantMode.parse}
        cfg = cls(**{f.name: parse.get(f.name, int)(values[f.name]) for f in dataclasses.fields(cls)})
        outside = cfg.outside_axes()
        if outside:
            raise ValueError(outside)
        return cfg

    @classmethod
    def from_name(cls, name: str) -> "Kernel":
        m = cls.NAME_RE.fullmatch(name)
        if not m:
            raise ValueError(f"{name!r} is not a {cls.family} kernel name of the form {cls.NAME_FORM}")
        try:
            cfg = cls.from_axes(m.groupdict())
        except ValueError as e:
            raise ValueError(f"kernel name {name!r}: {e}") from None
        if cfg.name != name:  # e.g. a leading zero in a number
            raise ValueError(f"kernel name {name!r} is not spelled as its configuration ({cfg.name})")
        return cfg

    def to_dict(self) -> dict:
        """name, family, max_m, archs and every axis: what list_kernels() and manifest.json show."""
        return {"name": self.name, "family": self.family, "max_m": self.max_m, "archs": list(self.archs),
                **self.axis_values()}

    def __str__(self) -> str:
        return self.name

    # ----------------------------------------------------------------- validity

    def violations(self) -> list[tuple[str, str]]:
        """All (rule name, reason) pairs this configuration breaks."""
        return [(name, why) for name, rule in self.RULES.items() if (why := rule(self))]

    def outside_axes(self) -> str | None:
        """Why this configuration lies outside the axis values a manifest may use, or None
        (from_name parses any number, so that rules can be tested on values outside AXES)."""
        for axis, value in self.axis_values().items():
            if str(value) not in self.AXES[axis]:
                return f"{axis} {value} is not allowed; allowed: {', '.join(self.AXES[axis])}"
        return None

    # ----------------------------------------------------------------- selection

    def rank_key(self, m: int, n: int, sms: int, rule: dict, k: int | None = None) -> tuple:
        """How well this kernel fits an (m, n) problem under one rule of the shipped heuristic
        (python/w4a16_build/heuristics.json); smaller is better. Only compared within a family."""
        return ()


def _ints(values) -> list[str]:
    return [str(v) for v in values]


@dataclasses.dataclass(frozen=True)
class KernelConfig(Kernel):
    """One CUTLASS SM90 mixed-input W4A16 kernel (csrc/w4a16/cutlass_gemm.cuh)."""

    dtype: DType
    mode: QuantMode
    tile: Tile
    cluster: Cluster
    schedule: Schedule
    scheduler: TileScheduler

    family: ClassVar[str] = "cutlass"
    max_m: ClassVar[int] = 0  # any M
    manifest_key: ClassVar[str] = "sets"
    section_default_all: ClassVar[bool] = False
    axes_required: ClassVar[bool] = True
    AXES: ClassVar[dict[str, list[str]]] = {
        "dtype": DType.choices(),
        "mode": QuantMode.choices(),
        "tile_rows": _ints(TILE_ROWS),
        "tile_tokens": _ints(TILE_TOKENS),
        "tile_k": _ints(TILE_K),
        "cluster": list(CLUSTERS),
        "schedule": Schedule.choices(),
        "scheduler": TileScheduler.choices(),
    }
    NAME_RE: ClassVar[re.Pattern] = re.compile(
        r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)"
        r"_t(?P<tile_rows>\d+)x(?P<tile_tokens>\d+)x(?P<tile_k>\d+)_c(?P<cluster>\d+x\d+)"
        r"_(?P<schedule>[a-z]+)_(?P<scheduler>[a-z]+)")
    NAME_FORM: ClassVar[str] = "DTYPE_int4_MODE_tROWSxTOKENSxK_cMxN_SCHEDULE_SCHEDULER"
    RULES: ClassVar[dict] = rules.RULES
    template: ClassVar[str] = "cutlass_kernels.cu.j2"
    # Measured on the 2-core, 24 GB build machine (generator/estimate.py says how).
    cost: ClassVar[BuildCost] = BuildCost(file_s=32.0, kernel_s=14.3, file_gb=3.6, kernel_gb=1.5, kernel_kb=115.0)

    @property
    def name(self) -> str:
        return (
            f"{self.dtype.short}_{WEIGHT}_{self.mode.short}_t{self.tile.short}"
            f"_c{self.cluster.short}_{self.schedule.short}_{self.scheduler.short}"
        )

    @property
    def tile_key(self) -> str:
        """The name without dtype and mode: what a fitted per-tile cost is keyed by."""
        return f"t{self.tile.short}_c{self.cluster.short}_{self.schedule.short}_{self.scheduler.short}"

    def output_tiles(self, m: int, n: int) -> int:
        return math.ceil(n / self.tile.rows) * math.ceil(m / self.tile.tokens)

    def waves(self, m: int, n: int, sms: int) -> float:
        """Output tiles per SM: whole waves for the persistent scheduler, the even share of the
        work for stream-K (a fraction of a wave too: below one wave it splits K across SMs)."""
        tiles = self.output_tiles(m, n)
        if self.scheduler is TileScheduler.STREAMK:
            return tiles / sms
        return float(math.ceil(tiles / sms))

    def cost_features(self, m: int, n: int, k: int, sms: int) -> tuple[float, float, float]:
        """The terms of the fitted time model (generator/tile_costs.py): a call takes
        a * K * waves + b * K * [stream-K with a partial wave] + c microseconds, one (a, b, c) per
        tile. The partial-wave term is what a stream-K split costs beyond its even share (the
        fixup of the tiles split between SMs); c is the call's fixed cost."""
        w = self.waves(m, n, sms)
        partial = self.scheduler is TileScheduler.STREAMK and w != math.floor(w)
        return (k * w, k * float(partial), 1.0)

    def fitted_time(self, m: int, n: int, k: int, sms: int, terms: list[float]) -> float:
        """The fitted time (us) of a call: terms . cost_features (generator/tile_costs.py fits the
        terms and computes its residuals against this; rank_key ranks by it)."""
        return sum(a * b for a, b in zip(terms, self.cost_features(m, n, k, sms)))

    @property
    def k_step(self) -> int:
        return self.tile.k

    def axis_values(self) -> dict[str, Any]:
        return {"dtype": self.dtype.short, "mode": self.mode.short, "tile_rows": self.tile.rows,
                "tile_tokens": self.tile.tokens, "tile_k": self.tile.k, "cluster": self.cluster.short,
                "schedule": self.schedule.short, "scheduler": self.scheduler.short}

    @classmethod
    def from_axes(cls, v: dict[str, str]) -> "KernelConfig":
        return cls(
            dtype=DType.parse(v["dtype"]),
            mode=QuantMode.parse(v["mode"]),
            tile=Tile(int(v["tile_rows"]), int(v["tile_tokens"]), int(v["tile_k"])),
            cluster=Cluster.parse(v["cluster"]),
            schedule=Schedule.parse(v["schedule"]),
            scheduler=TileScheduler.parse(v["scheduler"]),
        )

    def rank_key(self, m: int, n: int, sms: int, rule: dict, k: int | None = None) -> tuple:
        # "cover_m": the least token padding first, then the largest tile; otherwise the largest
        # tile. Stream-K where the heuristic asks for it: fewer output tiles than SMs.
        tok, rows = self.tile.tokens, self.tile.rows
        if rule.get("tokens") == "cost":
            # Fitted tiles by predicted time (cost_features . the tile's fitted terms; without K,
            # as for a call of unknown K, the fixed cost is left out), the tiles the fit has no
            # terms for after them in the "cover_m" order. With K and a table of residuals, the
            # log of that time plus the tile's residuals near the call (generator/cost_residuals.py).
            terms = rule["cost_terms"].get(self.tile_key)
            if terms is not None:
                # Without K: the per-K terms at K = 1 (terms[:2] leaves the fixed cost out).
                time = self.fitted_time(m, n, k, sms, terms) if k is not None else self.fitted_time(
                    m, n, 1, sms, terms[:2])
                if k is None or "residual_points" not in rule:
                    return (0, time, 0.0)
                res = rule.get("cost_residuals", {}).get(self.tile_key)
                near = 0.0 if res is None else cost_residuals.correction(
                    rule["residual_points"], res, m, n, k, *cost_residuals.settings(rule))
                return (0, math.log(max(time, 1e-9)) + near, 0.0)
            return (1, 0.0) + self.rank_key(m, n, sms, {**rule, "tokens": "cover_m"})
        tiles = self.output_tiles(m, n)
        want_streamk = bool(rule.get("streamk_below_sm_count", False)) and tiles < sms
        sched_miss = (self.scheduler is TileScheduler.STREAMK) != want_streamk
        if rule.get("tokens") == "cover_m":
            return (round(math.ceil(m / tok) * tok / m, 2), sched_miss, -rows * tok)
        return (-rows * tok, sched_miss, 0)


# The GEMV kernels (gemv/kernel.cuh): a CTA of 8 warps, each warp owning 16 or
# 32 output rows; each warp step consumes 64 k; clusters of CTAs split K.
GEMV_WARPS = 8
GEMV_CHUNK_K = 64
GEMV_ROWS_PER_WARP = (16, 32)  # 32: x is read once per 256 rows instead of 128
GEMV_MAX_M = (8, 16)  # token tiles of one or two m16n8k16 n-tiles
# 512-byte weight chunks in flight per warp (bulk copies into a shared-memory ring).
GEMV_STAGES = (4, 8, 12)


@dataclasses.dataclass(frozen=True)
class GemvConfig(Kernel):
    """One GEMV kernel (gemv/) for M <= max_m tokens."""

    dtype: DType
    mode: QuantMode
    max_m: int
    rows_per_warp: int
    stages: int

    family: ClassVar[str] = "gemv"
    manifest_key: ClassVar[str] = "gemv"
    section_default_all: ClassVar[bool] = True
    axes_required: ClassVar[bool] = False
    AXES: ClassVar[dict[str, list[str]]] = {
        "dtype": DType.choices(),
        "mode": QuantMode.choices(),
        "max_m": _ints(GEMV_MAX_M),
        "rows_per_warp": _ints(GEMV_ROWS_PER_WARP),
        "stages": _ints(GEMV_STAGES),
    }
    NAME_RE: ClassVar[re.Pattern] = re.compile(
        r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)_gemv_m(?P<max_m>\d+)_r(?P<rows_per_warp>\d+)"
        r"_s(?P<stages>\d+)")
    NAME_FORM: ClassVar[str] = "DTYPE_int4_MODE_gemv_mMAXM_rROWS_sSTAGES"
    template: ClassVar[str] = "gemv_kernels.cu.j2"
    include_dirs: ClassVar[tuple[str, ...]] = (".",)  # the files include "gemv/launch.cuh"
    # Fitted to a measured default build (benchmarks/results/build_default125_2core.json).
    cost: ClassVar[BuildCost] = BuildCost(file_s=2.4, kernel_s=0.2, file_gb=0.3, kernel_gb=0.05, kernel_kb=45.0)

    @property
    def name(self) -> str:
        return (f"{self.dtype.short}_{WEIGHT}_{self.mode.short}_gemv_m{self.max_m}"
                f"_r{self.rows_per_warp}_s{self.stages}")

    @property
    def row_blocks_per_warp(self) -> int:
        return self.rows_per_warp // 16

    @property
    def token_tiles(self) -> int:
        return self.max_m // 8

    @property
    def k_step(self) -> int:
        return GEMV_CHUNK_K


    def rank_key(self, m: int, n: int, sms: int, rule: dict, k: int | None = None) -> tuple:
        # The smallest token tile that takes m, then the rule's rows per warp and stages.
        return (self.max_m, self.rows_per_warp != rule.get("rows_per_warp", 16),
                self.stages != rule.get("stages", 4))


# The skinny kernels (gemv/skinny_kernel.cuh): the small-batch tensor-core GEMM
# for M up to 128. A CTA of 8 warps. With k_warps = 1 each warp owns 16 or 32
# output rows, x and the scales stream through a 4-slot ring in K stages, the
# weight through a ring of `stages` bulk-copy stages per warp, and clusters of
# CTAs split K. With k_warps = 2, 4 or 8 (gemv/skinny_wsplit_kernel.cuh) the
# warps of one CTA split K instead (8 / k_warps row blocks of 16 rows per CTA,
# x of the whole K resident, no cluster): the small-layer, few-token form.
# With mma = wgmma (the `_wg` name part; k_warps 1, rows_per_warp 16 only) each
# 4-warp warpgroup multiplies its 64 rows by all 8 * max_m/8 tokens with
# wgmma, the dequantized weight as the register A operand and x in shared
# memory as B: the many-token form for small layers (M = 17-128). With mma = ws
# (the `_ws` name part; gemv/skinny_ws_kernel.cuh; k_warps 1, rows_per_warp 16,
# max_m 8, 16, 32-64 in steps of 8, or 128) the CTA is warp-specialized: one producer warp feeds a
# ring of `stages` 64-k stages by tensor copies (x, weight, scales), two
# warpgroups dequantize and issue wgmma.
SKINNY_CHUNK_K = 64
# Token tiles of 8 (the mma N dimension): 2, 4, 8, 16; 1 and 5-7 (max_m 8, 40, 48, 56) in the ws
# form only (rules.skinny_ws_tiles): its time grows with the tile, not with M (benchmarks/NOTES.md,
# "Twenty-fourth session" and "Twenty-fifth session"), so a call takes the smallest tile that fits.
SKINNY_MAX_M = (8, 16, 32, 40, 48, 56, 64, 128)
SKINNY_ROWS_PER_WARP = (16, 32)
SKINNY_STAGES = (2, 4, 8)            # weight-ring stages per warp (1-2 KB each)
SKINNY_K_WARPS = (1, 2, 4, 8)        # warps of a CTA that split K (1: split K over a cluster)
SKINNY_MMA = ("sync", "wgmma", "ws")  # mma.sync per warp, wgmma per warpgroup, or warp-specialized wgmma


@dataclasses.dataclass(frozen=True)
class SkinnyConfig(Kernel):
    """One skinny kernel (gemv/skinny_*.cuh) for M <= max_m tokens."""

    dtype: DType
    mode: QuantMode
    max_m: int
    rows_per_warp: int
    stages: int
    k_warps: int = 1
    mma: str = "sync"

    family: ClassVar[str] = "skinny"
    manifest_key: ClassVar[str] = "skinny"
    section_default_all: ClassVar[bool] = False  # manifests name their skinny kernels (older ones get none)
    axes_required: ClassVar[bool] = False
    AXES: ClassVar[dict[str, list[str]]] = {
        "dtype": DType.choices(),
        "mode": QuantMode.choices(),
        "max_m": _ints(SKINNY_MAX_M),
        "rows_per_warp": _ints(SKINNY_ROWS_PER_WARP),
        "stages": _ints(SKINNY_STAGES),
        "k_warps": _ints(SKINNY_K_WARPS),
        "mma": list(SKINNY_MMA),
    }
    RULES: ClassVar[dict] = rules.SKINNY_RULES
    # Axes added after manifests named skinny kernels: the cluster form with mma.sync.
    AXIS_DEFAULTS: ClassVar[dict[str, tuple[str, ...]]] = {"k_warps": ("1",), "mma": ("sync",)}
    # The k_warps part is left out where it is 1 and the mma part where it is sync (the names
    # from before those axes existed).
    NAME_RE: ClassVar[re.Pattern] = re.compile(
        r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)_skinny_m(?P<max_m>\d+)_r(?P<rows_per_warp>\d+)"
        r"_s(?P<stages>\d+)(?:_kw(?P<k_warps>\d+))?(?P<form>_wg|_ws)?")
    NAME_FORM: ClassVar[str] = "DTYPE_int4_MODE_skinny_mMAXM_rROWS_sSTAGES[_kwKWARPS][_wg|_ws]"
    template: ClassVar[str] = "skinny_kernels.cu.j2"
    include_dirs: ClassVar[tuple[str, ...]] = (".",)  # the files include "gemv/skinny_*launch.cuh"
    # Fitted to a measured default build (benchmarks/results/build_default125_2core.json).
    cost: ClassVar[BuildCost] = BuildCost(file_s=2.6, kernel_s=0.32, file_gb=0.3, kernel_gb=0.05, kernel_kb=45.0)

    @property
    def name(self) -> str:
        kw = f"_kw{self.k_warps}" if self.k_warps != 1 else ""
        wg = {"wgmma": "_wg", "ws": "_ws"}.get(self.mma, "")
        return (f"{self.dtype.short}_{WEIGHT}_{self.mode.short}_skinny_m{self.max_m}"
                f"_r{self.rows_per_warp}_s{self.stages}{kw}{wg}")

    @property
    def row_blocks_per_warp(self) -> int:
        return self.rows_per_warp // 16

    @property
    def token_tiles(self) -> int:
        return self.max_m // 8

    @property
    def k_step(self) -> int:
        return SKINNY_CHUNK_K

    def axis_values(self) -> dict[str, Any]:
        return {"dtype": self.dtype.short, "mode": self.mode.short, "max_m": self.max_m,
                "rows_per_warp": self.rows_per_warp, "stages": self.stages, "k_warps": self.k_warps,
                "mma": self.mma}

    @classmethod
    def from_axes(cls, v: dict[str, str]) -> "SkinnyConfig":
        cfg = cls(DType.parse(v["dtype"]), QuantMode.parse(v["mode"]), int(v["max_m"]), int(v["rows_per_warp"]),
                  int(v["stages"]), int(v.get("k_warps") or 1),
                  v.get("mma") or {"_wg": "wgmma", "_ws": "ws"}.get(v.get("form") or "", "sync"))
        outside = cfg.outside_axes()
        if outside:
            raise ValueError(outside)
        return cfg

    def rank_key(self, m: int, n: int, sms: int, rule: dict, k: int | None = None) -> tuple:
        # The smallest token tile that takes m (tiles past m are skipped, but the ring is sized by
        # m and a larger tile spends registers), then the rule's K split, rows per warp and stages.
        return (self.max_m, self.k_warps != rule.get("k_warps", 1), self.mma != rule.get("mma", "sync"),
                self.rows_per_warp != rule.get("rows_per_warp", 16), self.stages != rule.get("stages", 4))


# The skinny kernel's warp-split form built from SM80 instructions (issue 18 item 2): the same
# kernel as a `skinny` kernel with k_warps > 1 (gemv/skinny_wsplit_kernel.cuh), its weight ring
# filled by cp.async instead of bulk copies, no programmatic dependent launch; compiled like the
# tiled family for sm_80 and as compute_80 PTX.
SKINNY80_K_WARPS = (2, 4, 8)
SKINNY80_MAX_M = (16, 32, 64, 128)


@dataclasses.dataclass(frozen=True)
class Skinny80Config(Kernel):
    """One SM80 warp-split skinny kernel (gemv/skinny_wsplit_*.cuh with kCpAsync): M <= max_m."""

    dtype: DType
    mode: QuantMode
    max_m: int
    k_warps: int
    stages: int

    family: ClassVar[str] = "skinny80"
    manifest_key: ClassVar[str] = "skinny80"
    section_default_all: ClassVar[bool] = False  # manifests name their skinny80 kernels (older ones get none)
    axes_required: ClassVar[bool] = False
    AXES: ClassVar[dict[str, list[str]]] = {
        "dtype": DType.choices(),
        "mode": QuantMode.choices(),
        "max_m": _ints(SKINNY80_MAX_M),
        "k_warps": _ints(SKINNY80_K_WARPS),
        "stages": _ints(SKINNY_STAGES),
    }
    NAME_RE: ClassVar[re.Pattern] = re.compile(
        r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)_skinny80_m(?P<max_m>\d+)_kw(?P<k_warps>\d+)_s(?P<stages>\d+)")
    NAME_FORM: ClassVar[str] = "DTYPE_int4_MODE_skinny80_mMAXM_kwKWARPS_sSTAGES"
    template: ClassVar[str] = "skinny80_kernels.cu.j2"
    include_dirs: ClassVar[tuple[str, ...]] = (".",)  # the files include "gemv/skinny_wsplit_launch.cuh"
    archs: ClassVar[tuple[str, ...]] = ("80",)
    # Per arch entry (estimate.py): seconds and memory taken from the skinny family (the same kernel);
    # checked against one build of default's 12 (H200 machine, 13 compiles at once, sm_80 SASS +
    # compute_80 PTX): 7-8 s and 0.3 GB per 4-kernel file (this model: 7.8 s), and the extension
    # grew 14.45 -> 15.06 MB for the 12, ~25 KB per kernel and entry.
    cost: ClassVar[BuildCost] = BuildCost(file_s=2.6, kernel_s=0.32, file_gb=0.3, kernel_gb=0.05, kernel_kb=25.0)

    @property
    def name(self) -> str:
        return f"{self.dtype.short}_{WEIGHT}_{self.mode.short}_skinny80_m{self.max_m}_kw{self.k_warps}_s{self.stages}"

    @property
    def token_tiles(self) -> int:
        return self.max_m // 8

    @property
    def k_step(self) -> int:
        return SKINNY_CHUNK_K


    def rank_key(self, m: int, n: int, sms: int, rule: dict, k: int | None = None) -> tuple:
        # As the skinny family's: the smallest token tile that takes m, then the rule's K split and stages.
        return (self.max_m, self.k_warps != rule.get("k_warps", 8), self.stages != rule.get("stages", 2))


# The tiled kernels (gemv/tiled_kernel.cuh): a GEMM for any M from SM80 instructions only
# (cp.async, ldmatrix, mma.sync), compiled for sm_80 (Ampere, Ada) and as compute_80 PTX (which
# Hopper runs through the driver's JIT: the test path of issue 18). A CTA of 8 warps owns
# 128 * rows_per_warp / 16 weight rows and `tokens` tokens; K runs through `stages` cp.async stages.
TILED_TOKENS = (32, 64, 128)
TILED_ROWS_PER_WARP = (16, 32)
TILED_STAGES = (2, 3, 4)
TILED_SMEM_LIMIT = rules.TILED_SMEM_LIMIT


@dataclasses.dataclass(frozen=True)
class TiledConfig(Kernel):
    """One tiled kernel (gemv/tiled_*.cuh): any M, SM80 and newer."""

    dtype: DType
    mode: QuantMode
    tokens: int
    rows_per_warp: int
    stages: int

    family: ClassVar[str] = "tiled"
    manifest_key: ClassVar[str] = "tiled"
    section_default_all: ClassVar[bool] = False  # manifests name their tiled kernels (older ones get none)
    axes_required: ClassVar[bool] = False
    AXES: ClassVar[dict[str, list[str]]] = {
        "dtype": DType.choices(),
        "mode": QuantMode.choices(),
        "tokens": _ints(TILED_TOKENS),
        "rows_per_warp": _ints(TILED_ROWS_PER_WARP),
        "stages": _ints(TILED_STAGES),
    }
    RULES: ClassVar[dict] = rules.TILED_RULES
    NAME_RE: ClassVar[re.Pattern] = re.compile(
        r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)_tiled_t(?P<tokens>\d+)_r(?P<rows_per_warp>\d+)"
        r"_s(?P<stages>\d+)")
    NAME_FORM: ClassVar[str] = "DTYPE_int4_MODE_tiled_tTOKENS_rROWS_sSTAGES"
    template: ClassVar[str] = "tiled_kernels.cu.j2"
    include_dirs: ClassVar[tuple[str, ...]] = (".",)  # the files include "gemv/tiled_launch.cuh"
    archs: ClassVar[tuple[str, ...]] = ("80",)
    # Per arch entry (estimate.py): from one build of default's 12 (H200 machine, 13 compiles at
    # once, sm_80 SASS + compute_80 PTX: 8.9-10.1 s and 0.35 GB per 3-kernel file, ~215 KB of
    # extension per kernel for both); not fitted to the 2-core machine (one kernel, both entries,
    # compiled there in 3.0 s).
    cost: ClassVar[BuildCost] = BuildCost(file_s=2.6, kernel_s=1.25, file_gb=0.3, kernel_gb=0.02, kernel_kb=108.0)
    max_m: ClassVar[int] = 0  # any M: the grid tiles the tokens

    @property
    def name(self) -> str:
        return (f"{self.dtype.short}_{WEIGHT}_{self.mode.short}_tiled_t{self.tokens}"
                f"_r{self.rows_per_warp}_s{self.stages}")

    @property
    def row_blocks_per_warp(self) -> int:
        return self.rows_per_warp // 16

    @property
    def token_tiles(self) -> int:
        return self.tokens // 8

    @property
    def k_step(self) -> int:
        return SKINNY_CHUNK_K

    @property
    def smem_bytes(self) -> int:
        """Shared memory of its stages (gemv/tiled_kernel.cuh StageLayout)."""
        rows = self.cta_rows
        x = self.tokens * (SKINNY_CHUNK_K + 8) * 2
        w = 8 * self.row_blocks_per_warp * 512
        sz = 0 if self.mode == QuantMode.PER_COLUMN else rows * 2 * (2 if self.mode == QuantMode.GROUPWISE_ZERO else 1)
        return self.stages * ((x + w + sz + 127) // 128 * 128)


    def rank_key(self, m: int, n: int, sms: int, rule: dict, k: int | None = None) -> tuple:
        # The fewest whole waves of CTAs over the SMs, then the most CTAs (the smaller tile while
        # both fit the same waves), then the fewest padded tokens (computed past m in the last
        # token tile), more rows and stages. Measured only between t64 r16 s4 and t128 r32 s3, on
        # the H200's 132 SMs through the PTX, not on an SM80 GPU (benchmarks/NOTES.md, tenth
        # session): where both fit one wave t64 r16 was 1.5-2x faster at M <= 16 and 1.14-1.35x at
        # M = 24-32 (2x at M = 128 on N = 4096); with more waves than t128 r32 it was 1.2-2x slower
        # (N >= 18432 at M <= 24, M >= 1024), except 2-8% faster at N = 37888 and 49152, M <= 16.
        # It counts one resident CTA per SM (a card that holds two of the smaller tile per SM would
        # favour it more) and is extrapolated to the other tiles of `full` and to other SM counts.
        ctas = self.ctas(m, n)
        return (-(-ctas // sms), -ctas, -m % self.tokens, -self.rows_per_warp, -self.stages)

    @property
    def cta_rows(self) -> int:
        """Output rows of a CTA: its 8 warps (gemv/tiled_kernel.cuh kRows)."""
        return GEMV_WARPS * self.rows_per_warp

    def ctas(self, m: int, n: int) -> int:
        """CTAs of a call (gemv/tiled_launch.cuh's grid): row groups times token tiles of m."""
        return -(-n // self.cta_rows) * -(-m // self.tokens)


@dataclasses.dataclass(frozen=True)
class DequantConfig(Kernel):
    """The dense path (dense/): one kernel writes the weight dequantized to a dense [N, K] matrix of
    the activation type into the call's workspace, then gemm() multiplies by it with torch's matmul
    (cuBLAS) on the same stream. Any M; the heuristic takes it on Hopper at M just past a multiple of
    128 tokens (1537-3088), where the fused kernels' last token tile is nearly empty
    (benchmarks/NOTES.md, seventeenth and eighteenth sessions). SM80 and newer."""

    dtype: DType
    mode: QuantMode

    family: ClassVar[str] = "dequant"
    manifest_key: ClassVar[str] = "dequant"
    section_default_all: ClassVar[bool] = False  # manifests name theirs (older ones get none)
    axes_required: ClassVar[bool] = False
    AXES: ClassVar[dict[str, list[str]]] = {
        "dtype": DType.choices(),
        "mode": QuantMode.choices(),
    }
    NAME_RE: ClassVar[re.Pattern] = re.compile(r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)_dequant_mm")
    NAME_FORM: ClassVar[str] = "DTYPE_int4_MODE_dequant_mm"
    template: ClassVar[str] = "dequant_kernels.cu.j2"
    include_dirs: ClassVar[tuple[str, ...]] = (".",)  # the files include "dense/launch.cuh"
    archs: ClassVar[tuple[str, ...]] = ("90a", "80")
    # Per arch entry (estimate.py). Not fitted to a build: one generated file (one kernel) took 3.4 s
    # with nvcc alone for sm_90a and sm_80 on the 2-core machine (2026-11-29), about 1.7 s per entry.
    cost: ClassVar[BuildCost] = BuildCost(file_s=1.4, kernel_s=0.3, file_gb=0.3, kernel_gb=0.02, kernel_kb=12.0)
    max_m: ClassVar[int] = 0  # any M

    @property
    def name(self) -> str:
        return f"{self.dtype.short}_{WEIGHT}_{self.mode.short}_dequant_mm"

    @property
    def k_step(self) -> int:
        return DEQUANT_K_STEP


DEQUANT_K_STEP = 64  # K and the group: multiples of 64 (the packed layout's and the other families')


# Every family, in the order generated files and lists show them. Everything else (manifest
# sections, sharding, templates, CMake's source lists, estimates, name parsing, ranking) reads
# this list when it runs, so a family added here is known everywhere.
FAMILIES: list[type[Kernel]] = [KernelConfig, GemvConfig, SkinnyConfig, Skinny80Config, TiledConfig,
                                 DequantConfig]


def family(name: str) -> type[Kernel]:
    """The family class of a short family name."""
    for cls in FAMILIES:
        if cls.family == name:
            return cls
    raise ValueError(f"{name!r} is not a kernel family; families: {', '.join(c.family for c in FAMILIES)}")


def parse_name(name: str) -> Kernel:
    """The configuration of a kernel name of any family (the family whose name pattern it fits)."""
    fits = [cls for cls in FAMILIES if cls.NAME_RE.fullmatch(name)]
    if len(fits) != 1:
        forms = "; ".join(f"{c.family}: {c.NAME_FORM}" for c in FAMILIES)
        raise ValueError(f"{name!r} is not a kernel name of any family ({forms})")
    return fits[0].from_name(name)


# Axis values a manifest may use; `full.yaml` lists every one of them.
AXES = KernelConfig.AXES
GEMV_AXES = GemvConfig.AXES
SKINNY_AXES = SkinnyConfig.AXES
TILED_AXES = TiledConfig.AXES

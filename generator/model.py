"""The typed model of one kernel configuration.

Every axis is an enum that carries its own short name (used in kernel names,
manifests and the Python API) and its C++ spelling (used by the templates).
A `KernelConfig` is immutable; its `name` is its identity everywhere (file
names, registry keys, filters, tuning-cache keys) and `KernelConfig.from_name`
parses a name back into the configuration.
"""

from __future__ import annotations

import dataclasses
import enum
import re


class _Axis(enum.Enum):
    """An enum whose value is its short name."""

    @property
    def short(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text: str):
        for member in cls:
            if member.value == text:
                return member
        raise ValueError(f"{text!r} is not one of {cls.choices()}")

    @classmethod
    def choices(cls) -> list[str]:
        return [m.value for m in cls]


class DType(_Axis):
    FP16 = "fp16"
    BF16 = "bf16"

    @property
    def cpp(self) -> str:
        return {"fp16": "cutlass::half_t", "bf16": "cutlass::bfloat16_t"}[self.value]

    @property
    def cuda_type(self) -> str:
        return {"fp16": "__half", "bf16": "__nv_bfloat16"}[self.value]


class QuantMode(_Axis):
    PER_COLUMN = "per_column"          # one scale per output channel
    GROUPWISE = "groupwise"            # one scale per group of K
    GROUPWISE_ZERO = "groupwise_zero"  # scale and zero point per group of K

    @property
    def cpp(self) -> str:
        return {
            "per_column": "w4a16::QuantMode::kPerColumn",
            "groupwise": "w4a16::QuantMode::kGroupwise",
            "groupwise_zero": "w4a16::QuantMode::kGroupwiseZero",
        }[self.value]

    @property
    def gemv_cpp(self) -> str:
        return {
            "per_column": "w4a16::gemv::Mode::kPerColumn",
            "groupwise": "w4a16::gemv::Mode::kGroupwise",
            "groupwise_zero": "w4a16::gemv::Mode::kGroupwiseZero",
        }[self.value]

    @property
    def has_scales_in_mainloop(self) -> bool:
        return self is not QuantMode.PER_COLUMN

    @property
    def has_zeros(self) -> bool:
        return self is QuantMode.GROUPWISE_ZERO


class Schedule(_Axis):
    """Mainloop schedule; each carries its matching epilogue schedule."""

    COOPERATIVE = "coop"
    PINGPONG = "pingpong"

    @property
    def cpp(self) -> str:
        return {
            "coop": "cutlass::gemm::KernelTmaWarpSpecializedCooperative",
            "pingpong": "cutlass::gemm::KernelTmaWarpSpecializedPingpong",
        }[self.value]

    @property
    def epilogue_cpp(self) -> str:
        return {
            "coop": "cutlass::epilogue::TmaWarpSpecializedCooperative",
            "pingpong": "cutlass::epilogue::TmaWarpSpecialized",
        }[self.value]

    @property
    def consumer_warpgroups_per_tile(self) -> int:
        # Cooperative: two consumer warpgroups split one tile along its rows.
        # Pingpong: each consumer warpgroup owns a whole tile.
        return 2 if self is Schedule.COOPERATIVE else 1


class TileScheduler(_Axis):
    PERSISTENT = "persistent"
    STREAMK = "streamk"

    @property
    def cpp(self) -> str:
        return {
            "persistent": "cutlass::gemm::PersistentScheduler",
            "streamk": "cutlass::gemm::StreamKScheduler",
        }[self.value]


# The CUTLASS tile and cluster values a manifest may ask for (AXES below): sets
# and explicit names are checked against them. The model itself parses any
# value, so that the validity rules can be tested on configurations outside them.
TILE_ROWS = (64, 128, 256)
TILE_TOKENS = (16, 32, 64, 128, 256)
TILE_K = (64, 128)
CLUSTERS = ("1x1", "2x1", "1x2", "2x2")


@dataclasses.dataclass(frozen=True, order=True)
class Tile:
    """CTA tile: weight rows (output features) x tokens x K elements."""

    rows: int
    tokens: int
    k: int

    @property
    def short(self) -> str:
        return f"{self.rows}x{self.tokens}x{self.k}"

    @classmethod
    def parse(cls, text: str) -> "Tile":
        m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text)
        if not m:
            raise ValueError(f"{text!r} is not a tile ROWSxTOKENSxK")
        return cls(*(int(g) for g in m.groups()))

    @property
    def cpp(self) -> str:
        return f"cute::Shape<cute::_{self.rows}, cute::_{self.tokens}, cute::_{self.k}>"


@dataclasses.dataclass(frozen=True, order=True)
class Cluster:
    """Thread-block cluster: CTAs along weight rows (m) x along tokens (n)."""

    m: int
    n: int

    @property
    def short(self) -> str:
        return f"{self.m}x{self.n}"

    @property
    def size(self) -> int:
        return self.m * self.n

    @classmethod
    def parse(cls, text: str) -> "Cluster":
        m = re.fullmatch(r"(\d+)x(\d+)", text)
        if not m:
            raise ValueError(f"{text!r} is not a cluster MxN")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def cpp(self) -> str:
        return f"cute::Shape<cute::_{self.m}, cute::_{self.n}, cute::_1>"


# The weight type is fixed by the product (4-bit integers); it is part of the
# name so that names stay readable next to other libraries' kernels.
WEIGHT = "int4"

_NAME_RE = re.compile(
    r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)"
    r"_t(?P<tile>\d+x\d+x\d+)_c(?P<cluster>\d+x\d+)"
    r"_(?P<schedule>[a-z]+)_(?P<scheduler>[a-z]+)"
)


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    """One CUTLASS SM90 W4A16 kernel. Kernels sort by name."""

    dtype: DType
    mode: QuantMode
    tile: Tile
    cluster: Cluster
    schedule: Schedule
    scheduler: TileScheduler

    family = "cutlass"
    max_m = 0  # no limit on tokens

    @property
    def name(self) -> str:
        return (
            f"{self.dtype.short}_{WEIGHT}_{self.mode.short}_t{self.tile.short}"
            f"_c{self.cluster.short}_{self.schedule.short}_{self.scheduler.short}"
        )

    @classmethod
    def from_name(cls, name: str) -> "KernelConfig":
        m = _NAME_RE.fullmatch(name)
        if not m:
            raise ValueError(
                f"{name!r} is not a kernel name of the form "
                "DTYPE_int4_MODE_tROWSxTOKENSxK_cMxN_SCHEDULE_SCHEDULER"
            )
        try:
            return cls(
                dtype=DType.parse(m["dtype"]),
                mode=QuantMode.parse(m["mode"]),
                tile=Tile.parse(m["tile"]),
                cluster=Cluster.parse(m["cluster"]),
                schedule=Schedule.parse(m["schedule"]),
                scheduler=TileScheduler.parse(m["scheduler"]),
            )
        except ValueError as e:
            raise ValueError(f"kernel name {name!r}: {e}") from None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "dtype": self.dtype.short,
            "mode": self.mode.short,
            "tile_rows": self.tile.rows,
            "tile_tokens": self.tile.tokens,
            "tile_k": self.tile.k,
            "cluster_m": self.cluster.m,
            "cluster_n": self.cluster.n,
            "schedule": self.schedule.short,
            "scheduler": self.scheduler.short,
            "max_m": 0,
            "stages": 0,  # chosen by the CUTLASS builder from shared memory
        }

    def __str__(self) -> str:
        return self.name


# The GEMV kernels (gemv/gemv.cuh): a CTA of 8 warps, each warp owning 16 or
# 32 output rows; each warp step consumes 64 k; clusters of CTAs split K.
GEMV_WARPS = 8
GEMV_CHUNK_K = 64
GEMV_ROWS_PER_WARP = (16, 32)  # 32: x is read once per 256 rows instead of 128
GEMV_MAX_M = (8, 16)  # token tiles of one or two m16n8k16 n-tiles
# 512-byte weight chunks in flight per warp (bulk copies into a shared-memory ring).
GEMV_STAGES = (4, 8, 12)

_GEMV_NAME_RE = re.compile(
    r"(?P<dtype>[a-z0-9]+)_int4_(?P<mode>[a-z_]+?)_gemv_m(?P<max_m>\d+)_r(?P<rows>\d+)_s(?P<stages>\d+)")


@dataclasses.dataclass(frozen=True)
class GemvConfig:
    """One GEMV kernel for M <= max_m tokens."""

    dtype: DType
    mode: QuantMode
    max_m: int
    rows_per_warp: int
    stages: int

    family = "gemv"

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

    @classmethod
    def from_name(cls, name: str) -> "GemvConfig":
        m = _GEMV_NAME_RE.fullmatch(name)
        if not m:
            raise ValueError(f"{name!r} is not a GEMV kernel name of the form "
                             "DTYPE_int4_MODE_gemv_mMAXM_rROWS_sSTAGES")
        try:
            cfg = cls(DType.parse(m["dtype"]), QuantMode.parse(m["mode"]), int(m["max_m"]), int(m["rows"]),
                      int(m["stages"]))
        except ValueError as e:
            raise ValueError(f"kernel name {name!r}: {e}") from None
        if cfg.max_m not in GEMV_MAX_M:
            raise ValueError(f"kernel name {name!r}: max_m must be one of {GEMV_MAX_M}")
        if cfg.rows_per_warp not in GEMV_ROWS_PER_WARP:
            raise ValueError(f"kernel name {name!r}: rows per warp must be one of {GEMV_ROWS_PER_WARP}")
        if cfg.stages not in GEMV_STAGES:
            raise ValueError(f"kernel name {name!r}: stages must be one of {GEMV_STAGES}")
        return cfg

    def to_dict(self) -> dict:
        # The same keys as a CUTLASS kernel, so tools can treat every tactic alike.
        return {
            "name": self.name,
            "family": self.family,
            "dtype": self.dtype.short,
            "mode": self.mode.short,
            "tile_rows": GEMV_WARPS * self.rows_per_warp,  # rows per CTA
            "tile_tokens": self.max_m,
            "tile_k": GEMV_CHUNK_K,
            "cluster_m": 0,   # chosen per problem: the split-K cluster
            "cluster_n": 1,
            "schedule": "gemv",
            "scheduler": "cluster_splitk",
            "max_m": self.max_m,
            "stages": self.stages,
        }

    def __str__(self) -> str:
        return self.name


def parse_name(name: str):
    """A CUTLASS or GEMV kernel configuration from its name."""
    if "_gemv_" in name:
        return GemvConfig.from_name(name)
    return KernelConfig.from_name(name)


# Axis values that a manifest may use; `full.yaml` lists every one of them.
GEMV_AXES: dict[str, list[str]] = {
    "dtype": DType.choices(),
    "mode": QuantMode.choices(),
    "max_m": [str(m) for m in GEMV_MAX_M],
    "rows_per_warp": [str(r) for r in GEMV_ROWS_PER_WARP],
    "stages": [str(s) for s in GEMV_STAGES],
}
AXES: dict[str, list[str]] = {
    "dtype": DType.choices(),
    "mode": QuantMode.choices(),
    "tile_rows": [str(v) for v in TILE_ROWS],
    "tile_tokens": [str(v) for v in TILE_TOKENS],
    "tile_k": [str(v) for v in TILE_K],
    "cluster": list(CLUSTERS),
    "schedule": Schedule.choices(),
    "scheduler": TileScheduler.choices(),
}

"""The axes a kernel configuration is made of, shared by every kernel family.

Every axis is an enum (or a small frozen dataclass) that carries its own short
name (used in kernel names, manifests and the Python API) and its C++ spelling
(used by the templates). The families themselves are in model.py.
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
TILE_TOKENS = (16, 32, 48, 64, 96, 128, 192, 208, 224, 256)
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

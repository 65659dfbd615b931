"""Validity rules: which configurations CUTLASS's SM90 mixed-input path can build.

Each rule is a named predicate `rule(config) -> str | None` that returns why a
configuration is invalid, or None. The constants mirror the CUTLASS 4.2
builders they come from, so the generator drops a configuration before nvcc
would reject it (or worse, build a kernel that spills or cannot launch).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Optional

from .axes import Schedule, TileScheduler

if TYPE_CHECKING:  # for annotations only: the model imports this module, not the other way round
    from .model import KernelConfig

Rule = Callable[["KernelConfig"], Optional[str]]

# cutlass/gemm/collective/builders/sm90_common.inl: sm90_smem_capacity_bytes.
SM90_SMEM_CAPACITY = 232448
# Shared-memory alignment and per-stage barrier bytes used by the builder
# (compute_stage_count_or_override_single_affine_transformed_input).
SMEM_ALIGN = 128
STAGE_BARRIER_BYTES = 32
# A consumer warpgroup is 128 threads; with register reallocation the
# consumers get 240 registers each. 128 fp32 accumulators per thread is the
# most CUTLASS ships for the register-sourced (mixed-input) mainloop
# (128x256 cooperative, 256x128 cooperative): beyond that the converted A
# fragments no longer fit beside them.
MAX_ACCUMULATORS_PER_THREAD = 128
# The weight-reordering atom (cutlass::compute_memory_reordering_atom for a
# 16-bit wgmma) covers 16 weight rows; TMA multicast slices the A tile among
# the cluster's CTAs along tokens, so each slice must hold whole atoms.
REORDER_ATOM_ROWS = 16
# Smallest TMA box row count we allow a multicast slice of the activation tile.
MIN_MULTICAST_TOKENS = 8
# The mixed-input collective static_asserts K_BLOCK_MAX >= 4 with 16-wide
# wgmma k-blocks for 16-bit activations.
MIN_TILE_K = 64


def _round_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def epilogue_tile(cfg: KernelConfig) -> tuple[int, int]:
    """EpilogueTileAuto of cutlass/epilogue/collective/builders/sm90_builder.inl."""
    m_cap = 128 if cfg.schedule is Schedule.COOPERATIVE else 64
    tile_m = min(m_cap, cfg.tile.rows)
    tile_n = math.gcd(min(32, cfg.tile.tokens), cfg.tile.tokens)
    return tile_m, tile_n


def epilogue_smem_bytes(cfg: KernelConfig, out_bytes: int = 2) -> int:
    """D staging buffers of the TMA epilogue (there is no C operand)."""
    epi_m, epi_n = epilogue_tile(cfg)
    epi_tiles = (cfg.tile.rows // epi_m) * (cfg.tile.tokens // epi_n)
    stages_d = min(epi_tiles, 2)
    return stages_d * epi_m * epi_n * out_bytes + SMEM_ALIGN  # + barriers


def mainloop_stage_bytes(cfg: KernelConfig) -> int:
    t = cfg.tile
    a_bytes = t.rows * t.k // 2          # 4-bit weight
    b_bytes = t.tokens * t.k * 2         # 16-bit activations
    s_bytes = t.rows * 2 if cfg.mode.has_scales_in_mainloop else 0
    z_bytes = t.rows * 2 if cfg.mode.has_zeros else 0
    return _round_up(a_bytes + b_bytes + s_bytes + z_bytes, SMEM_ALIGN) + STAGE_BARRIER_BYTES


def pipeline_stages(cfg: KernelConfig) -> int:
    """Stage count the CUTLASS builder picks (StageCountAutoCarveout)."""
    carveout = _round_up(epilogue_smem_bytes(cfg), SMEM_ALIGN)
    capacity = SM90_SMEM_CAPACITY // SMEM_ALIGN * SMEM_ALIGN
    return (capacity - carveout) // mainloop_stage_bytes(cfg)


def accumulators_per_thread(cfg: KernelConfig) -> int:
    threads = 128 * cfg.schedule.consumer_warpgroups_per_tile
    return cfg.tile.rows * cfg.tile.tokens // threads


# ---------------------------------------------------------------- the rules


def wgmma_rows(cfg: KernelConfig) -> Optional[str]:
    if cfg.tile.rows % 64:
        return f"tile rows {cfg.tile.rows} is not a multiple of the 64-row wgmma"
    return None


def wgmma_tokens(cfg: KernelConfig) -> Optional[str]:
    # wgmma takes N in steps of 8, but the mixed-input mainloop does not build with an N that is
    # not a multiple of 16: t128x24x128 fails CUTLASS 4.2's "Shape/Stride Divisibility Condition"
    # static asserts, while 48, 96, 192, 208 (t128 coop) and 224 (t64 pingpong) compile (nvcc 13.0,
    # 2026-11-28).
    if cfg.tile.tokens < 16 or cfg.tile.tokens % 16 or cfg.tile.tokens > 256:
        return f"tile tokens {cfg.tile.tokens} is not a buildable wgmma N (16..256, multiple of 16)"
    return None


def tile_k_min_blocks(cfg: KernelConfig) -> Optional[str]:
    if cfg.tile.k < MIN_TILE_K or cfg.tile.k % 16:
        return f"tile K {cfg.tile.k} gives fewer than 4 wgmma k-blocks (needs >= {MIN_TILE_K})"
    return None


def coop_needs_128_rows(cfg: KernelConfig) -> Optional[str]:
    if cfg.schedule is Schedule.COOPERATIVE and cfg.tile.rows % 128:
        return f"cooperative splits a tile over two warpgroups: needs rows % 128 == 0, got {cfg.tile.rows}"
    return None


def streamk_needs_coop(cfg: KernelConfig) -> Optional[str]:
    # sm90_gemm_tma_warpspecialized_pingpong.hpp static_asserts this.
    if cfg.scheduler is TileScheduler.STREAMK and cfg.schedule is not Schedule.COOPERATIVE:
        return "the pingpong kernel does not support the stream-K scheduler"
    return None


def accumulators_fit(cfg: KernelConfig) -> Optional[str]:
    n = accumulators_per_thread(cfg)
    if n > MAX_ACCUMULATORS_PER_THREAD:
        return f"{n} fp32 accumulators per thread exceed {MAX_ACCUMULATORS_PER_THREAD}"
    return None


def smem_two_stages(cfg: KernelConfig) -> Optional[str]:
    stages = pipeline_stages(cfg)
    if stages < 2:
        return f"shared memory holds {stages} pipeline stage(s); at least 2 are needed"
    return None


def cluster_size_limit(cfg: KernelConfig) -> Optional[str]:
    if cfg.cluster.m < 1 or cfg.cluster.n < 1 or cfg.cluster.size > 8:
        return f"cluster {cfg.cluster.short} is not a portable SM90 cluster (1..8 CTAs)"
    if cfg.cluster.m & (cfg.cluster.m - 1) or cfg.cluster.n & (cfg.cluster.n - 1):
        return f"cluster {cfg.cluster.short} dimensions must be powers of two"
    return None


def multicast_slices(cfg: KernelConfig) -> Optional[str]:
    # The weight tile is multicast to the cluster's CTAs along tokens (cluster n)
    # and the activation tile along rows (cluster m); each CTA loads one slice.
    if cfg.tile.rows % (cfg.cluster.n * REORDER_ATOM_ROWS):
        return (f"weight tile of {cfg.tile.rows} rows cannot be split into {cfg.cluster.n} "
                f"multicast slices of whole {REORDER_ATOM_ROWS}-row reorder atoms")
    if cfg.tile.tokens % (cfg.cluster.m * MIN_MULTICAST_TOKENS):
        return (f"activation tile of {cfg.tile.tokens} tokens cannot be split into "
                f"{cfg.cluster.m} multicast slices of >= {MIN_MULTICAST_TOKENS} tokens")
    return None


RULES: dict[str, Rule] = {
    f.__name__: f
    for f in (
        wgmma_rows,
        wgmma_tokens,
        tile_k_min_blocks,
        coop_needs_128_rows,
        streamk_needs_coop,
        accumulators_fit,
        smem_two_stages,
        cluster_size_limit,
        multicast_slices,
    )
}


# The skinny family (model.SkinnyConfig).
def skinny_wsplit_rows(cfg) -> Optional[str]:
    if cfg.k_warps > 1 and cfg.rows_per_warp != 16:
        return f"k_warps {cfg.k_warps} splits K between warps that each own one 16-row block (rows_per_warp 16)"
    return None


def skinny_wgmma_form(cfg) -> Optional[str]:
    if cfg.mma == "wgmma" and (cfg.k_warps != 1 or cfg.rows_per_warp != 16):
        return ("mma wgmma needs the cluster form with one 16-row block per warp (k_warps 1, rows_per_warp 16): "
                "a warpgroup's four warps share each K step")
    return None


def skinny_ws_form(cfg) -> Optional[str]:
    if cfg.mma == "ws" and (cfg.k_warps != 1 or cfg.rows_per_warp != 16):
        return ("mma ws needs the cluster form with one 16-row block per warp (k_warps 1, rows_per_warp 16): "
                "two warpgroups of 64 rows")
    return None


def skinny_ws_tiles(cfg) -> Optional[str]:
    if cfg.max_m in (8, 40, 48, 56) and cfg.mma != "ws":
        return (f"max_m {cfg.max_m} ({cfg.max_m // 8} token tile{'s' if cfg.max_m > 8 else ''}) exists in the "
                "warp-specialized form only (mma ws): the other forms take 2, 4, 8 or 16 token tiles")
    return None


SKINNY_RULES: dict[str, Rule] = {"skinny_wsplit_rows": skinny_wsplit_rows, "skinny_wgmma_form": skinny_wgmma_form,
                                 "skinny_ws_form": skinny_ws_form, "skinny_ws_tiles": skinny_ws_tiles}


# The tiled family (model.TiledConfig).
TILED_SMEM_LIMIT = 163 * 1024      # an A100's shared memory per CTA (Ada: 99 KB, checked at run time)


def tiled_smem(cfg) -> Optional[str]:
    if cfg.smem_bytes > TILED_SMEM_LIMIT:
        return (f"{cfg.stages} stages of {cfg.tokens} tokens and {cfg.rows_per_warp} rows per warp need "
                f"{cfg.smem_bytes // 1024} KB of shared memory; an A100 gives a CTA {TILED_SMEM_LIMIT // 1024} KB")
    return None


TILED_RULES: dict[str, Rule] = {"tiled_smem": tiled_smem}


def violations(cfg) -> list[tuple[str, str]]:
    """All (rule name, reason) pairs a configuration of any family breaks: its family's
    RULES (model.py; these for CUTLASS, none for the GEMV, whose axes say all)."""
    return cfg.violations()


def is_valid(cfg) -> bool:
    return not violations(cfg)

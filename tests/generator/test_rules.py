"""Each validity rule: one configuration it rejects, one it accepts."""

import pytest

from generator import rules
from generator.model import KernelConfig


def cfg(name):
    return KernelConfig.from_name(name)


OK = "fp16_int4_groupwise_t128x32x64_c1x1_coop_persistent"

CASES = {
    # rule name: configuration that breaks it
    "wgmma_rows": "fp16_int4_groupwise_t96x32x64_c1x1_pingpong_persistent",
    "wgmma_tokens": "fp16_int4_groupwise_t64x12x64_c1x1_pingpong_persistent",
    "tile_k_min_blocks": "fp16_int4_groupwise_t64x32x32_c1x1_pingpong_persistent",
    "coop_needs_128_rows": "fp16_int4_groupwise_t64x32x64_c1x1_coop_persistent",
    "streamk_needs_coop": "fp16_int4_groupwise_t64x32x64_c1x1_pingpong_streamk",
    "accumulators_fit": "fp16_int4_groupwise_t256x256x64_c1x1_coop_persistent",
    "smem_two_stages": "fp16_int4_groupwise_zero_t64x256x512_c1x1_pingpong_persistent",
    "cluster_size_limit": "fp16_int4_groupwise_t128x32x64_c3x1_coop_persistent",
    "multicast_slices": "fp16_int4_groupwise_t128x16x64_c4x1_coop_persistent",
}


def test_every_rule_has_a_case():
    assert set(CASES) == set(rules.RULES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_rejects(rule):
    reason = rules.RULES[rule](cfg(CASES[rule]))
    assert reason, f"{rule} accepted {CASES[rule]}"
    assert rule in [r for r, _ in rules.violations(cfg(CASES[rule]))]


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_accepts_valid(rule):
    assert rules.RULES[rule](cfg(OK)) is None


def test_accumulator_limit_matches_upstream_tiles():
    # CUTLASS ships these register-sourced tiles; they must stay valid.
    for name in ("fp16_int4_groupwise_t128x256x64_c2x1_coop_persistent",
                 "fp16_int4_groupwise_t256x128x64_c1x1_coop_persistent",
                 "fp16_int4_groupwise_t64x256x64_c1x1_pingpong_persistent"):
        assert rules.accumulators_fit(cfg(name)) is None
    assert rules.accumulators_fit(cfg("fp16_int4_groupwise_t128x256x64_c1x1_pingpong_persistent"))


def test_stage_count_matches_builder_arithmetic():
    # 128x16x64 groupwise: A 4096 B + B 2048 B + scales 256 B = 6400 B -> 6528 per stage
    # with barriers; the epilogue tile is the whole 128x16 tile, so one D
    # stage: 128*16*2 B + 128 = 4224 B carve-out.
    c = cfg("fp16_int4_groupwise_t128x16x64_c1x1_coop_persistent")
    assert rules.mainloop_stage_bytes(c) == 6400 + 32
    assert rules.epilogue_smem_bytes(c) == 4224
    assert rules.pipeline_stages(c) == (232448 - 4224) // 6432
    # Zero points add one more row of 16-bit values per stage.
    z = cfg("fp16_int4_groupwise_zero_t128x16x64_c1x1_coop_persistent")
    assert rules.mainloop_stage_bytes(z) == rules.mainloop_stage_bytes(c) + 256


def test_per_column_has_no_mainloop_scales():
    p = cfg("fp16_int4_per_column_t128x16x64_c1x1_coop_persistent")
    g = cfg("fp16_int4_groupwise_t128x16x64_c1x1_coop_persistent")
    assert rules.mainloop_stage_bytes(p) < rules.mainloop_stage_bytes(g)


def test_token_tiles_that_build_and_one_that_does_not():
    """Issue 16, item 3: 48, 96 and 192 tokens compile (nvcc 13.0, CUTLASS 4.2); 24 fails CUTLASS's
    divisibility static asserts, so a multiple of 8 that is not one of 16 is refused."""
    for tokens in (48, 96, 192):
        assert rules.wgmma_tokens(cfg(f"fp16_int4_groupwise_t128x{tokens}x64_c1x1_coop_persistent")) is None
    assert "multiple of 16" in rules.wgmma_tokens(cfg("fp16_int4_groupwise_t128x24x128_c1x1_coop_persistent"))

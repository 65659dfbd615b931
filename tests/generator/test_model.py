import pytest

from generator.manifest import load
from generator.model import (AXES, FAMILIES, GEMV_AXES, Cluster, DType, GemvConfig, KernelConfig, QuantMode,
                             Schedule, Tile, TileScheduler, family, parse_name)
from generator.paths import resolve_manifest
from generator.pipeline import enumerate_configs


def full_configs():
    return [c for c in enumerate_configs(load(resolve_manifest("full"))) if c.family == "cutlass"]


def test_name_round_trip_for_every_point_of_the_full_product():
    configs = full_configs()
    assert len(configs) == 2 * 3 * 3 * 10 * 2 * 4 * 2 * 2
    names = set()
    for cfg in configs:
        assert KernelConfig.from_name(cfg.name) == cfg
        names.add(cfg.name)
    assert len(names) == len(configs), "two configurations share a name"


def test_name_spelling():
    cfg = KernelConfig(DType.FP16, QuantMode.GROUPWISE_ZERO, Tile(128, 32, 64), Cluster(2, 1),
                       Schedule.COOPERATIVE, TileScheduler.STREAMK)
    assert cfg.name == "fp16_int4_groupwise_zero_t128x32x64_c2x1_coop_streamk"
    assert cfg.to_dict()["tile_tokens"] == 32


@pytest.mark.parametrize("bad", [
    "",
    "fp16_int4_groupwise_t128x32_c2x1_coop_streamk",           # tile without K
    "fp32_int4_groupwise_t128x32x64_c2x1_coop_streamk",        # unknown dtype
    "fp16_int4_rowwise_t128x32x64_c2x1_coop_streamk",          # unknown mode
    "fp16_int4_groupwise_t128x32x64_c2x1_basic_streamk",       # unknown schedule
    "fp16_int4_groupwise_t128x32x64_c2x1_coop_splitk",         # unknown scheduler
    "fp16_int4_groupwise_t128x32x64_c2x1_coop_streamk_extra",
])
def test_from_name_rejects_malformed(bad):
    with pytest.raises(ValueError):
        KernelConfig.from_name(bad)


def test_axes_enums_agree():
    assert AXES["dtype"] == DType.choices()
    assert AXES["mode"] == QuantMode.choices()
    assert AXES["schedule"] == Schedule.choices()
    assert AXES["scheduler"] == TileScheduler.choices()


def test_cpp_spellings():
    assert DType.BF16.cpp == "cutlass::bfloat16_t"
    assert Tile(64, 16, 128).cpp == "cute::Shape<cute::_64, cute::_16, cute::_128>"
    assert Schedule.PINGPONG.epilogue_cpp == "cutlass::epilogue::TmaWarpSpecialized"
    assert TileScheduler.STREAMK.cpp == "cutlass::gemm::StreamKScheduler"


def test_gemv_names_round_trip():
    for dt in GEMV_AXES["dtype"]:
        for mode in GEMV_AXES["mode"]:
            for m in GEMV_AXES["max_m"]:
                for r in GEMV_AXES["rows_per_warp"]:
                    for st in GEMV_AXES["stages"]:
                        cfg = GemvConfig(DType.parse(dt), QuantMode.parse(mode), int(m), int(r), int(st))
                        assert parse_name(cfg.name) == cfg
                        d = cfg.to_dict()
                        assert d["family"] == "gemv" and d["max_m"] == int(m) and d["rows_per_warp"] == int(r)
    cfg = GemvConfig.from_name("fp16_int4_groupwise_gemv_m16_r32_s8")
    assert cfg.token_tiles == 2 and cfg.row_blocks_per_warp == 2
    for bad in ("fp16_int4_groupwise_gemv_m12_r16_s8", "fp16_int4_groupwise_gemv_m16_r16_s5",
                "fp16_int4_groupwise_gemv_m16_r24_s4", "fp16_int4_groupwise_gemv_m16_s4",
                "fp16_int4_groupwise_gemv"):
        with pytest.raises(ValueError):
            parse_name(bad)


def test_dicts_hold_the_common_keys_and_each_familys_axes():
    """Issue 14: one to_dict for every family: name, family, max_m and the family's own axes."""
    for name in ("fp16_int4_groupwise_t128x32x64_c2x1_coop_streamk", "fp16_int4_groupwise_gemv_m8_r16_s8",
                 "bf16_int4_groupwise_zero_tiled_t128_r32_s3"):
        cfg = parse_name(name)
        d = cfg.to_dict()
        assert set(d) == {"name", "family", "max_m", "archs", *type(cfg).AXES}
        assert d["name"] == name and family(d["family"]) is type(cfg)
        assert all(str(d[axis]) in values for axis, values in type(cfg).AXES.items())


def test_a_family_is_decided_by_its_name_pattern_not_a_substring():
    """Issue 14: the family was found by the substring "_gemv_"; a CUTLASS-shaped name whose mode
    part contains it must not be taken for a GEMV name, nor the other way round."""
    with pytest.raises(ValueError, match="groupwise_gemv"):   # a CUTLASS name with an unknown mode
        parse_name("fp16_int4_groupwise_gemv_t128x32x64_c2x1_coop_streamk")
    with pytest.raises(ValueError, match="any family"):
        parse_name("fp16_int4_groupwise_gemv_m8_r16_s8_coop")
    assert {c.family for c in FAMILIES} == {"cutlass", "gemv", "skinny", "skinny80", "tiled", "dequant"}
    assert parse_name("fp16_int4_groupwise_tiled_t64_r16_s4").family == "tiled"
    with pytest.raises(ValueError):                            # 48 is not a token tile it has
        parse_name("fp16_int4_groupwise_tiled_t48_r16_s4")
    with pytest.raises(ValueError, match="any family"):
        parse_name("fp16_int4_groupwise_skinny_m8_r16_s4_coop")
    assert parse_name("bf16_int4_groupwise_zero_skinny_m64_r32_s8").family == "skinny"
    with pytest.raises(ValueError):                            # 24 is not a token tile it has
        parse_name("fp16_int4_groupwise_skinny_m24_r16_s4")
    # 40, 48 and 56 tokens are the warp-specialized form's only (twenty-fourth session)
    assert [r for r, _ in parse_name("fp16_int4_groupwise_skinny_m48_r16_s4").violations()] == ["skinny_ws_tiles"]
    with pytest.raises(ValueError):                            # nor a skinny80 one
        parse_name("fp16_int4_groupwise_skinny80_m48_kw8_s2")


def test_skinny_k_warps_names():
    """Issue 15: the warp-split form is named by a _kwN part; k_warps 1 (the cluster form) keeps the
    names it had before the axis existed, so _kw1 is not a spelling of any kernel."""
    old = parse_name("fp16_int4_groupwise_skinny_m16_r16_s4")
    assert old.k_warps == 1 and old.name == "fp16_int4_groupwise_skinny_m16_r16_s4"
    new = parse_name("bf16_int4_groupwise_zero_skinny_m32_r16_s2_kw8")
    assert (new.k_warps, new.max_m, new.stages) == (8, 32, 2) and new.to_dict()["k_warps"] == 8
    assert not new.violations()
    with pytest.raises(ValueError, match="not spelled"):
        parse_name("fp16_int4_groupwise_skinny_m16_r16_s4_kw1")
    with pytest.raises(ValueError, match="k_warps 3"):
        parse_name("fp16_int4_groupwise_skinny_m16_r16_s4_kw3")
    # K parts own 16-row blocks: 32 rows per warp is not a warp-split kernel.
    assert [r for r, _ in parse_name("fp16_int4_groupwise_skinny_m16_r32_s4_kw4").violations()] == ["skinny_wsplit_rows"]


def test_skinny_wgmma_names():
    """Issue 15: the warpgroup form is named by a _wg part after everything else; mma sync (the
    default) keeps the names from before the axis existed; it takes one 16-row block per warp and
    no warp split."""
    wg = parse_name("bf16_int4_groupwise_zero_skinny_m128_r16_s4_wg")
    assert (wg.mma, wg.max_m, wg.k_warps, wg.rows_per_warp) == ("wgmma", 128, 1, 16) and not wg.violations()
    assert wg.to_dict()["mma"] == "wgmma" and wg.token_tiles == 16
    assert parse_name("fp16_int4_groupwise_skinny_m16_r16_s4").mma == "sync"
    for bad in ("fp16_int4_groupwise_skinny_m64_r32_s4_wg", "fp16_int4_groupwise_skinny_m64_r16_s2_kw8_wg"):
        assert [r for r, _ in parse_name(bad).violations()] == ["skinny_wgmma_form"], bad
    with pytest.raises(ValueError):
        parse_name("fp16_int4_groupwise_skinny_m64_r16_s4_wg_kw8")       # the parts have one order


def test_skinny_ws_names():
    """Issue 15: the warp-specialized form is named by a _ws part in the _wg place; it takes one
    16-row block per warp and no warp split (two 64-row warpgroups); 8-64 tokens in steps of 8 but 24,
    or 128 (wgmma N of 8-128)."""
    ws = parse_name("fp16_int4_groupwise_zero_skinny_m64_r16_s8_ws")
    assert (ws.mma, ws.max_m, ws.k_warps, ws.rows_per_warp, ws.stages) == ("ws", 64, 1, 16, 8) and not ws.violations()
    assert ws.name == "fp16_int4_groupwise_zero_skinny_m64_r16_s8_ws" and ws.to_dict()["mma"] == "ws"
    for bad in ("fp16_int4_groupwise_skinny_m64_r32_s8_ws", "fp16_int4_groupwise_skinny_m64_r16_s2_kw8_ws"):
        assert [r for r, _ in parse_name(bad).violations()] == ["skinny_ws_form"], bad
    # Token tiles of 8, 16 (twenty-fifth session) and 40, 48, 56 (twenty-fourth): 8, 40, 48 and 56
    # are the ws form's only.
    for m in (8, 16, 40, 48, 56):
        mid = parse_name(f"bf16_int4_groupwise_skinny_m{m}_r16_s8_ws")
        assert mid.token_tiles == m // 8 and not mid.violations(), m
    assert [r for r, _ in parse_name("fp16_int4_groupwise_skinny_m8_r16_s8").violations()] == ["skinny_ws_tiles"]
    with pytest.raises(ValueError):
        parse_name("fp16_int4_groupwise_skinny_m64_r16_s8_ws_wg")        # one form part at most


def test_waves_of_a_tile():
    c = parse_name("fp16_int4_groupwise_t128x128x128_c1x1_coop_persistent")
    s = parse_name("fp16_int4_groupwise_t128x128x128_c1x1_coop_streamk")
    assert c.waves(256, 128 * 133, 132) == 3.0 and c.waves(1, 128, 132) == 1.0   # 266 tiles: 3 waves
    # Stream-K: the even share, below one wave too (it splits K across SMs there).
    assert s.waves(256, 128 * 133, 132) == pytest.approx(266 / 132) and s.waves(1, 128, 132) == pytest.approx(1 / 132)
    assert c.tile_key == "t128x128x128_c1x1_coop_persistent"


def test_cost_features_and_the_cost_rank():
    """The fitted time a K w + b K [stream-K partial wave] + c: a persistent tile has no partial
    term; a stream-K tile has one unless its tiles fill whole waves; the fixed cost c counts only
    when the call's K is known."""
    c = parse_name("fp16_int4_groupwise_t128x128x128_c1x1_coop_persistent")
    s = parse_name("fp16_int4_groupwise_t128x128x128_c1x1_coop_streamk")
    assert c.cost_features(256, 128 * 133, 4096, 132) == (4096 * 3.0, 0.0, 1.0)
    assert s.cost_features(256, 128 * 133, 4096, 132) == (pytest.approx(4096 * 266 / 132), 4096.0, 1.0)
    assert s.cost_features(256, 128 * 132, 4096, 132) == (pytest.approx(4096 * 2.0), 0.0, 1.0)  # two whole waves
    assert s.cost_features(1, 128, 4096, 132) == (pytest.approx(4096 / 132), 4096.0, 1.0)      # one tile: split K
    rule = {"tokens": "cost", "cost_terms": {c.tile_key: [0.006, 0.0, 2.0], s.tile_key: [0.0055, 0.001, 8.0]}}
    # 264 tiles: persistent 2 waves, stream-K 2 waves without a partial one; stream-K's smaller a wins
    # at large K, its larger fixed cost at small K.
    assert s.rank_key(256, 128 * 132, 132, rule, k=8192) < c.rank_key(256, 128 * 132, 132, rule, k=8192)
    assert c.rank_key(256, 128 * 132, 132, rule, k=256) < s.rank_key(256, 128 * 132, 132, rule, k=256)
    assert c.rank_key(256, 128 * 132, 132, rule)[1] == pytest.approx(0.006 * 2.0)   # K unknown: per K, no c
    other = parse_name("fp16_int4_groupwise_t64x16x128_c1x1_pingpong_persistent")
    assert other.rank_key(256, 4096, 132, rule, k=4096)[0] == 1                      # no terms: after the fitted


def test_cost_residuals_near_the_call_correct_the_fitted_time():
    """generator/cost_residuals.py: with K known, a tile's rank is the log of its fitted time plus
    a weighted mean of its residuals at the nearest measured points (and a residual of 0 weighted
    as if at the fade distance); a tile measured 10% faster than its terms say at the call's shape
    overtakes one fitted 5% faster, far from every measured point the correction fades (the
    fitted terms rank), and without K nothing is corrected."""
    import math

    from generator import cost_residuals

    c = parse_name("fp16_int4_groupwise_t128x128x128_c1x1_coop_persistent")
    s = parse_name("fp16_int4_groupwise_t128x256x64_c1x1_coop_persistent")
    m, n, k = 512, 16384, 2048          # c: 4 waves of 128x128 tiles, s: 2 waves of twice the work
    terms = {c.tile_key: [0.005, 0.0, 0.0], s.tile_key: [0.0105, 0.0, 0.0]}
    rule = {"tokens": "cost", "cost_terms": terms, "residual_neighbours": 2, "residual_scale": 0.3,
            "residual_fade": 1.0, "residual_points": [[512, 16384, 2048], [1024, 16384, 2048], [96, 896, 896]],
            "cost_residuals": {c.tile_key: [0.0, 0.0, None], s.tile_key: [math.log(0.9), None, 0.5]}}
    plain = {"tokens": "cost", "cost_terms": terms}
    assert c.rank_key(m, n, 132, plain, k=k) < s.rank_key(m, n, 132, plain, k=k)      # fitted: c 5% faster
    assert s.rank_key(m, n, 132, rule, k=k) < c.rank_key(m, n, 132, rule, k=k)        # measured: s 10% faster
    far = math.exp(-(math.log(512 / 96) + math.log(16384 / 896) + math.log(2048 / 896)) / 0.3)
    fade = math.exp(-1.0 / 0.3)
    assert s.rank_key(m, n, 132, rule, k=k)[1] == pytest.approx(
        math.log(0.0105 * k * 2) + (math.log(0.9) + 0.5 * far) / (1 + far + fade))
    assert c.rank_key(m, n, 132, rule)[1] == c.rank_key(m, n, 132, plain)[1]          # K unknown: as before
    # Without the settings, a table takes cost_residuals.SETTINGS (a refit of an older table).
    bare = {key: v for key, v in rule.items() if key not in cost_residuals.SETTINGS}
    assert s.rank_key(m, n, 132, bare, k=k)[1] == pytest.approx(
        math.log(0.0105 * k * 2) + (math.log(0.9) + 0.5 * far) / (1 + far + fade))
    # The nearest `count` points only, weighted by distance, pulled toward 0 by the fade weight.
    pts = [[100, 1000, 1000], [200, 1000, 1000], [10 ** 6, 1000, 1000]]
    got = cost_residuals.correction(pts, [1.0, 2.0, 100.0], 100, 1000, 1000, 2, 1.0, 1.0)
    assert got == pytest.approx((1.0 + 2.0 * 0.5) / (1 + 0.5 + math.exp(-1.0)))
    # At the fade distance the correction is halved; three times as far, nearly gone.
    one = [[100, 1000, 1000]]
    assert cost_residuals.correction(one, [0.4], 100, 1000, round(1000 * math.e), 8, 0.3, 1.0) == pytest.approx(
        0.2, rel=1e-3)
    assert abs(cost_residuals.correction(one, [0.4], 100, round(1000 * math.e), round(1000 * math.e ** 2), 8, 0.3,
                                         1.0)) < 0.4 * 0.01
    with pytest.raises(ValueError, match="2 residuals for 1 residual_points"):
        cost_residuals.correction(one, [0.4, 0.1], 100, 1000, 1000, 8, 0.3, 1.0)


def test_the_correction_equals_its_definition_at_any_call():
    """cost_residuals.correction orders the points by distance once per call shape and reuses that
    order for every tile (a ranking corrects each tile at one (M, N, K)); it must equal the
    definition: the weighted mean at the `count` nearest points with a residual, the points of equal
    distance ordered by their residual, pulled toward 0 by the fade weight."""
    import json
    import math
    import random

    from generator import cost_residuals

    def reference(points, residuals, m, n, k, count, scale, fade):
        lm, ln, lk = math.log(m), math.log(n), math.log(k)
        near = sorted((abs(math.log(pm) - lm) + abs(math.log(pn) - ln) + abs(math.log(pk) - lk), r)
                      for (pm, pn, pk), r in zip(points, residuals) if r is not None)[:count]
        w = [math.exp(-d / scale) for d, _ in near]
        return sum(a * r for a, (_, r) in zip(w, near)) / (sum(w) + math.exp(-fade / scale)) if count else 0.0

    rule = next(r for r in json.loads(open("python/w4a16_build/heuristics.json").read())["rules"]
                if r.get("tokens") == "cost")
    points, table = rule["residual_points"], rule["cost_residuals"]
    rng = random.Random(7)
    for _ in range(40):
        m, n, k = rng.choice([96, 200, 333, 4096]), rng.choice([896, 5000, 28672]), rng.choice([512, 4096, 20000])
        for res in table.values():           # every tile at one call shape, as a ranking does
            assert cost_residuals.correction(points, res, m, n, k, 8, 0.3, 1.0) == \
                reference(points, res, m, n, k, 8, 0.3, 1.0)
    # Exact ties at the count boundary (the same point twice): the smaller residuals first.
    pts = [[100, 1000, 1000], [200, 1000, 1000], [200, 1000, 1000], [200, 1000, 1000], [50, 2000, 1000]]
    for res in ([0.0, 0.3, 0.1, 0.2, 0.4], [0.9, None, 0.3, 0.2, 0.1], [None, 0.5, -0.3, 0.2, 0.1],
                [None] * 5):
        for count in (0, 1, 2, 3, 8):
            assert cost_residuals.correction(pts, res, 100, 1000, 1000, count, 0.3, 1.0) == \
                reference(pts, res, 100, 1000, 1000, count, 0.3, 1.0)
    # Two tables' points at one call shape, alternately (a refitted table in a check): each its own.
    other = [[100, 8000, 1000], [100, 1000, 1000]]      # its nearest is its second point
    for _ in range(2):
        assert cost_residuals.correction(other, [0.5, -0.5], 100, 1000, 1000, 1, 0.3, 1.0) == \
            reference(other, [0.5, -0.5], 100, 1000, 1000, 1, 0.3, 1.0)
        assert cost_residuals.correction(pts, [None, 0.3, 0.1, 0.2, 0.4], 100, 1000, 1000, 1, 0.3, 1.0) == \
            reference(pts, [None, 0.3, 0.1, 0.2, 0.4], 100, 1000, 1000, 1, 0.3, 1.0)

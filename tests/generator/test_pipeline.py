import pytest

from generator.manifest import load, parse
from generator.model import KernelConfig
from generator.paths import resolve_manifest
from generator.pipeline import enumerate_configs, filter_configs, plan, shard, validate
from generator.render import render

SMALL = """
name: small
kernels_per_file: {kpf}
sets:
  - dtype: [fp16, bf16]
    mode: [groupwise]
    tile_rows: [64, 128]
    tile_tokens: [16]
    tile_k: [64]
    cluster: [1x1]
    schedule: [coop, pingpong]
    scheduler: [persistent]
gemv: false
"""


def small(kpf=1):
    return parse(SMALL.format(kpf=kpf), "small.yaml")


def test_enumerate_is_sorted_and_deduplicated():
    text = SMALL.format(kpf=1) + "kernels: [fp16_int4_groupwise_t128x16x64_c1x1_coop_persistent]\n"
    configs = enumerate_configs(parse(text, "s.yaml"))
    names = [c.name for c in configs]
    assert names == sorted(names) and len(names) == len(set(names)) == 8


def test_validate_drops_with_rule_name():
    valid, rejected = validate(enumerate_configs(small()))
    assert len(valid) == 6  # 64-row cooperative is invalid for both dtypes
    assert {r.rule for r in rejected} == {"coop_needs_128_rows"}
    assert all("_t64x" in r.config.name and "_coop_" in r.config.name for r in rejected)


def test_filters_include_exclude():
    valid, _ = validate(enumerate_configs(small()))
    kept, dropped = filter_configs(valid, ["fp16_*"], ["*_pingpong_*"])
    assert [c.name for c in kept] == ["fp16_int4_groupwise_t128x16x64_c1x1_coop_persistent"]
    assert len(dropped) == 5


def test_extra_include_narrows_manifest():
    p = plan(small(), ["*_t128x*_coop_*"])
    assert p.names == ["bf16_int4_groupwise_t128x16x64_c1x1_coop_persistent",
                       "fp16_int4_groupwise_t128x16x64_c1x1_coop_persistent"]
    assert len(p.filtered_out) == 4


def test_manifest_include_exclude():
    text = SMALL.format(kpf=1) + "include: ['bf16_*']\nexclude: ['*_t64x*']\n"
    assert plan(parse(text, "s.yaml")).names == [
        "bf16_int4_groupwise_t128x16x64_c1x1_coop_persistent",
        "bf16_int4_groupwise_t128x16x64_c1x1_pingpong_persistent"]


@pytest.mark.parametrize("kpf", [1, 2, 4])
def test_shards_are_bounded_and_cover_everything(kpf):
    p = plan(small(kpf))
    assert sum(len(s.kernels) for s in p.shards) == len(p.kernels)
    assert all(1 <= len(s.kernels) <= kpf for s in p.shards)
    assert [k.name for s in p.shards for k in s.kernels] == p.names


def test_adding_a_kernel_touches_few_shards():
    m = load(resolve_manifest("full"))
    names = [n for n in plan(m).names if n.startswith("fp16_int4_groupwise_t") and "_tiled_" not in n]
    cfgs = [KernelConfig.from_name(n) for n in names]
    base = cfgs[::2]
    before = {(s.filename, s.kernels) for s in shard(base, 4)}
    changed = []
    for extra in cfgs[1::2]:
        after = {(s.filename, s.kernels) for s in shard(base + [extra], 4)}
        changed.append(len({f for f, _ in before ^ after}))  # files rewritten, added or removed
    # Index-based groups would rewrite every file after the insertion point (~15 on average over
    # the 5-value token axis; more now). Measured over the 8-value axis: mean 2.3, max 8.
    assert sum(changed) / len(changed) < 3 and max(changed) <= 8
    sizes = [len(s.kernels) for s in shard(cfgs, 4)]
    assert sum(sizes) / len(sizes) > 2.5  # content-defined boundaries still fill the files


def test_one_kernel_per_file_is_named_after_the_kernel():
    cfg = KernelConfig.from_name("fp16_int4_groupwise_t128x16x64_c1x1_coop_persistent")
    assert shard([cfg], 1)[0].filename == cfg.name + ".cu"


def read_tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_render_is_deterministic(tmp_path):
    m = load(resolve_manifest("default"))
    render(plan(m), tmp_path / "a")
    render(plan(m), tmp_path / "b")
    a, b = read_tree(tmp_path / "a"), read_tree(tmp_path / "b")
    assert a == b
    assert len([f for f in a if f.startswith("kernels/")]) == len(plan(m).shards) < len(plan(m).kernels)


def test_render_contents(tmp_path):
    p = plan(small())
    render(p, tmp_path)
    sources = (tmp_path / "sources.txt").read_text().split()
    assert "registry.cpp" in sources and len(sources) == len(p.shards) + 1
    reg = (tmp_path / "registry.cpp").read_text()
    assert p.manifest.sha256 in reg and "Do not edit" in reg
    for k in p.kernels:
        assert f'"{k.name}"' in reg
    one = (tmp_path / "kernels" / f"{p.names[0]}.cu").read_text()
    assert "Do not edit" in one and "cutlass::bfloat16_t" in one
    assert "cute::Shape<cute::_128, cute::_16, cute::_64>" in one


def test_render_writes_only_changes_and_removes_leftovers(tmp_path):
    p = plan(small())
    first = render(p, tmp_path)
    assert first.written and not first.unchanged
    mtimes = {f: (tmp_path / f).stat().st_mtime_ns for f in first.written}
    again = render(p, tmp_path)
    assert not again.written and not again.removed
    assert all((tmp_path / f).stat().st_mtime_ns == t for f, t in mtimes.items())
    fewer = plan(small(), ["fp16_*"])
    third = render(fewer, tmp_path)
    assert len(third.removed) == 3 and all(r.startswith("kernels/bf16_") for r in third.removed)
    assert sorted(f.name for f in (tmp_path / "kernels").iterdir()) == [n + ".cu" for n in fewer.names]
    # The kernel files that stayed were not rewritten; only the registry and lists were.
    assert set(third.written) == {"registry.cpp", "sources.txt", "sources.cmake", "manifest.json"}


def test_strict_undefined(tmp_path, monkeypatch):
    import jinja2

    from generator import render as render_mod

    env = render_mod._env()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing_variable }}").render()


def test_gemv_shards_use_the_gemv_template(tmp_path):
    text = SMALL.format(kpf=2).replace("gemv: false", "gemv: {dtype: [fp16], mode: [groupwise], rows_per_warp: [16], stages: [8]}")
    p = plan(parse(text, "s.yaml"))
    fams = [{k.family for k in s.kernels} for s in p.shards]
    assert all(len(f) == 1 for f in fams), "a shard mixes families"
    render(p, tmp_path)
    gemv_files = [s.filename for s in p.shards if s.kernels[0].family == "gemv"]
    assert len(gemv_files) == 1 and gemv_files[0].endswith("__shard.cu")
    text = (tmp_path / "kernels" / gemv_files[0]).read_text()
    assert "w4a16::gemv::Gemv<__half, w4a16::QuantMode::kGroupwise, 1, 1, 8>" in text
    assert "w4a16::gemv::Gemv<__half, w4a16::QuantMode::kGroupwise, 2, 1, 8>" in text


def _skinny_files(tmp_path, axes):
    """Plan and render SMALL with one fp16 groupwise skinny set of `axes` (one kernel per file):
    the plan and each skinny kernel's rendered lines by name."""
    text = SMALL.format(kpf=1).replace(
        "gemv: false", "gemv: false\nskinny: {dtype: [fp16], mode: [groupwise], " + axes + "}")
    p = plan(parse(text, "s.yaml"))
    render(p, tmp_path)
    files = {s.kernels[0].name: (tmp_path / "kernels" / s.filename).read_text().splitlines()
             for s in p.shards if s.kernels[0].family == "skinny"}
    assert sorted(files) == sorted(k.name for k in p.kernels if k.family == "skinny")
    return p, files


def test_skinny_k_warps_pick_the_warp_split_launcher(tmp_path):
    """Issue 15: k_warps > 1 is the warp-split form (gemv/skinny_wsplit_*.cuh); k_warps 1 stays the
    cluster form, and a file of cluster-form kernels does not include the warp-split header."""
    p, files = _skinny_files(tmp_path, "max_m: [16], rows_per_warp: [16, 32], stages: [2], k_warps: [1, 8]")
    # rows_per_warp 32 with k_warps 8 breaks skinny_wsplit_rows: three kernels, not four.
    assert sorted(files) == ["fp16_int4_groupwise_skinny_m16_r16_s2", "fp16_int4_groupwise_skinny_m16_r16_s2_kw8",
                             "fp16_int4_groupwise_skinny_m16_r32_s2"]   # one kernel per file
    assert any(r.config.name.endswith("_r32_s2_kw8") and "skinny_wsplit_rows" in r.rule for r in p.rejected)
    wsplit = files["fp16_int4_groupwise_skinny_m16_r16_s2_kw8"]
    assert wsplit.count('#include "gemv/skinny_wsplit_launch.cuh"') == 1
    assert "using Impl = w4a16::skinny::SkinnyWsplit<__half, w4a16::QuantMode::kGroupwise, 2, 8, 2>;" in wsplit
    for name, rb in (("fp16_int4_groupwise_skinny_m16_r16_s2", 1), ("fp16_int4_groupwise_skinny_m16_r32_s2", 2)):
        lines = files[name]
        assert not any("skinny_wsplit" in x or "SkinnyWsplit" in x for x in lines), name
        assert f"using Impl = w4a16::skinny::Skinny<__half, w4a16::QuantMode::kGroupwise, 2, {rb}, 2>;" in lines


def test_skinny_wgmma_passes_the_warpgroup_flag(tmp_path):
    """Issue 15: mma wgmma instantiates the same launcher with its warpgroup flag (the sixth
    template argument); mma sync keeps the five arguments it had; an impossible pairing (32 rows per
    warp) is rejected by skinny_wgmma_form, not rendered."""
    p, files = _skinny_files(tmp_path, "max_m: [64], rows_per_warp: [16, 32], stages: [4], mma: [sync, wgmma]")
    assert sorted(files) == ["fp16_int4_groupwise_skinny_m64_r16_s4", "fp16_int4_groupwise_skinny_m64_r16_s4_wg",
                             "fp16_int4_groupwise_skinny_m64_r32_s4"]
    assert any(r.config.name.endswith("_r32_s4_wg") and "skinny_wgmma_form" in r.rule for r in p.rejected)
    assert "using Impl = w4a16::skinny::Skinny<__half, w4a16::QuantMode::kGroupwise, 8, 1, 4, true>;" in \
        files["fp16_int4_groupwise_skinny_m64_r16_s4_wg"]
    assert "using Impl = w4a16::skinny::Skinny<__half, w4a16::QuantMode::kGroupwise, 8, 1, 4>;" in \
        files["fp16_int4_groupwise_skinny_m64_r16_s4"]


def test_skinny_ws_instantiates_its_own_launcher(tmp_path):
    """Issue 15: mma ws instantiates SkinnyWs<T, mode, token tiles, stages> from its own header;
    files without a ws kernel do not include it; rows_per_warp 32 is rejected by skinny_ws_form."""
    p, files = _skinny_files(tmp_path, "max_m: [16, 64], rows_per_warp: [16, 32], stages: [8], mma: [sync, ws]")
    assert sorted(files) == ["fp16_int4_groupwise_skinny_m16_r16_s8", "fp16_int4_groupwise_skinny_m16_r16_s8_ws",
                             "fp16_int4_groupwise_skinny_m16_r32_s8", "fp16_int4_groupwise_skinny_m64_r16_s8",
                             "fp16_int4_groupwise_skinny_m64_r16_s8_ws", "fp16_int4_groupwise_skinny_m64_r32_s8"]
    assert any(r.config.name.endswith("_m16_r32_s8_ws") and "skinny_ws_form" in r.rule for r in p.rejected)
    ws = files["fp16_int4_groupwise_skinny_m64_r16_s8_ws"]
    assert ws.count('#include "gemv/skinny_ws_launch.cuh"') == 1
    assert "using Impl = w4a16::skinny::SkinnyWs<__half, w4a16::QuantMode::kGroupwise, 8, 8>;" in ws
    assert not any("skinny_ws" in x for x in files["fp16_int4_groupwise_skinny_m64_r16_s8"])


def test_skinny_ws_only_token_tiles(tmp_path):
    """Token tiles of 8 (twenty-fifth session) and of 40, 48, 56 (twenty-fourth) instantiate SkinnyWs
    with 1 and 5-7 mma N tiles; the other forms do not take them (skinny_ws_tiles)."""
    p, files = _skinny_files(tmp_path, "max_m: [8, 40, 48, 56], rows_per_warp: [16], stages: [8], mma: [sync, ws]")
    assert sorted(files) == [f"fp16_int4_groupwise_skinny_m{m}_r16_s8_ws" for m in (40, 48, 56, 8)]
    for m in (8, 40, 48, 56):
        assert (f"using Impl = w4a16::skinny::SkinnyWs<__half, w4a16::QuantMode::kGroupwise, {m // 8}, 8>;"
                in files[f"fp16_int4_groupwise_skinny_m{m}_r16_s8_ws"])
        assert any(r.config.name == f"fp16_int4_groupwise_skinny_m{m}_r16_s8" and "skinny_ws_tiles" in r.rule
                   for r in p.rejected)

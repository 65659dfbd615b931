import re

import pytest

from generator.manifest import ManifestError, load, parse, parse_kernel_filter
from generator.model import AXES
from generator.paths import manifest_names, resolve_manifest
from generator.pipeline import plan

GOOD_SET = """
  - dtype: [fp16]
    mode: [groupwise]
    tile_rows: [128]
    tile_tokens: [16, 32]
    tile_k: [64]
    cluster: [1x1]
    schedule: [coop]
    scheduler: [persistent, streamk]
"""


def builtin(name):
    return load(resolve_manifest(name))


def test_builtin_manifests_exist():
    assert {"full", "default", "minimal"} <= set(manifest_names())


def test_full_names_every_axis_value():
    m = builtin("full")
    assert len(m.sets_of("cutlass")) == 1
    for axis, values in AXES.items():
        assert list(m.sets_of("cutlass")[0][axis]) == values, axis


def cutlass_only(kernels):
    return [k for k in kernels if k.family == "cutlass"]


def test_full_counts():
    p = plan(builtin("full"))
    assert len(p.kernels) + len(p.rejected) == 2 * 3 * 3 * 10 * 2 * 4 * 2 * 2 + 72 + 288 * 4 * 3 + 2 * 3 * 4 * 3 * 3 + 2 * 3 * 3 * 2 * 3 + 2 * 3
    assert len([k for k in p.kernels if k.family == "tiled"]) == 108     # every tiled kernel fits 163 KB
    assert len([k for k in p.kernels if k.family == "dequant"]) == 6   # one per dtype and mode
    assert len(cutlass_only(p.kernels)) == 2496
    assert len([k for k in p.kernels if k.family == "gemv"]) == 72
    # skinny: 144 of the cluster form, 216 warp-split (k_warps 2, 4, 8 with rows_per_warp 16 only),
    # 72 warpgroup (mma wgmma: k_warps 1 and rows_per_warp 16 only), 144 warp-specialized (mma ws:
    # k_warps 1, rows_per_warp 16, every max_m; the 8 and 40-56 tiles are the ws form's only)
    assert len([k for k in p.kernels if k.family == "skinny"]) == 144 + 216 + 72 + 144
    per = {}
    for k in cutlass_only(p.kernels):
        per[(k.dtype, k.mode)] = per.get((k.dtype, k.mode), 0) + 1
    assert len(per) == 6 and set(per.values()) == {416}
    # Every axis value survives validation somewhere.
    kept = {axis: set() for axis in AXES}
    for k in cutlass_only(p.kernels):
        d = k.to_dict()
        kept["dtype"].add(d["dtype"]); kept["mode"].add(d["mode"])
        kept["tile_rows"].add(str(d["tile_rows"])); kept["tile_tokens"].add(str(d["tile_tokens"]))
        kept["tile_k"].add(str(d["tile_k"])); kept["cluster"].add(d["cluster"])
        kept["schedule"].add(d["schedule"]); kept["scheduler"].add(d["scheduler"])
    for axis, values in AXES.items():
        assert kept[axis] == set(values), axis


def test_default_is_a_covering_subset():
    p = plan(builtin("default"))
    assert 0 < len(cutlass_only(p.kernels)) <= 96
    assert not p.rejected, "default names invalid configurations"
    assert {(k.dtype.short, k.mode.short) for k in cutlass_only(p.kernels)} == {
        (d, m) for d in AXES["dtype"] for m in AXES["mode"]}
    assert {k.tile.k for k in cutlass_only(p.kernels)} >= {64}  # group size 64 has kernels
    full = set(plan(builtin("full")).names)
    assert set(p.names) <= full


def test_default_is_derived_from_the_committed_sweep(repo_root, tmp_path):
    """manifests/default.yaml and the heuristic table's measured rows are exactly what
    `derive` makes of benchmarks/results/sweep_h100 (issue 6)."""
    import json
    import subprocess
    import sys

    results = sorted(str(p) for p in (repo_root / "benchmarks/results/sweep_h100").glob("*16_*.json"))
    assert len(results) == 6
    r = subprocess.run([sys.executable, "-m", "generator.derive", *results, "--tolerance", "0.03",
                        "--name", "default", "--write-manifest", str(tmp_path / "d.yaml"),
                        "--heuristics", "python/w4a16_build/heuristics.json",
                        "--write-heuristics", str(tmp_path / "h.json")],
                       cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    derived = plan(load(tmp_path / "d.yaml")).names
    # The skinny kernels (issue 15), the skinny80 and tiled ones (issue 18, SM80) and the dense path
    # (`dequant`) came after the sweep: default.yaml adds them by hand (its comments say why);
    # everything else is the derived set.
    shipped_default = plan(builtin("default"))
    assert derived == [k.name for k in shipped_default.kernels
                       if k.family not in ("skinny", "skinny80", "tiled", "dequant")]
    shipped = json.loads((repo_root / "python/w4a16_build/heuristics.json").read_text())
    derived_table = json.loads((tmp_path / "h.json").read_text())
    assert derived_table["measured"] == shipped["measured"]
    assert derived_table["measured_card"] == shipped["measured_card"] == "H100"


def test_minimal_is_small_and_valid():
    p = plan(builtin("minimal"))
    assert 1 <= len(cutlass_only(p.kernels)) <= 4
    assert {k.dtype.short for k in p.kernels} == set(AXES["dtype"])
    assert {k.mode.short for k in p.kernels} == set(AXES["mode"])


def test_manifest_hash_is_of_the_text():
    a = parse("name: a\nsets:" + GOOD_SET)
    b = parse("name: a\nsets:" + GOOD_SET + "\n")
    assert a.sha256 != b.sha256 and len(a.sha256) == 64


@pytest.mark.parametrize("text, where", [
    ("name: x\nsetz: []\n", "setz"),
    ("[1, 2]\n", "top level"),
    ("name: x\nsets: [\n", "YAML"),
    ("sets:" + GOOD_SET, "name"),
    ("name: x\ngemv: false\n", "sets"),
    ("name: x\nkernels_per_file: 0\nsets:" + GOOD_SET, "kernels_per_file"),
    ("name: x\nsets:" + GOOD_SET.replace("dtype: [fp16]", "dtype: [fp32]"), "sets[0].dtype"),
    ("name: x\nsets:" + GOOD_SET.replace("tile_rows: [128]", "tile_rows: [100]"), "sets[0].tile_rows"),
    ("name: x\nsets:" + GOOD_SET.replace("cluster: [1x1]", "cluster: [1x1, 1x1]"), "sets[0].cluster"),
    ("name: x\nsets:" + GOOD_SET.replace("    scheduler: [persistent, streamk]\n", ""), "sets[0].scheduler"),
    ("name: x\nsets:" + GOOD_SET + "    warps: [4]\n", "sets[0].warps"),
    ("name: x\nkernels: [nonsense]\n", "kernels[0]"),
    ("name: x\nkernels: [fp16_int4_groupwise_t64x32x64_c1x1_coop_persistent]\n", "coop_needs_128_rows"),
    ("name: x\ninclude: ['a b']\nsets:" + GOOD_SET, "include"),
])
def test_schema_errors_name_the_key(text, where):
    with pytest.raises(ManifestError) as e:
        parse(text, "m.yaml")
    assert "m.yaml" in str(e.value) and where in str(e.value)


def test_unknown_value_lists_allowed_values():
    with pytest.raises(ManifestError) as e:
        parse("name: x\nsets:" + GOOD_SET.replace("schedule: [coop]", "schedule: [basic]"), "m.yaml")
    assert "coop" in str(e.value) and "pingpong" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        load(tmp_path / "nope.yaml")


def test_unknown_builtin_name():
    with pytest.raises(ManifestError, match="no such manifest"):
        resolve_manifest("nonexistent")


def test_kernel_filter_parsing():
    assert parse_kernel_filter("") == ()
    assert parse_kernel_filter(" *_coop_*, fp16_* ") == ("*_coop_*", "fp16_*")
    with pytest.raises(ManifestError, match="W4A16_KERNELS"):
        parse_kernel_filter("a;rm -rf")


def test_gemv_section():
    base = "name: x\nsets:" + GOOD_SET
    assert len(plan(parse(base, "m.yaml")).kernels) == 4 + 72   # omitted: every GEMV kernel
    assert len(plan(parse(base + "gemv: false\n", "m.yaml")).kernels) == 4
    p = plan(parse(base + "gemv: {dtype: [bf16], max_m: [8], rows_per_warp: [16], stages: [8]}\n", "m.yaml"))
    assert sorted(k.name for k in p.kernels if k.family == "gemv") == [
        "bf16_int4_groupwise_gemv_m8_r16_s8", "bf16_int4_groupwise_zero_gemv_m8_r16_s8",
        "bf16_int4_per_column_gemv_m8_r16_s8"]
    for bad, where in [("gemv: {max_m: [12]}", "gemv.max_m"), ("gemv: {warps: [4]}", "gemv.warps"),
                       ("gemv: [1]", "gemv")]:
        with pytest.raises(ManifestError, match=re.escape(where)):
            parse(base + bad + "\n", "m.yaml")


def test_a_skinny_set_without_k_warps_keeps_its_kernels():
    """Review of issue 15: an omitted axis means all of its values, so a skinny set written before
    the k_warps axis existed (the old minimal.yaml's) grew from 12 kernels to 48, warp-split
    variants no rule was measured for among them. k_warps defaults to 1 (the cluster form, the
    names such sets always meant); `skinny: true` still means every value."""
    base = "name: x\nsets:" + GOOD_SET + "gemv: false\n"
    old = base + ("skinny:\n  dtype: [fp16, bf16]\n  mode: [per_column, groupwise, groupwise_zero]\n"
                  "  max_m: [16, 64]\n  rows_per_warp: [16]\n  stages: [4]\n")
    names = [k.name for k in plan(parse(old, "m.yaml")).kernels if k.family == "skinny"]
    assert len(names) == 12 and not any("_kw" in n for n in names)
    every = [k for k in plan(parse(base + "skinny: true\n", "m.yaml")).kernels if k.family == "skinny"]
    assert len(every) == 576

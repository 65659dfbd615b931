"""The CLI, run as a user runs it: a subprocess."""

import json
import subprocess
import sys
import time

import pytest


def run(repo_root, *args, module="generator", env=None):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=repo_root,
                          capture_output=True, text=True, env=env, timeout=120)


def test_list_default(repo_root):
    r = run(repo_root, "--list", "--manifest", "default")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "203 kernels (manifest default)"
    assert len(lines) == 204 and all("_int4_" in x for x in lines[:-1])


def test_list_is_fast(repo_root):
    t = time.perf_counter()
    r = run(repo_root, "--list", "--manifest", "full")
    assert r.returncode == 0
    assert time.perf_counter() - t < 2.0


def test_list_json_full(repo_root):
    r = run(repo_root, "--list", "--manifest", "full", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["manifest"] == "full" and doc["count"] == len(doc["kernels"]) == 2496 + 72 + 576 + 216 + 108 + 6  # CUTLASS + GEMV + skinny + skinny80 + tiled + dequant
    assert len(doc["manifest_sha256"]) == 64
    k = next(k for k in doc["kernels"] if k["family"] == "cutlass")
    assert set(k) >= {"name", "family", "max_m", "dtype", "mode", "tile_rows", "tile_tokens", "tile_k",
                      "cluster", "schedule", "scheduler"}


def test_kernels_filter_and_env(repo_root):
    import os

    r = run(repo_root, "--list", "--manifest", "default", "--kernels", "fp16_*_coop_*")
    assert r.returncode == 0
    names = r.stdout.strip().splitlines()[:-1]
    assert names and all(n.startswith("fp16_") and "_coop_" in n for n in names)
    env = dict(os.environ, W4A16_KERNELS="fp16_*_t*x*", W4A16_MANIFEST="minimal")
    lines = run(repo_root, "--list", env=env).stdout.strip().splitlines()
    assert lines == ["fp16_int4_groupwise_t128x16x64_c1x1_coop_streamk",
                     "fp16_int4_per_column_t64x16x128_c1x1_pingpong_persistent",
                     "2 kernels (manifest minimal, 65 filtered out)"]
    env["W4A16_KERNELS"] = "bf16_int4_per_column_t*"
    lines = run(repo_root, "--list", env=env).stdout.strip().splitlines()
    assert lines == ["0 kernels (manifest minimal, 67 filtered out)"]


def test_out_writes_sources(repo_root, tmp_path):
    r = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    sources = (tmp_path / "sources.txt").read_text().split()
    assert len(sources) == 4 + 12 + 43 + 1 + 1 + 6 + 1  # CUTLASS, GEMV, skinny, skinny80, tiled, dequant kernels (one per file), registry
    assert all((tmp_path / s).is_file() for s in sources)
    r2 = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path))
    assert "0 written" in r2.stdout


def test_rejected_lists_rules(repo_root):
    r = run(repo_root, "--rejected", "--manifest", "full")
    assert r.returncode == 0
    assert "streamk_needs_coop" in r.stdout and "6144 configurations rejected" in r.stdout


@pytest.mark.parametrize("manifest_text, message", [
    (None, "not found"),
    ("name: x\nsets: [\n", "not valid YAML"),
    ("name: x\nsets:\n  - {dtype: [fp8]}\n", "sets[0].dtype"),
])
def test_bad_manifests(repo_root, tmp_path, manifest_text, message):
    path = tmp_path / "m.yaml"
    if manifest_text is not None:
        path.write_text(manifest_text)
    r = run(repo_root, "--list", "--manifest", str(path))
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_unknown_axis_value_names_allowed_values(repo_root, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: x\nsets:\n  - dtype: [fp16]\n    mode: [groupwise]\n    tile_rows: [128]\n"
                    "    tile_tokens: [16]\n    tile_k: [64]\n    cluster: [3x3]\n"
                    "    schedule: [coop]\n    scheduler: [persistent]\n")
    r = run(repo_root, "--list", "--manifest", str(path))
    assert r.returncode == 2
    assert "sets[0].cluster" in r.stderr and "2x2" in r.stderr


def test_unknown_builtin_manifest(repo_root):
    r = run(repo_root, "--list", "--manifest", "nope")
    assert r.returncode == 2 and "no such manifest" in r.stderr and "default" in r.stderr


def test_nothing_to_do_is_a_usage_error(repo_root):
    r = run(repo_root)
    assert r.returncode == 2 and "nothing to do" in r.stderr


def test_estimate(repo_root):
    import json as _json

    r = run(repo_root, "--estimate", "--manifest", "default", "--json")
    assert r.returncode == 0, r.stderr
    e = _json.loads(r.stdout)
    assert e["kernels"] == {"cutlass": 69, "gemv": 20, "skinny": 84, "skinny80": 12, "tiled": 12, "dequant": 6}
    assert e["files"] < 101 and e["gb_per_job"] > 4.5  # four kernels per file: fewer, larger compiles
    assert e["jobs"] >= 1 and e["wall_seconds"] > 0 and e["peak_gb_per_job"] > 4
    r = run(repo_root, "--estimate", "--manifest", "minimal")
    assert "build time" in r.stdout and "wheel" in r.stdout


def bench_doc(rows, dtype="fp16", mode="groupwise"):
    return {"dtype": dtype, "mode": mode, "group": 128, "card": "H100", "rows": rows}


def row(k, n, m, tactic, us):
    return {"k": k, "n": n, "m": m, "tactic": tactic, "us": us}


A = "fp16_int4_groupwise_t128x16x64_c1x1_coop_streamk"
B = "fp16_int4_groupwise_t128x256x64_c2x1_coop_persistent"
C = "fp16_int4_groupwise_gemv_m8_r16_s4"


def test_derive_greedy_cover(repo_root, tmp_path):
    import json as _json

    from generator.manifest import parse

    res = tmp_path / "r.json"
    res.write_text(_json.dumps(bench_doc([
        row(4096, 4096, 1, C, 10.0), row(4096, 4096, 1, A, 20.0),
        row(4096, 4096, 64, A, 30.0), row(4096, 4096, 64, B, 30.5),   # A and B both within 3%
        row(4096, 4096, 4096, B, 500.0), row(4096, 4096, 4096, A, 900.0),
    ])))
    out, heur = tmp_path / "m.yaml", tmp_path / "h.json"
    shipped = repo_root / "python" / "w4a16_build" / "heuristics.json"
    r = run(repo_root, str(res), "--tolerance", "0.03", "--write-manifest", str(out),
            "--heuristics", str(shipped), "--write-heuristics", str(heur), module="generator.derive")
    assert r.returncode == 0, r.stderr
    m = parse(out.read_text(), str(out))
    assert sorted(m.kernels) == sorted([B, C])           # B covers M=64 and M=4096; C covers M=1
    assert m.sets_of("gemv") == ()
    table = _json.loads(heur.read_text())
    assert {(x["m"], x["tactic"]) for x in table["measured"]} == {(1, C), (64, B), (4096, B)}
    assert table["rules"], "the rules are kept"


def test_derive_names_the_card_of_its_measured_rows(repo_root, tmp_path):
    """The measured rows are one card's timings (the cost rule takes them only on that card:
    measured_same_card); derive writes that card as measured_card and refuses results of several."""
    import json as _json

    shipped = repo_root / "python" / "w4a16_build" / "heuristics.json"
    h100, h200 = tmp_path / "a.json", tmp_path / "b.json"
    h100.write_text(_json.dumps(bench_doc([row(4096, 4096, 1, C, 10.0)])))
    h200.write_text(_json.dumps(dict(bench_doc([row(4096, 4096, 64, A, 30.0)]), card="H200")))
    heur = tmp_path / "h.json"
    r = run(repo_root, str(h100), "--write-manifest", str(tmp_path / "m.yaml"), "--heuristics", str(shipped),
            "--write-heuristics", str(heur), module="generator.derive")
    assert r.returncode == 0, r.stderr
    assert _json.loads(heur.read_text())["measured_card"] == "H100"
    r = run(repo_root, str(h100), str(h200), "--write-manifest", str(tmp_path / "m.yaml"), "--heuristics",
            str(shipped), "--write-heuristics", str(heur), module="generator.derive")
    assert r.returncode == 2 and "H100" in r.stderr and "H200" in r.stderr
    r = run(repo_root, str(h100), str(h200), "--write-manifest", str(tmp_path / "m.yaml"), module="generator.derive")
    assert r.returncode == 0, r.stderr                  # a manifest alone may come from several cards
    nameless = tmp_path / "c.json"
    nameless.write_text(_json.dumps({k: v for k, v in bench_doc([row(4096, 4096, 1, C, 10.0)]).items() if k != "card"}))
    r = run(repo_root, str(nameless), "--write-manifest", str(tmp_path / "m.yaml"), "--heuristics", str(shipped),
            "--write-heuristics", str(heur), module="generator.derive")
    assert r.returncode == 2 and "names no card" in r.stderr


def test_derive_rejects_bad_input(repo_root, tmp_path):
    import json as _json

    bad = tmp_path / "bad.json"
    bad.write_text(_json.dumps({"rows": []}))
    r = run(repo_root, str(bad), module="generator.derive")
    assert r.returncode == 2 and "not a benchmark result" in r.stderr
    auto = tmp_path / "auto.json"
    auto.write_text(_json.dumps(bench_doc([row(4096, 4096, 1, "auto", 1.0)])))
    r = run(repo_root, str(auto), module="generator.derive")
    assert r.returncode == 2 and "--tactic all" in r.stderr


def test_derive_puts_runs_on_one_scale(tmp_path):
    """Two chunks of a sweep ran at different card speeds: their cuBLAS times say by how much."""
    import json as _json

    from generator.derive import load_points

    fast, slow = tmp_path / "a.json", tmp_path / "b.json"
    r1 = dict(row(4096, 4096, 64, A, 30.0), cublas_us=100.0)
    r2 = dict(row(4096, 4096, 64, B, 33.0), cublas_us=110.0)  # same speed as A once scaled by 100/110
    fast.write_text(_json.dumps(bench_doc([r1])))
    slow.write_text(_json.dumps(bench_doc([r2])))
    pts = load_points([str(fast), str(slow)])
    (times,) = pts.values()
    assert times[A] == 30.0 and abs(times[B] - 30.0) < 1e-9


def test_derive_adds_a_k64_tile_for_group_64(tmp_path):
    import json as _json

    from generator.derive import add_fallbacks, cover, load_points

    K128 = "fp16_int4_groupwise_t128x16x128_c1x1_coop_streamk"
    res = tmp_path / "r.json"
    res.write_text(_json.dumps(bench_doc([
        row(4096, 4096, 64, K128, 10.0), row(4096, 4096, 64, A, 12.0), row(4096, 4096, 64, B, 20.0),
        row(4096, 4096, 4096, K128, 100.0), row(4096, 4096, 4096, A, 150.0), row(4096, 4096, 4096, B, 110.0),
    ])))
    pts = load_points([str(res)])
    covered = cover(pts, 0.03)
    assert covered == [K128]                       # no K=64 tile: group size 64 would have no kernel
    chosen = add_fallbacks(pts, covered)
    assert chosen == sorted([K128, A])             # A: best geomean ratio of the K=64 tiles (1.34 vs 1.48)


# ------------------------------------------------ a new user's traps (issue 13), refused in one line


@pytest.mark.parametrize("archs", ["90", "", "89", "90-real", "86-real", "90a-real;75"])
def test_archs_no_family_takes_are_refused(repo_root, tmp_path, archs):
    r = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path / "g"), "--cuda-archs", archs)
    assert r.returncode == 2
    assert "90a" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()          # nothing generated, so nothing built


@pytest.mark.parametrize("archs", ["90a-real", "90a", "90a-virtual", "90a-real;90a-virtual", "80-real;90a-real",
                                   "80;90a-real", "80-real;80-virtual;90a-real"])
def test_sm90a_and_sm80_archs_are_accepted(repo_root, tmp_path, archs):
    r = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path), "--cuda-archs", archs, "--quiet")
    assert r.returncode == 0, r.stderr
    cmake = (tmp_path / "sources.cmake").read_text()
    sm80 = ";".join(a for a in archs.split(";") if a.startswith("80"))
    sm90 = ";".join(a for a in archs.split(";") if a.startswith("90a"))
    assert f'set(W4A16_ARCHS_tiled "{sm80}")' in cmake and f'set(W4A16_ARCHS_cutlass "{sm90}")' in cmake
    # a family no entry builds is left out of the plan: no file, no registry entry
    assert bool(sm80) == any(p.name.startswith("fp16_int4_groupwise_tiled") for p in (tmp_path / "kernels").iterdir())


def test_archs_that_build_no_selected_family_are_refused(repo_root, tmp_path):
    r = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path / "g"), "--cuda-archs", "80-real",
            "--kernels", "*_t128x16x64_*")
    assert r.returncode == 2 and "builds none of the 1 selected kernels" in r.stderr and "need 90a" in r.stderr


def test_empty_kernel_selection_is_refused(repo_root, tmp_path):
    import os

    r = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path / "g"), "--kernels", "nomatch*")
    assert r.returncode == 2 and "--kernels='nomatch*' selects none of the 67 kernels" in r.stderr, r.stderr
    assert not (tmp_path / "g").exists()
    env = dict(os.environ, W4A16_KERNELS="nomatch*")
    r = run(repo_root, "--list", "--manifest", "minimal", env=env)
    assert r.returncode == 1 and "W4A16_KERNELS='nomatch*'" in r.stderr
    # The build passes the variable through --kernels and names its source (CMakeLists.txt).
    r = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path / "g"), "--kernels", "nomatch*",
            "--kernels-source", "W4A16_KERNELS")
    assert r.returncode == 2 and "error: W4A16_KERNELS='nomatch*' selects none" in r.stderr, r.stderr


def test_manifest_of_only_rejected_kernels_is_refused(repo_root, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsets:\n  - {dtype: [fp16], mode: [groupwise], tile_rows: [64], tile_tokens: [16],"
                   " tile_k: [64], cluster: [1x1], schedule: [coop], scheduler: [persistent, streamk]}\ngemv: false\n")
    r = run(repo_root, "--list", "--manifest", str(bad))
    assert r.returncode == 1
    assert "coop_needs_128_rows rejected 2" in r.stderr and "--rejected" in r.stderr, r.stderr
    r = run(repo_root, "--out", str(tmp_path / "g"), "--manifest", str(bad))
    assert r.returncode == 2 and "yields no kernel" in r.stderr


def test_list_into_a_closed_pipe_is_quiet(repo_root):
    r = subprocess.run(f"{sys.executable} -m generator --list --manifest full | head -n 1", shell=True,
                       cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert r.stdout.count("\n") == 1 and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


@pytest.mark.parametrize("content, message", [
    (b"name: m\n\xff\xfe gemv: false\n", "not UTF-8"),
    (b"", "the manifest is empty"),
    (b"# only a comment\n", "the manifest is empty"),
])
def test_unreadable_manifests_get_one_line(repo_root, tmp_path, content, message):
    path = tmp_path / "m.yaml"
    path.write_bytes(content)
    r = run(repo_root, "--list", "--manifest", str(path))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_kernels_option_errors_name_the_option(repo_root):
    r = run(repo_root, "--list", "--kernels", "bad glob")
    assert r.returncode == 2 and r.stderr.startswith("error: --kernels:"), r.stderr


def test_missing_pyyaml_is_explained(repo_root):
    code = ("import sys, runpy; sys.modules['yaml'] = None; sys.argv = ['generator', '--list'];"
            " runpy.run_module('generator', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "pip install pyyaml" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_out_prints_the_estimate(repo_root, tmp_path):
    r = run(repo_root, "--manifest", "minimal", "--out", str(tmp_path))
    assert r.returncode == 0
    assert "w4a16: estimate: about" in r.stdout and "minutes of compiling on this machine" in r.stdout


def test_derive_needs_the_table_it_extends(repo_root, tmp_path):
    """Issue 14: the heuristic table to extend is named (--heuristics), not found by a private path."""
    res = tmp_path / "r.json"
    res.write_text(json.dumps(bench_doc([row(4096, 4096, 1, A, 20.0)])))
    r = run(repo_root, str(res), "--write-heuristics", str(tmp_path / "h.json"), module="generator.derive")
    assert r.returncode == 2 and "--heuristics PATH" in r.stderr
    r = run(repo_root, str(res), "--heuristics", str(tmp_path / "missing.json"), "--write-heuristics",
            str(tmp_path / "h.json"), module="generator.derive")
    assert r.returncode == 2 and "missing.json" in r.stderr


def test_the_default_manifest_is_named_in_one_place(repo_root):
    """Issue 14: pyproject.toml, CMakeLists.txt and the CLI each set `default`; now the build passes
    an empty value through and the generator's DEFAULT_MANIFEST decides."""
    import os
    import re

    from generator.paths import DEFAULT_MANIFEST

    r = run(repo_root, "--list", "--manifest", "", env={**os.environ, "W4A16_MANIFEST": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].endswith(f"(manifest {DEFAULT_MANIFEST})")
    pyproject = (repo_root / "pyproject.toml").read_text()
    assert re.search(r'W4A16_MANIFEST = \{ env = "W4A16_MANIFEST", default = "" \}', pyproject)
    cmake = (repo_root / "CMakeLists.txt").read_text()
    assert 'set(W4A16_MANIFEST "" CACHE' in cmake and '"default"' not in cmake


def test_the_build_s_empty_manifest_ignores_the_environment(repo_root):
    """The build passes its cached value (maybe empty) with --manifest: a re-configure must not
    pick another manifest up from the shell (review of issue 14)."""
    import os

    env = {**os.environ, "W4A16_MANIFEST": "minimal"}
    r = run(repo_root, "--list", "--manifest", "", env=env)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].endswith("(manifest default)"), r.stderr
    r = run(repo_root, "--list", env=env)            # a user's shell: the variable applies
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].endswith("(manifest minimal)"), r.stderr


def test_from_results_says_where_it_moved(repo_root, tmp_path):
    r = run(repo_root, "--from-results", str(tmp_path / "r.json"), "--tolerance", "0.03")
    assert r.returncode == 2 and "python -m w4a16_build.derive" in r.stderr, r.stderr


def test_the_model_imports_without_pyyaml_or_jinja2(repo_root):
    """The runtime parses kernel names with generator.model; that must not need the manifest
    reader's PyYAML (which exits the process when missing) nor jinja2."""
    code = ("import sys; sys.modules['yaml'] = None; sys.modules['jinja2'] = None\n"
            "from generator.model import parse_name\n"
            "print(parse_name('fp16_int4_groupwise_gemv_m8_r16_s4').family)")
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "gemv", r.stderr

"""The build's own tools: the progress lines a user sees and the build report (issue 13)."""

import json
import os
import subprocess
import sys


def make_build_dir(tmp_path, kernels, other=("registry.cpp",)):
    """A build directory whose plan (generated/manifest.json) lists these generated files, as the
    generator writes it (render.generated_files)."""
    gen = tmp_path / "generated"
    gen.mkdir()
    files = {"kernels_dir": "kernels", "kernels": {"cutlass": list(kernels)}, "other": list(other)}
    (gen / "manifest.json").write_text(json.dumps({"manifest": "m", "manifest_sha256": "0" * 64, "count": 2,
                                                   "files": files}))
    return tmp_path / "compile_log.jsonl"


def compile_with_wrapper(repo_root, log, obj, env):
    code = "import sys; open(sys.argv[2], 'w').write('object')"
    return subprocess.run([sys.executable, str(repo_root / "generator" / "compile_wrapper.py"), "--log", str(log),
                           "--plan", str(log.parent / "generated" / "manifest.json"),
                           "--", sys.executable, "-c", code, "-o", str(obj)],
                          capture_output=True, text=True, env=env, timeout=60)


def run_report(repo_root, tmp_path, log):
    """build_report.py over a build directory made by make_build_dir: (the process, the report)."""
    out = tmp_path / "report.json"
    r = subprocess.run([sys.executable, str(repo_root / "generator" / "build_report.py"), "--log", str(log),
                        "--plan", str(tmp_path / "generated" / "manifest.json"), "--so", str(tmp_path / "none.so"),
                        "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r, json.loads(out.read_text())


def test_each_compile_prints_a_progress_line(repo_root, tmp_path):
    log = make_build_dir(tmp_path, ["kernels/a__shard.cu", "kernels/b__shard.cu"])
    env = dict(os.environ, W4A16_PROGRESS="0")    # no terminal copy: the line goes to stderr
    log.write_text('{"object": "old.o"}\n')      # an earlier build's line ...
    (tmp_path / "compile_log.jsonl.start").write_text("1")   # ... which this build does not count
    for i, name in enumerate(("a__shard.cu.o", "b__shard.cu.o"), 1):
        r = compile_with_wrapper(repo_root, log, tmp_path / name, env)
        assert r.returncode == 0, r.stderr
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith(f"w4a16: [{i}/5] compiled {name[:-2]}  "), line   # 3 generated + 2 binding files
        assert line.endswith(" GB") and " s, " in line


def test_build_report_describes_only_the_current_build(repo_root, tmp_path):
    """Reusing a build directory after a manifest change mixed old files into the report
    ("16 kernel files, 1540 s" for a one-kernel build)."""
    log = make_build_dir(tmp_path, ["kernels/new__shard.cu"])
    obj = "CMakeFiles/_C.dir/generated/kernels/{}.o"
    recs = [{"object": obj.format(f"old{i}__shard.cu"), "seconds": 100.0, "peak_mb": 5000.0, "bytes": 1}
            for i in range(16)]
    recs += [{"object": obj.format("new__shard.cu"), "seconds": 60.0, "peak_mb": 4000.0, "bytes": 2},
             {"object": "CMakeFiles/_C.dir/csrc/bindings.cpp.o", "seconds": 10.0, "peak_mb": 900.0, "bytes": 3}]
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r, rep = run_report(repo_root, tmp_path, log)
    assert [s["object"] for s in rep["shards"]] == ["new__shard.cu.o"]
    assert rep["totals"]["kernel_compile_seconds"] == 60.0 and rep["totals"]["compile_seconds"] == 70.0
    assert "1 kernel files" in r.stdout


def test_build_tools_are_told_what_was_generated(repo_root):
    """Issue 14: CMake and the wrappers matched `/generated/kernels/` paths and `_gemv_` names; now
    the generator tells them (sources.cmake, manifest.json "files")."""
    for rel in ("CMakeLists.txt", "generator/compile_wrapper.py", "generator/build_report.py"):
        text = (repo_root / rel).read_text()
        for pattern in ("_gemv_", "gemv_shard", "generated/kernels", '"generated", "kernels"', "sources.txt"):
            assert pattern not in text, f"{rel} still matches {pattern!r}"


def test_build_report_counts_a_file_once_when_its_target_moved(repo_root, tmp_path):
    """Review (2026-11-28): kernel files moved from _C's objects to per-family object libraries;
    in a reused build directory the log holds the same source under both object paths, and the
    report listed it twice."""
    log = make_build_dir(tmp_path, ["kernels/a__shard.cu"])
    recs = [{"object": "CMakeFiles/_C.dir/generated/kernels/a__shard.cu.o", "seconds": 90.0, "peak_mb": 5000.0,
             "bytes": 1},
            {"object": "CMakeFiles/w4a16_cutlass.dir/generated/kernels/a__shard.cu.o", "seconds": 60.0,
             "peak_mb": 4000.0, "bytes": 2}]
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r, rep = run_report(repo_root, tmp_path, log)
    assert [(s["object"], s["seconds"]) for s in rep["shards"]] == [("a__shard.cu.o", 60.0)]

"""`python -m w4a16_build.bench` end to end on a small shape (GPU)."""

import json

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
import w4a16_build  # noqa: E402

pytestmark = pytest.mark.gpu


def run_bench(tmp_path, *args):
    from w4a16_build.bench import main

    out = tmp_path / "b.json"
    if "--m" not in args:
        args = ("--m", "1,64", *args)
    assert main(["--shapes", "1024x4096", "--json", str(out), *args]) == 0
    return json.loads(out.read_text())


def test_auto_records_the_selected_kernel(tmp_path):
    doc = run_bench(tmp_path, "--tactic", "auto")
    names = {k["name"] for k in w4a16_build.list_kernels()}
    assert doc["card"] and len(doc["rows"]) == 2
    for r in doc["rows"]:
        assert r["tactic"].startswith("auto:") and r["tactic"][5:] in names
        assert r["us"] > 0 and r["cublas_us"] > 0 and r["speedup"] == pytest.approx(r["cublas_us"] / r["us"])


def test_baseline_is_the_faster_cublas_layout_and_tinygemm_is_timed(tmp_path):
    """benchmarks/README.md's protocol: the faster of W[N,K] and W[K,N] cuBLAS, and torch's int4
    tinygemm in the same rounds where M <= 128 (the bench used to time x @ W.t() only)."""
    doc = run_bench(tmp_path, "--tactic", "auto", "--m", "3,200")
    by_m = {r["m"]: r for r in doc["rows"]}
    for r in by_m.values():
        assert r["cublas_layout"] in ("linear", "matmul")
        assert r["cublas_us"] == min(r["cublas_linear_us"], r["cublas_matmul_us"])
    assert by_m[3]["tinygemm_us"] > 0 and by_m[3]["tinygemm_speedup"] == pytest.approx(
        by_m[3]["cublas_us"] / by_m[3]["tinygemm_us"])
    assert by_m[200]["tinygemm_us"] is None            # past M = 128 it is not the peer
    assert set(doc["geomean_tinygemm_speedup"]) == {"3"}


def test_default_m_values_include_odd_batches():
    from w4a16_build.bench import DEFAULT_M

    assert {3, 7, 12, 24, 48, 96, 200, 3000} <= set(DEFAULT_M) and DEFAULT_M == sorted(DEFAULT_M)


def test_all_with_screen_then_derive(tmp_path):
    import subprocess
    import sys

    doc = run_bench(tmp_path, "--tactic", "all", "--screen", "0.25")
    for m in (1, 64):
        rows = [r for r in doc["rows"] if r["m"] == m]
        assert rows[0]["rank"] == 0 and not rows[0]["screened"]
        assert len({r["tactic"] for r in rows}) == len(rows) > 1    # every applicable tactic, once
    r = subprocess.run([sys.executable, "-m", "w4a16_build.derive", str(tmp_path / "b.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "kernels:" in r.stdout and "cover 2 points" in r.stderr


def test_json_is_written_after_every_layer(tmp_path, monkeypatch):
    """A sweep cut short by a time limit keeps the layers it finished: the JSON is rewritten after
    each layer (marked complete only at the end). Before, it was written once at the end and a
    sweep stopped by `timeout` lost every row."""
    from w4a16_build import bench

    written = []
    # A copy as written then: the run goes on appending to the same rows list.
    monkeypatch.setattr(bench, "_write", lambda path, doc: written.append(json.loads(json.dumps(doc))))
    assert bench.main(["--shapes", "1024x4096,2048x1024", "--m", "5", "--tactic", "auto",
                       "--json", str(tmp_path / "b.json")]) == 0
    assert [d["complete"] for d in written] == [False, False, True]
    assert {(r["k"], r["n"]) for r in written[0]["rows"]} == {(1024, 4096)}
    assert written[-1]["rows"] == written[1]["rows"] and len(written[-1]["rows"]) == 2
    assert set(written[0]["geomean_speedup"]) == {"5"}

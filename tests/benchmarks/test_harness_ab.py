"""benchmarks/harness_ab.py: two harness builds' bench outputs against each other."""

import importlib.util
import math


def _load(repo_root):
    spec = importlib.util.spec_from_file_location("harness_ab", repo_root / "benchmarks" / "harness_ab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_OUT = """d2d copy: 4200 GB/s (read+write)
== 8192x8192 (33.6 MB int4, 10 copies)
m=  1  sk_fp16_g_m16_s2_kw8 {a:.2f}us 2600GB/s  gemv_fp16_g_m16_r16_s4 {b:.2f}us 1900GB/s
m= 16  sk_fp16_g_m16_r16_s4 20.00us 1000GB/s
== 2048x2048 (2.1 MB int4, 144 copies)
m=  1  sk_fp16_g_m16_s2_kw8 {c:.2f}us 700GB/s
"""


def test_best_round_and_geomean(repo_root, tmp_path):
    ab = _load(repo_root)
    (tmp_path / "h0_r1.txt").write_text(_OUT.format(a=13.0, b=17.0, c=3.0))
    (tmp_path / "h0_r2.txt").write_text(_OUT.format(a=12.0, b=17.5, c=3.2))   # best of rounds: 12.0, 17.0, 3.0
    # Other binaries whose names end in "h0": faster, so taking them would show.
    (tmp_path / "first_h0_r1.txt").write_text(_OUT.format(a=1.0, b=1.0, c=1.0))
    (tmp_path / "xh0_r1.txt").write_text(_OUT.format(a=1.0, b=1.0, c=1.0))
    (tmp_path / "h0_r1.txt.bak").write_text(_OUT.format(a=1.0, b=1.0, c=1.0))
    (tmp_path / "h3_r1.txt").write_text(_OUT.format(a=10.0, b=17.0, c=2.5))
    base, new = ab.best_times(tmp_path, "h0"), ab.best_times(tmp_path, "h3")
    assert base[("8192x8192", 1, "sk_fp16_g_m16_s2_kw8")] == 12.0
    assert base[("2048x2048", 1, "sk_fp16_g_m16_s2_kw8")] == 3.0
    assert ab.best_times(tmp_path, "first_h0")[("8192x8192", 1, "sk_fp16_g_m16_s2_kw8")] == 1.0
    rows = {(v, m): (g, lo, hi, n) for v, m, g, lo, hi, n in ab.compare(base, new)}
    g, lo, hi, n = rows[("sk_fp16_g_m16_s2_kw8", 1)]
    assert n == 2 and math.isclose(g, math.sqrt(1.2 * 1.2))
    assert math.isclose(lo[0], 1.2) and math.isclose(hi[0], 1.2)
    assert rows[("gemv_fp16_g_m16_r16_s4", 1)][0] == 1.0
    assert rows[("sk_fp16_g_m16_r16_s4", 16)][0] == 1.0


def test_lowest_and_highest_name_their_layers(repo_root, tmp_path):
    ab = _load(repo_root)
    (tmp_path / "a_r1.txt").write_text(_OUT.format(a=12.0, b=17.0, c=3.0))
    (tmp_path / "b_r1.txt").write_text(_OUT.format(a=10.0, b=17.0, c=3.3))
    rows = {(v, m): (lo, hi) for v, m, g, lo, hi, n in ab.compare(ab.best_times(tmp_path, "a"),
                                                                  ab.best_times(tmp_path, "b"))}
    lo, hi = rows[("sk_fp16_g_m16_s2_kw8", 1)]
    assert lo[1] == "2048x2048" and math.isclose(lo[0], 3.0 / 3.3)
    assert hi[1] == "8192x8192" and math.isclose(hi[0], 1.2)


def test_cli_on_the_committed_attempt_16_outputs(repo_root, capsys):
    """The committed A/B of attempt 16 (NOTES.md): the warp-split kernel is faster at M = 1 with it."""
    ab = _load(repo_root)
    folder = repo_root / "benchmarks" / "results" / "scale_after_mma_h200"
    assert ab.main(["harness_ab.py", str(folder), "second_h0", "second_h3"]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("sk_fp16_g_m16_s2_kw8") and "m=  1" in s][0]
    assert float(line.split("geomean")[1].split()[0]) > 1.03

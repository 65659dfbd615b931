"""benchmarks/same_round_rules.py: a size rule scored offline on same-round JSONs."""

import importlib.util
import json
import math

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")   # the script takes bench.geomean


def _load(repo_root):
    spec = importlib.util.spec_from_file_location("same_round_rules", repo_root / "benchmarks" / "same_round_rules.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(k, n, m, auto, cand, cublas=20.0):
    return {"k": k, "n": n, "m": m, "layers": [], "cublas_us": cublas, "auto": "fp16_int4_groupwise_gemv_m8_r32_s4",
            "auto_us": auto, "cand": {f"fp16_int4_groupwise_{t}": us for t, us in cand.items()}, "tinygemm_us": None}


def test_bounds_are_parsed_and_bad_ones_refused(repo_root):
    mod = _load(repo_root)
    assert mod.parse_bounds("m=2-8 min_nk=60e6 max_n=60000") == {"m": (2, 8), "min_nk": 6e7, "max_n": 60000.0}
    assert mod.parse_bounds("m=5") == {"m": (5, 5)}
    tail = mod.parse_bounds("m=1537-3088 tail=128:16")
    assert tail == {"m": (1537, 3088), "tail": (128, 16)}
    assert [m for m in (1536, 1537, 1552, 1553, 2049, 3088, 3089) if mod.covers(tail, 2048, 2048, m)] == [1537, 1552, 2049, 3088]
    with pytest.raises(ValueError):
        mod.parse_bounds("tail=128:128")
    with pytest.raises(ValueError, match="unknown bound"):
        mod.parse_bounds("min_m=2")


def test_the_rule_replaces_the_selection_only_where_it_covers_and_was_timed(repo_root, tmp_path):
    mod = _load(repo_root)
    rows = [
        _row(8192, 8192, 2, 10.0, {"skinny_m16_r32_s4": 8.0}),     # covered: 10 -> 8
        _row(8192, 8192, 9, 10.0, {"skinny_m16_r32_s4": 5.0}),     # M outside the rule
        _row(2048, 2048, 2, 10.0, {"skinny_m16_r32_s4": 5.0}),     # N*K below min_nk
        _row(8192, 8192, 3, 10.0, {"gemv_m8_r16_s4": 9.0}),        # the tactic was not timed here
        _row(16384, 8192, 4, 10.0, {"skinny_m16_r32_s4": 12.5}),   # covered, slower: 10 -> 12.5
    ]
    f = tmp_path / "sr.json"
    f.write_text(json.dumps({"rows": rows}))
    s = mod.score(mod.points([str(f)]), "fp16_int4_groupwise_skinny_m16_r32_s4", mod.parse_bounds("m=2-8 min_nk=60e6"))
    assert s["points"] == 5 and s["covered"] == 2
    assert s["rule_vs_selection"] == pytest.approx(math.sqrt(10 / 8 * 10 / 12.5))
    assert s["rule_vs_selection_min"] == pytest.approx(0.8)
    times = [8.0, 10.0, 10.0, 10.0, 12.5]
    fastest = [8.0, 5.0, 5.0, 9.0, 10.0]
    assert s["rule"] == pytest.approx(math.exp(sum(math.log(20.0 / t) for t in times) / 5))
    assert s["fastest"] == pytest.approx(math.exp(sum(math.log(20.0 / t) for t in fastest) / 5))
    assert s["worst"] == pytest.approx(0.5) and s["within_5pct"] == pytest.approx(1 / 5)
    mod.main(["skinny_m16_r32_s4", "m=2-8", str(f)])   # prints per M and overall without error

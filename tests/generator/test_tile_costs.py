"""generator/tile_costs.py: the CUTLASS family's fitted cost per tile."""


def test_the_shipped_tile_costs_re_derive_from_the_shipped_results(repo_root):
    """Issue 16: the cost rule's constants are data derived from committed measurements; fitting
    them again from those files gives the table's numbers."""
    import glob
    import json

    from generator import tile_costs

    table = json.loads((repo_root / "python/w4a16_build/heuristics.json").read_text())
    rule = next(r for r in table["rules"] if r.get("tokens") == tile_costs.RULE_TOKENS)
    files = sorted(glob.glob(str(repo_root / "benchmarks/results/tokens_sweep_h200_fp16_*.json")))
    assert len(files) == 4
    assert tile_costs.fit_files(files) == rule["cost_per_wave"]
    assert "tokens_sweep_h200_fp16_" in rule["why"]

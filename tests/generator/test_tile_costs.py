"""generator/tile_costs.py: the CUTLASS family's fitted cost terms per tile."""

import pytest


def test_the_shipped_tile_costs_re_derive_from_the_shipped_results(repo_root):
    """Issue 16: the cost rule's constants are data derived from committed measurements; fitting
    them again from those files gives the table's numbers."""
    import glob
    import json

    from generator import tile_costs

    table = json.loads((repo_root / "python/w4a16_build/heuristics.json").read_text())
    rule = next(r for r in table["rules"] if r.get("tokens") == tile_costs.RULE_TOKENS)
    files = [str(repo_root / f) for f in rule["fitted_from"]]
    assert len(files) == 16 and all(glob.glob(f) for f in files)
    fitted = tile_costs.fitted(files)
    assert fitted["cost_terms"] == rule["cost_terms"]
    assert fitted["residual_points"] == rule["residual_points"]
    assert fitted["cost_residuals"] == rule["cost_residuals"]
    assert "fitted_from" in rule["why"]


SK = "fp16_int4_groupwise_t128x128x128_c1x1_coop_streamk"
PERSISTENT = "fp16_int4_groupwise_t128x128x128_c1x1_coop_persistent"
# (K, N, M): stream-K with partial waves, one with two whole waves (264 tiles on 132 SMs), few tiles.
SHAPES = [(2048, 2304, 200), (4096, 5120, 512), (8192, 14336, 1024), (3072, 9216, 96), (5120, 35840, 256),
          (4096, 128 * 132, 256), (14336, 5120, 96)]


def rows_of(tactic, terms, shapes=SHAPES, noise=None):
    from generator.model import parse_name

    cfg, out = parse_name(tactic), []
    for i, (k, n, m) in enumerate(shapes):
        f = cfg.cost_features(m, n, k, 132)
        us = sum(a * b for a, b in zip(terms, f)) * (noise[i] if noise else 1.0)
        out.append(dict(tactic=tactic, k=k, n=n, m=m, us=us))
    return out


def test_the_fit_recovers_known_terms():
    """Rows made from known (a, b, c) per tile, stream-K at partial and whole waves, are fitted back
    to them; a persistent tile's partial-wave term is 0."""
    from generator import tile_costs
    from generator.model import parse_name

    truth = {SK: (0.0065, 0.001, 7.5), PERSISTENT: (0.0059, 0.0, 2.0)}
    got = tile_costs.fit(rows_of(SK, truth[SK]) + rows_of(PERSISTENT, truth[PERSISTENT]), 132)
    for t, want in truth.items():
        assert got[parse_name(t).tile_key] == pytest.approx(list(want), rel=1e-3, abs=1e-9)


def test_the_fit_weighs_relative_errors():
    """One small call 30% slow must not pull the terms the way an absolute fit would (it has the
    smallest time, so a relative fit counts it as much as the others, an absolute one hardly):
    the fitted fixed cost moves by what the relative least squares says, checked against a direct
    minimization of the relative error over a grid."""
    from generator import tile_costs
    from generator.model import parse_name

    noise = [1.3, 1, 1, 1, 1, 1, 1]          # the first shape is the smallest call
    rows = rows_of(PERSISTENT, (0.0059, 0.0, 2.0), noise=noise)
    a, _, c = tile_costs.fit(rows, 132)[parse_name(PERSISTENT).tile_key]
    cfg = parse_name(PERSISTENT)

    def rel_sse(a_, c_):
        return sum(((a_ * cfg.cost_features(r["m"], r["n"], r["k"], 132)[0] + c_) / r["us"] - 1) ** 2 for r in rows)

    def abs_sse(a_, c_):
        return sum((a_ * cfg.cost_features(r["m"], r["n"], r["k"], 132)[0] + c_ - r["us"]) ** 2 for r in rows)

    near = [(a * (1 + da), c + dc) for da in (-0.01, 0, 0.01) for dc in (-0.5, 0, 0.5) if (da, dc) != (0, 0)]
    assert all(rel_sse(a, c) <= rel_sse(*p) for p in near)      # a minimum of the relative error
    assert any(abs_sse(a, c) > abs_sse(*p) for p in near)       # not of the absolute one


def test_a_negative_term_is_dropped_and_the_rest_refitted():
    """Times that fall with fewer waves than the model allows would fit a negative fixed cost,
    which would rank that tile first on small calls: the term is set to 0 and a refitted."""
    from generator import tile_costs
    from generator.model import parse_name

    got = tile_costs.fit(rows_of(PERSISTENT, (0.006, 0.0, -3.0)), 132)[parse_name(PERSISTENT).tile_key]
    assert got[2] == 0.0 and got[0] > 0 and got[1] == 0.0


def test_points_that_cannot_pin_the_terms_leave_the_tile_out(capsys):
    """One point, or stream-K points all at one shape (its features proportional), leave the tile
    out of the table (it then ranks after the fitted tiles) instead of dividing by zero or fitting
    absurd terms."""
    from generator import tile_costs
    from generator.model import parse_name

    one = rows_of(PERSISTENT, (0.006, 0.0, 2.0), shapes=SHAPES[:1])
    same_shape = [dict(r, k=r["k"] * s, us=r["us"] * s) for r in rows_of(SK, (0.0065, 0.001, 0.0), shapes=SHAPES[:1])
                  for s in (1, 2, 3, 4)]
    got = tile_costs.fit(one + same_shape, 132)
    assert parse_name(PERSISTENT).tile_key not in got and parse_name(SK).tile_key not in got
    assert "do not pin its terms" in capsys.readouterr().err


def test_residuals_are_the_log_of_measured_over_fitted_time_per_point():
    """The cost rule's residuals (generator/cost_residuals.py reads them): per tile and measured
    (M, N, K), log(measured / fitted time), the mean of that point's rows (two models with one layer
    shape), None where the tile was not timed; the points are every (M, N, K) any row has."""
    import math

    from generator import tile_costs
    from generator.model import parse_name

    terms = {parse_name(PERSISTENT).tile_key: [0.006, 0.0, 2.0], parse_name(SK).tile_key: [0.0065, 0.001, 7.5]}
    rows = rows_of(PERSISTENT, terms[parse_name(PERSISTENT).tile_key], shapes=SHAPES[:3],
                   noise=[1.1, 1.0, 0.9])
    rows.append(dict(rows[0], us=rows[0]["us"] / 1.1 * 1.2))          # the same point, another model
    rows += rows_of(SK, terms[parse_name(SK).tile_key], shapes=SHAPES[3:4])
    points, res = tile_costs.residuals(rows, terms, 132)
    assert points == sorted([m, n, k] for k, n, m in SHAPES[:4])
    by_point = dict(zip(map(tuple, points), res[parse_name(PERSISTENT).tile_key]))
    k, n, m = SHAPES[0]
    assert by_point[(m, n, k)] == round((math.log(1.1) + math.log(1.2)) / 2, 2)
    k, n, m = SHAPES[2]
    assert by_point[(m, n, k)] == round(math.log(0.9), 2)
    k, n, m = SHAPES[3]
    assert by_point[(m, n, k)] is None                                  # not timed there
    assert res[parse_name(SK).tile_key].count(None) == 3 and 0.0 in res[parse_name(SK).tile_key]


def test_a_refit_of_a_table_without_residuals_ranks(repo_root, tmp_path):
    """Review: the CLI refits a table written before the residuals (no residual settings); the
    table it writes names the settings and ranks (it raised KeyError in rank_key before)."""
    import json

    from generator import cost_residuals, tile_costs
    from generator.model import parse_name

    table = json.loads((repo_root / "python/w4a16_build/heuristics.json").read_text())
    rule = next(r for r in table["rules"] if r.get("tokens") == tile_costs.RULE_TOKENS)
    for key in ("residual_points", "cost_residuals", *cost_residuals.SETTINGS):
        rule.pop(key)
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(table))
    files = [str(repo_root / f) for f in rule["fitted_from"]]
    assert tile_costs.main(files + ["--heuristics", str(old), "--write-heuristics", str(new)]) == 0
    got = next(r for r in json.loads(new.read_text())["rules"] if r.get("tokens") == tile_costs.RULE_TOKENS)
    assert {k: got[k] for k in cost_residuals.SETTINGS} == cost_residuals.SETTINGS
    cfg = parse_name("fp16_int4_groupwise_t128x128x128_c1x1_coop_persistent")
    assert cfg.rank_key(512, 4096, 132, got, k=4096)[0] == 0

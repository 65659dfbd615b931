"""Per-tile cost terms for the CUTLASS family's "cost" ranking, fitted from `bench --tactic all` results.

    python -m generator.tile_costs RESULTS.json ... [--heuristics heuristics.json --write-heuristics OUT.json]

The model (KernelConfig.cost_features): a call takes a x K x waves + b x K x [stream-K with a
partial wave] + c microseconds, waves = whole waves of output tiles over the SMs (persistent) or
stream-K's even share (a fraction too), one (a, b, c) per tile (the name without dtype and mode),
fitted by least squares of the relative error over every timed point of that tile. Rows `--screen`
did not time fully count with their screening time. With --heuristics it also writes each
tile's residuals, log(measured / fitted time) at every measured (M, N, K) (residual_points,
cost_residuals), which generator/cost_residuals.py turns into a correction near those shapes.
Checked by leaving whole models out (benchmarks/selection_regret.py --leave-models-out,
benchmarks/NOTES.md); a test re-derives the shipped terms and residuals from the shipped results.
The terms are per SM count: results of cards with different counts are refused.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict

from . import cost_residuals
from .derive import heuristics_text
from .model import KernelConfig, parse_name

RULE_TOKENS = "cost"
SMS = {"H100": 132, "H200": 132}   # the cards bench results name, and their SM counts
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


SINGULAR = 1e-9   # a pivot this small, relative to the (unit) diagonal: the points do not pin the terms


def _solve(a: list[list[float]], y: list[float]) -> list[float] | None:
    """Solve a x = y (small, symmetric positive semi-definite) by Gaussian elimination with
    pivoting, or None where it is singular; plain Python, so the fitted numbers do not depend on a
    numerics library's version. The columns are scaled to a unit diagonal first, so that one
    threshold fits features of any size."""
    n = len(y)
    s = [abs(a[i][i]) ** 0.5 or 1.0 for i in range(n)]
    m = [[a[i][j] / (s[i] * s[j]) for j in range(n)] + [y[i] / s[i]] for i in range(n)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        if abs(m[i][i]) < SINGULAR:
            return None
        for r in range(i + 1, n):
            f = m[r][i] / m[i][i]
            for c in range(i, n + 1):
                m[r][c] -= f * m[i][c]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (m[i][n] - sum(m[i][c] * x[c] for c in range(i + 1, n))) / m[i][i]
    return [v / si for v, si in zip(x, s)]


def fit_tile(zs: list[list[float]]) -> list[float] | None:
    """The terms of one tile from its points' features divided by their times (least squares of
    the relative error), every term >= 0: a term that comes out negative is dropped (set to 0) and
    the rest refitted. None when the points cannot pin the terms: fewer than two more points than
    terms, or features that are proportional (e.g. every stream-K point at one shape)."""
    active = [j for j in range(3) if any(z[j] for z in zs)]
    while active:
        if len(zs) < len(active) + 2:
            return None
        ata = [[sum(z[i] * z[j] for z in zs) for j in active] for i in active]
        aty = [sum(z[i] for z in zs) for i in active]
        sol = _solve(ata, aty)
        if sol is None:
            return None
        terms = dict(zip(active, sol))
        worst = min(active, key=lambda j: terms[j])
        if terms[worst] >= 0:
            return [float(f"{terms.get(j, 0.0):.4g}") for j in range(3)]
        active.remove(worst)
    return None


def fit(rows: list[dict], sms: int) -> dict[str, list[float]]:
    """{tile_key: [a, b, c]} over the CUTLASS rows of bench results (fit_tile; a tile whose points
    cannot pin its terms is left out, and ranks after the fitted ones). A term whose feature is zero
    at every point of a tile (b for a persistent tile) is 0. 4 significant digits, so the table
    reads and re-derives exactly."""
    points = defaultdict(list)
    for r in rows:
        cfg = parse_name(r["tactic"])
        if not isinstance(cfg, KernelConfig):
            continue
        feats = cfg.cost_features(r["m"], r["n"], r["k"], sms)
        points[cfg.tile_key].append([f / r["us"] for f in feats])
    out = {}
    for key, zs in sorted(points.items()):
        terms = fit_tile(zs)
        if terms is None:
            print(f"tile_costs: {key}: {len(zs)} points do not pin its terms; left out", file=sys.stderr)
            continue
        out[key] = terms
    return out


_SAID_PARTIAL: set[str] = set()   # files already said to be partial (a refit per left-out model)


def load_rows(paths: list[str]) -> tuple[list[dict], int]:
    """The rows of bench results and their cards' SM count (one count for all)."""
    rows, sms = [], set()
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        if d.get("card") not in SMS:
            raise SystemExit(f"error: {p}: card {d.get('card')!r} has no known SM count ({sorted(SMS)})")
        if d.get("complete") is False and p not in _SAID_PARTIAL:
            _SAID_PARTIAL.add(p)
            print(f"tile_costs: {p}: a partial run (complete: false), its finished layers used", file=sys.stderr)
        rows += d["rows"]
        sms.add(SMS[d["card"]])
    if len(sms) != 1:
        raise SystemExit(f"error: results from cards with different SM counts: {sorted(sms)}")
    return rows, sms.pop()


def fit_files(paths: list[str]) -> dict[str, list[float]]:
    return fit(*load_rows(paths))


def residuals(rows: list[dict], terms: dict[str, list[float]], sms: int) -> tuple[list[list[int]], dict]:
    """(points, {tile_key: [residual or None per point]}): every (M, N, K) the rows timed, sorted,
    and each fitted tile's log(measured / fitted time) there, the mean over the rows of that point
    (several models share layer shapes), 2 decimals (generator/cost_residuals.py reads them)."""
    acc = defaultdict(list)
    for r in rows:
        cfg = parse_name(r["tactic"])
        if not isinstance(cfg, KernelConfig) or cfg.tile_key not in terms:
            continue
        model_us = cfg.fitted_time(r["m"], r["n"], r["k"], sms, terms[cfg.tile_key])
        acc[(cfg.tile_key, r["m"], r["n"], r["k"])].append(math.log(r["us"] / max(model_us, 1e-9)))
    points = sorted({key[1:] for key in acc})
    index = {p: i for i, p in enumerate(points)}
    out = {key: [None] * len(points) for key in sorted(terms)}
    for (key, *point), v in acc.items():
        out[key][index[tuple(point)]] = round(sum(v) / len(v), 2) + 0.0    # + 0.0: no -0.0
    return [list(p) for p in points], out


def fitted(paths: list[str]) -> dict:
    """The cost rule's fitted fields from bench results: cost_terms, residual_points, cost_residuals."""
    rows, sms = load_rows(paths)
    terms = fit(rows, sms)
    points, res = residuals(rows, terms, sms)
    return {"cost_terms": terms, "residual_points": points, "cost_residuals": res}


def main(argv: list[str] | None = None, prog: str = "python -m generator.tile_costs") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", metavar="JSON")
    p.add_argument("--heuristics", metavar="PATH", help="a heuristic table whose cost rule to refit")
    p.add_argument("--write-heuristics", metavar="JSON", help="write that table with the new costs here")
    args = p.parse_args(argv)
    if not args.heuristics:
        print(json.dumps(fit_files(args.results), indent=1))
        return 0
    with open(args.heuristics) as f:
        table = json.load(f)
    rules = [r for r in table["rules"] if r.get("tokens") == RULE_TOKENS]
    if len(rules) != 1:
        print(f"error: {args.heuristics} has {len(rules)} rules with tokens '{RULE_TOKENS}' (needs one)", file=sys.stderr)
        return 2
    rules[0].update(fitted(args.results))
    for key, value in cost_residuals.SETTINGS.items():      # the correction's settings, where unnamed
        rules[0].setdefault(key, value)
    rules[0]["fitted_from"] = sorted(os.path.relpath(p, REPO) for p in args.results)
    with open(args.write_heuristics or args.heuristics, "w") as f:
        f.write(heuristics_text(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())

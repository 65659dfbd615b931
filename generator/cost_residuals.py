"""Nearest-neighbour corrections to the fitted tile costs of the heuristic table's "cost" rule.

The fitted time of a tile (KernelConfig.cost_features . its terms, generator/tile_costs.py) is a
few terms per tile over every layer; where a tile does better or worse on some shapes than those
terms say, the fit cannot follow. The rule therefore also holds each tile's residuals: the log of
measured / fitted time at every measured point (M, N, K), averaged over the files that timed it.
A call's predicted log time is the fitted one plus a weighted mean of the tile's residuals at the
`count` measured points nearest to it (distance |log M ratio| + |log N ratio| + |log K ratio|,
weights exp(-distance / scale)), with one more weight, exp(-fade / scale), on a residual of 0:
near a measured shape the measurements decide; with one point at `fade` the correction is halved
(with several near points, somewhat further out: up to fade + scale * ln count), and farther out it
goes to 0, leaving the fitted terms to rank.

Rule keys: residual_points [[M, N, K], ...]; cost_residuals {tile_key: [residual or null per
point]}; residual_neighbours (count), residual_scale (scale) and residual_fade (fade), chosen by
leaving whole models out (benchmarks/NOTES.md); SETTINGS are the values a table without them gets.
"""

from __future__ import annotations

import math

SETTINGS = {"residual_neighbours": 8, "residual_scale": 0.3, "residual_fade": 1.0}

# The points by distance from the last call shape: a ranking corrects every tile at one (M, N, K),
# so the distances are computed and sorted once for all of them. One entry, replaced whole (safe
# across threads); it holds the points list itself, which is compared by identity.
_LAST: tuple = (None, None, [])


def _by_distance(points: list, m: int, n: int, k: int) -> list[tuple[float, int]]:
    """[(distance, point index)] from (m, n, k), nearest first."""
    global _LAST
    last = _LAST
    if last[0] is points and last[1] == (m, n, k):
        return last[2]
    lm, ln, lk = math.log(m), math.log(n), math.log(k)
    order = sorted((abs(math.log(pm) - lm) + abs(math.log(pn) - ln) + abs(math.log(pk) - lk), i)
                   for i, (pm, pn, pk) in enumerate(points))
    _LAST = (points, (m, n, k), order)
    return order


def settings(rule: dict) -> tuple[int, float, float]:
    """(count, scale, fade) of a rule, SETTINGS where it names none."""
    return tuple(rule.get(key, default) for key, default in SETTINGS.items())


def correction(points: list, residuals: list, m: int, n: int, k: int, count: int, scale: float,
               fade: float) -> float:
    """The weighted mean of one tile's residuals at its `count` measured points nearest to
    (m, n, k), pulled toward 0 by a weight exp(-fade / scale) (0.0 where the tile has none). A
    residuals list not as long as the points is refused (ValueError): a table edited by hand."""
    if len(residuals) != len(points):
        raise ValueError(f"heuristics.json: {len(residuals)} residuals for {len(points)} residual_points")
    if count <= 0:
        return 0.0
    near = []
    for d, i in _by_distance(points, m, n, k):
        r = residuals[i]
        if r is None:
            continue
        if len(near) >= count and d != near[-1][0]:
            break
        near.append((d, r))
    near = sorted(near)[:count]      # at one distance, the smaller residuals first
    weights = [math.exp(-d / scale) for d, _ in near]
    total = sum(weights) + math.exp(-fade / scale)
    return sum(w * r for w, (_, r) in zip(weights, near)) / total if total else 0.0

"""Nearest-neighbour corrections to the fitted tile costs of the heuristic table's "cost" rule.

The fitted time of a tile (KernelConfig.cost_features . its terms, generator/tile_costs.py) is a
few terms per tile over every layer; where a tile does better or worse on some shapes than those
terms say, the fit cannot follow. The rule therefore also holds each tile's residuals: the log of
measured / fitted time at every measured point (M, N, K), averaged over the files that timed it.
A call's predicted log time is the fitted one plus the weighted mean of the tile's residuals at the
`count` measured points nearest to it (distance |log M ratio| + |log N ratio| + |log K ratio|,
weights exp(-distance / scale)): near a measured shape the measurements decide, far from every one
the correction fades and the fitted terms rank alone.

Rule keys: residual_points [[M, N, K], ...]; cost_residuals {tile_key: [residual or null per
point]}; residual_neighbours (count) and residual_scale (scale), both chosen by leaving whole
models out (benchmarks/NOTES.md).
"""

from __future__ import annotations

import math

# id(points) -> (points, their logs): a table's points are read once, not at every ranking.
_LOGS: dict[int, tuple[list, list[tuple[float, float, float]]]] = {}


def _logs(points: list) -> list[tuple[float, float, float]]:
    hit = _LOGS.get(id(points))
    if hit is None or hit[0] is not points:
        hit = (points, [(math.log(m), math.log(n), math.log(k)) for m, n, k in points])
        _LOGS[id(points)] = hit
    return hit[1]


def correction(points: list, residuals: list, m: int, n: int, k: int, count: int, scale: float) -> float:
    """The weighted mean of one tile's residuals at its `count` measured points nearest to
    (m, n, k); 0.0 where the tile has none (or all are too far to weigh anything)."""
    lm, ln, lk = math.log(m), math.log(n), math.log(k)
    near = sorted((abs(pm - lm) + abs(pn - ln) + abs(pk - lk), r)
                  for (pm, pn, pk), r in zip(_logs(points), residuals) if r is not None)[:count]
    weights = [math.exp(-d / scale) for d, _ in near]
    total = sum(weights)
    if not total:
        return 0.0
    return sum(w * r for w, (_, r) in zip(weights, near)) / total

"""The first form of the split model, not kept (benchmarks/NOTES.md, "Twentieth session"): p, the
CTAs per SM, taken as ceil(per_sm * row_groups / resident clusters - 0.05) at the kernel's own
occupancy, share 1, 1.2, 1.6 (p = 1, 2, 3; 1.6 * p / 3 above), cost per CTA 3 chunks plus 0.2 per
split, fitted on probe1_dev.txt; its check on probe1_held.txt is what sent the search to the
second file's curves, and so to the form kept (fit.py).

    python first_model.py probe1_dev.txt probe1_held.txt
"""
import math
import sys

from fit import min_splits, parse, per_sm, score


def first(k, n, var, m, rg, d):
    share = {1: 1.0, 2: 1.2, 3: 1.6}
    best = None
    for s in sorted(d):
        if s < min_splits(m, k):
            continue
        o = per_sm(var, m, k, s)
        clusters = d[s][1]
        if clusters <= 0 or o <= 0:
            continue
        waves = math.ceil(rg / clusters)
        p = max(1, math.ceil(o * min(rg, clusters) / clusters - 0.05))
        t = waves * (math.ceil(k // 64 / s) + 3 + 0.2 * s) * share.get(p, 1.6 * p / 3)
        if best is None or t < best[0] - 1e-9:
            best = (t, s)
    return best[1]


if __name__ == "__main__":
    score(parse(sys.argv[1]), first, "development file, the first form")
    score(parse(sys.argv[2]), first, "second file, the first form")

"""The M = 49-64 ws rule (heuristics.json: m 49-64, N <= 16384, K >= 3072, N*K <= 68M -> the m64
ws tactic) on a same_round_tactic.py file (the selection without the rule and the m64 ws tactic in
the same rounds): each point, and the selection's geomean over fp16 cuBLAS without and with the
rule per M. The rule was set from ws64_dev_fp16.json before ws64_heldout_fp16.json was read.

    python ws64_rule.py ws64_dev_fp16.json
    python ws64_rule.py ws64_heldout_fp16.json
"""
import json
import math
import sys


def covered(k, n, m):
    return 49 <= m <= 64 and n <= 16384 and k >= 3072 and n * k <= 68_000_000


def geo(v):
    return math.exp(sum(map(math.log, v)) / len(v))


def main(path):
    rows = json.load(open(path))["rows"]
    old, new, moved = {}, {}, []
    for r in rows:
        k, n, m, a, c = r["k"], r["n"], r["m"], r["auto_us"], r["cublas_us"]
        ws = next(iter(r["cand"].values()))
        x = ws if covered(k, n, m) else a
        if covered(k, n, m):
            moved.append(a / ws)
        old.setdefault(m, []).append(c / a)
        new.setdefault(m, []).append(c / x)
        print(f"{k}x{n} M={m}: cuBLAS {c:.2f} selection {a:.2f} ws {ws:.2f} selection/ws {a / ws:.2f}"
              f"{'  (rule)' if covered(k, n, m) else ''}")
    for m in sorted(old):
        print(f"M={m}: selection over fp16 cuBLAS {geo(old[m]):.3f} -> {geo(new[m]):.3f}")
    if moved:
        print(f"{len(moved)} points in the rule: {geo(moved):.2f}x faster in geomean, "
              f"{sum(v < 0.97 for v in moved)} slower by more than 3%")


if __name__ == "__main__":
    main(sys.argv[1])

"""The ws rule (heuristics.json, mma ws) on the held-out run (ws_heldout_fp16.json: the selection
without the rule and the two ws tactics timed in the same rounds by same_round_tactic.py): the
selection's speed-up over fp16 cuBLAS without and with the rule, per M, and the points it changes.

    python heldout.py ws_heldout_fp16.json
"""
import json
import math
import sys


def covered(k, n, m):  # the rule as shipped
    return 17 <= m <= 48 and n <= 16384 and k >= 2048 and n * k <= 68_000_000


def main(path):
    rows = json.load(open(path))["rows"]
    g = lambda v: math.exp(sum(map(math.log, v)) / len(v))  # noqa: E731
    old, new, moved = [], [], []
    for r in rows:
        k, n, m, a, c = r["k"], r["n"], r["m"], r["auto_us"], r["cublas_us"]
        w = a
        if covered(k, n, m):
            w = next(v for t, v in r["cand"].items() if ("_m32_" in t) == (m <= 32))
            moved.append((k, n, m, a / w))
        old.append(c / a)
        new.append(c / w)
    for m in sorted({r["m"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["m"] == m]
        print(f"M={m}: selection over fp16 cuBLAS {g([old[i] for i in idx]):.3f} -> {g([new[i] for i in idx]):.3f}")
    print(f"all {len(rows)} points: {g(old):.3f} -> {g(new):.3f}")
    print(f"{len(moved)} points the rule takes: {g([x[3] for x in moved]):.3f}x faster in geomean, "
          f"{sum(x[3] > 1.03 for x in moved)} faster and {sum(x[3] < 1 / 1.03 for x in moved)} slower by > 3%")
    for k, n, m, s in sorted(moved, key=lambda x: x[3])[:6]:
        print(f"  {k}x{n} M={m}: {s:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])

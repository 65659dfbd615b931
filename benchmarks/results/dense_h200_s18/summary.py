"""The held-out check of the dense rule as it shipped (heuristics.json, tail_of 128, tail_max 16):
geomean speed-up over fp16 cuBLAS of the selection without the rule (old) and with it (new), per M.
    python benchmarks/results/dense_h200_s18/summary.py"""
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def gm(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs))


rows = []
for name in ("held_fp16.json", "held2_fp16.json"):
    rows += json.load(open(os.path.join(HERE, name)))["rows"]
shipped = [r for r in rows if 1 <= r["m"] % 128 <= 16]          # M = 2336 (32 past) is outside it
for label, pts in [(f"M={m}", [r for r in shipped if r["m"] == m]) for m in sorted({r["m"] for r in shipped})] + [("all", shipped)]:
    old = [r["cublas_us"] / r["old_us"] for r in pts]
    new = [r["cublas_us"] / r["new_us"] for r in pts]
    better = sum(r["new_us"] < r["old_us"] / 1.02 for r in pts)
    worse = sum(r["new_us"] > r["old_us"] * 1.02 for r in pts)
    print(f"{label:7s} n={len(pts):3d} old {gm(old):.3f} new {gm(new):.3f} worst old {min(old):.3f} new {min(new):.3f}"
          f" faster>2% {better} slower>2% {worse} worst new/old {min(r['old_us'] / r['new_us'] for r in pts):.3f}")

"""The product's run of the shape set with the new split planner (product_set_fp16_m1to16_auto.json)
against the sixteenth session's same-round run of named tactics with the old planner
(../m2to8_h200_fp16/sr_set.json): where both timed the same GEMV tactic, its time and its ratio to
fp16 cuBLAS in each run (two sessions' runs: each ratio against its own run's cuBLAS).

    python product_vs_s16.py
"""
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
old = {(r["k"], r["n"], r["m"]): r for r in json.load(open(HERE / "../m2to8_h200_fp16/sr_set.json"))["rows"]}
new = json.load(open(HERE / "product_set_fp16_m1to16_auto.json"))["rows"]
pairs = []
for r in new:
    a = old.get((r["k"], r["n"], r["m"]))
    t = r["tactic"].replace("auto:", "")
    if a is None or t not in a["cand"] or "gemv" not in t:
        continue
    before, after = a["cublas_us"] / a["cand"][t], r["cublas_us"] / r["us"]
    pairs.append((before, after))
    print(f'K×N {r["k"]}x{r["n"]} M={r["m"]:2d} {t}: {a["cand"][t]:6.1f} -> {r["us"]:6.1f} µs, '
          f'{before:.2f}x -> {after:.2f}x fp16 cuBLAS')
gm = lambda i: math.exp(sum(math.log(p[i]) for p in pairs) / len(pairs))  # noqa: E731
print(f"{len(pairs)} points, geomean {gm(0):.3f}x -> {gm(1):.3f}x")

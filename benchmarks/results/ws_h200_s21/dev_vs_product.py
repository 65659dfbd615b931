"""Development table: the kept form (`_c1_w2` variants of probe6_final_fp16.txt, call 7) against the
product's choice before the ws kernels (product_s20wheel_fp16_m17_127_auto.json: the twentieth
session's wheel, `bench --tactic auto`, call 1 of the same session on the same H200). Two calls, so
not the same rounds. Two probe columns: the fastest split the probe timed, and the split the
launcher's rule picks (gemv/skinny_ws_launch.cuh, choose_splits: waves x (stages + 8), >= 4
stages per CTA) from the same line's timings.

    python dev_vs_product.py probe6_final_fp16.txt product_s20wheel_fp16_m17_127_auto.json
"""
import json
import math
import re
import sys


def launcher_pick(k, tiles, pts, cost=8, min_stages=4):
    nst, best = k // 64, None
    for s, t, clusters in pts:
        if s > 1 and nst // s < min_stages:
            continue
        c = math.ceil(tiles * s / (clusters * s)) * (math.ceil(nst / s) + cost)
        if best is None or c < best[0]:
            best = (c, t)
    return best[1]


def main(probe, product):
    fastest, picked, cur = {}, {}, None
    for line in open(probe):
        m = re.match(r"== fp16 K=(\d+) N=(\d+)", line)
        if m:
            cur = (int(m[1]), int(m[2]))
            continue
        m = re.match(r"(\S+) m=(\d+) tiles=(\d+) (.*) \| best s=\d+ ([\d.]+) us", line)
        if m and "_c1_w2" in m[1] and not m[1].endswith("_db"):
            pts = [(int(a), float(b), int(c)) for a, b, c in (t.split(":") for t in m[4].split()) if b != "-"]
            key = (*cur, int(m[2]))
            fastest[key] = float(m[5])
            picked[key] = launcher_pick(cur[0], int(m[3]), pts)
    rows = json.load(open(product))["rows"]
    print("K x N        M   fastest  launcher  product us  product/fastest  product/launcher  product tactic")
    for r in rows:
        key = (r["k"], r["n"], r["m"])
        if key in fastest:
            t = r["tactic"].split("groupwise_")[1]
            print(f"{r['k']:>5}x{r['n']:<6} {r['m']:>3} {fastest[key]:8.2f} {picked[key]:9.2f} {r['us']:10.2f} "
                  f"{r['us'] / fastest[key]:12.2f} {r['us'] / picked[key]:16.2f}     {t}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

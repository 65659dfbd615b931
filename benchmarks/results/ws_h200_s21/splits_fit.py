"""The ws launcher's split rule (gemv/skinny_ws_launch.cuh, choose_splits) rated on the probe's
timings of every split (probe6_final_fp16.txt): for each (layer, variant, M), the time at the split
the rule picks over the fastest split. Two forms: waves = ceil(CTAs / CTAs resident in clusters of
s) (the rule kept, kCtaCost 8, kMinStages 4), and CTAs per SM (max of ceil(CTAs / 132) and the
waves). Development data only (the 16 layers of the probe); the product's own split is not timed
against the others here.

    python splits_fit.py probe6_final_fp16.txt
"""
import math
import re
import sys


def rows(path):
    cur, out = None, []
    for line in open(path):
        m = re.match(r"== fp16 K=(\d+) N=(\d+)", line)
        if m:
            cur = (int(m[1]), int(m[2]))
            continue
        m = re.match(r"(\S+) m=(\d+) tiles=(\d+) (.*) \| best", line)
        if m and "_c2" not in m[1]:
            pts = [(int(a), float(b), int(c)) for a, b, c in (t.split(":") for t in m[4].split()) if b != "-"]
            out.append((cur, m[1], int(m[2]), int(m[3]), pts))
    return out


def rate(data, form, cost, min_stages, sms=132):
    ratios = []
    for (k, _n), _v, _m, tiles, pts in data:
        nst = k // 64
        best = min(t for _s, t, _c in pts)
        pick = None
        for s, t, clusters in pts:
            if s > 1 and nst // s < min_stages:
                continue
            ctas, cap = tiles * s, clusters * s
            load = math.ceil(ctas / cap) if form == "waves" else max(math.ceil(ctas / sms), math.ceil(ctas / cap))
            c = load * (math.ceil(nst / s) + cost)
            if pick is None or c < pick[0]:
                pick = (c, t)
        ratios.append(pick[1] / best)
    return math.exp(sum(map(math.log, ratios)) / len(ratios)), max(ratios), len(ratios)


if __name__ == "__main__":
    data = rows(sys.argv[1])
    for form in ("waves", "per_sm"):
        for cost in (1, 2, 4, 8, 16):
            for min_stages in (1, 4):
                g, worst, n = rate(data, form, cost, min_stages)
                print(f"{form:7s} cost {cost:2d} min stages {min_stages}: chosen / fastest {g:.3f} (worst {worst:.2f}, {n} points)")

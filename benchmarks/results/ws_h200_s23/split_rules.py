"""The ws launcher's split rule (gemv/skinny_ws_launch.cuh, ws::choose_splits) against a form that
also counts CTAs per SM, rated on ws_probe.cu files that time every split (the twenty-third
session; H200). load = waves of resident clusters (the rule kept), or max(waves, ceil(CTAs / (132
SMs * f))) (f = 1: "CTAs per SM", tried, not kept). Cost = load * (stages per CTA + 8), at least 4
stages per CTA. The clusters resident per split are the H200's occupancy answers for the m32 (3
CTAs per SM) and m64 (2 per SM) kernels (ws_h200_s21/probe6_final_fp16.txt); with them one of the
two forms reproduces every pick the probe printed (checked).

    python split_rules.py FILE [COLUMN] [--base COLUMN]

Prints, over all points and over those the ws size rules take (heuristics.json: N <= 16384,
N*K <= 68M, K >= 2048 up to M = 48, K >= 3072 at M = 49-64), the geomean speed-up over fp16 cuBLAS
at each rule's pick, the chosen / fastest ratio, and with --base the first column's time at the
waves pick over COLUMN's at each rule's pick.
"""
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/
from ws_probe_lines import geomean as geo, points  # noqa: E402

CLUSTERS = {4: {1: 396, 2: 198, 3: 124, 4: 92, 6: 62, 8: 45, 12: 28, 16: 21},
            8: {1: 264, 2: 132, 3: 79, 4: 62, 6: 39, 8: 30, 12: 16, 16: 14}}


def rows(path):
    return [((p.k, p.n, p.nt), p.m, p.cublas, p.pick, p.times) for p in points(path)]


def pick(k, n, nt, avail, f=None, cost=8, min_stages=4, sms=132):
    nst, rg, best = k // 64, (n + 127) // 128, None
    for s in (1, 2, 3, 4, 6, 8, 12, 16):
        if s > 1 and nst // s < min_stages:
            break
        if s not in avail:
            continue
        ctas = rg * s
        load = math.ceil(ctas / (CLUSTERS[nt][s] * s))
        if f is not None:
            load = max(load, math.ceil(ctas / (sms * f)))
        c = load * (math.ceil(nst / s) + cost)
        if best is None or c < best[0]:
            best = (c, s)
    return best[1]


def in_ws_rules(k, n, m):
    if n > 16384 or n * k > 68e6:
        return False
    return (m <= 48 and k >= 2048) or (49 <= m <= 64 and k >= 3072)


if __name__ == "__main__":
    args = sys.argv[1:]
    base = None
    if "--base" in args:
        i = args.index("--base")
        base = args[i + 1]
        del args[i:i + 2]
    path, col = args[0], (args[1] if len(args) > 1 else "new")
    data = rows(path)
    for c in [col] + ([base] if base else []):
        if any(c not in t[s] for _kn, _m, _cb, _p, t in data for s in t):
            raise SystemExit(f"{path} has no column {c!r}")
    # The probe printed the pick of the rule its build had (waves for ab7 and final_ab, CTAs per
    # SM for held1, bf16_mixed and spread_*): one of the two forms must reproduce every pick, or
    # the tables are wrong.
    printed = [p for _kn, _m, _c, p, _t in data]
    for name, f in (("waves", None), ("CTAs per SM", 1.0)):
        if [pick(k, n, nt, t, f) for (k, n, nt), _m, _c, _p, t in data] == printed:
            print(f"(the probe's printed picks are the {name} form's)")
            break
    else:
        raise SystemExit("the cluster tables reproduce neither form's printed picks")
    for label, keep in (("all points", lambda k, n, m: True), ("in the ws size rules", in_ws_rules)):
        d = [r for r in data if keep(r[0][0], r[0][1], r[1])]
        if not d:
            continue
        print(f"{label} ({len(d)}), column {col}:")
        for name, f in (("waves (kept)", None), ("CTAs per SM", 1.0)):
            sel = [(t[pick(k, n, nt, t, f)][col], cb, min(v[col] for v in t.values()), t) for (k, n, nt), m, cb, p, t in d]
            line = (f"  {name:13s}: over fp16 cuBLAS {geo([cb / x for x, cb, _b, _t in sel]):.3f}, "
                    f"chosen / fastest {geo([x / b for x, _cb, b, _t in sel]):.3f} (worst {max(x / b for x, _cb, b, _t in sel):.2f})")
            if base:
                r = [t[pick(k, n, nt, t)][base] / t[pick(k, n, nt, t, f)][col] for (k, n, nt), m, cb, p, t in d]
                line += f"; {base} at waves / this: {geo(r):.3f} ({min(r):.2f}-{max(r):.2f}, {sum(x < 0.97 for x in r)} below 0.97)"
            print(line)
        if base:
            print(f"  {base} at waves over fp16 cuBLAS: {geo([cb / t[pick(k, n, nt, t)][base] for (k, n, nt), m, cb, p, t in d]):.3f}")

"""Per M, each token tile's speed-up over the 64-token tile (the 32-token one at m <= 24) at the
launcher's split, geomean [min, max] over the layers of a `ws_probe -DPROBE_NT_SWEEP` file; -v
also prints each layer's times.

    python nt_table.py nt_held1_fp16.txt [-v]
"""
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/
from ws_probe_lines import geomean, points  # noqa: E402

at_pick = collections.defaultdict(dict)  # (layer, m) -> nt -> the time at the launcher's split
for p in points(sys.argv[1]):
    if p.wrong:
        raise SystemExit(f"a wrong result: {p.k}x{p.n} M={p.m} NT={p.nt}")
    (t,) = p.times[p.pick].values()  # one form per run
    at_pick[((p.k, p.n), p.m)][p.nt] = t
verbose = "-v" in sys.argv
for M in sorted({m for _, m in at_pick}):
    ref = 4 if M <= 24 else 8
    rat = collections.defaultdict(list)
    for (layer, m), v in sorted(at_pick.items()):
        if m != M or ref not in v:
            continue
        for nt in sorted(v):
            rat[nt].append(v[ref] / v[nt])
        if verbose:
            print(" ", layer, "M=%d" % M, " ".join("NT%d %.2f" % (nt, v[nt]) for nt in sorted(v)))
    print("M=%d speed-up over NT=%d at the launcher split (geomean, min, max):" % (M, ref),
          "; ".join("NT%d %.3f [%.2f, %.2f] n=%d" % (nt, geomean(r), min(r), max(r), len(r)) for nt, r in sorted(rat.items())))

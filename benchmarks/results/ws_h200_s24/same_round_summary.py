"""Summaries of the same-round files of this folder (benchmarks/same_round_tactic.py output): per M,
the named ws tactic that takes M with the smallest token tile against the other column.

    python same_round_summary.py tiles_same_round_fp16.json   # the selection (now the smallest tile)
                                                              # against the m64 ws tactic
    python same_round_summary.py large_dev_fp16.json          # the smallest named ws tile against
    python same_round_summary.py large_held_fp16.json         # the selection (CUTLASS past the bounds)
"""
import collections
import json
import math
import sys


def tile(name):
    return int(name.split("skinny_m")[1].split("_")[0])


def g(r):
    return math.exp(sum(map(math.log, r)) / len(r))


def main(path):
    rows = json.load(open(path))["rows"]
    per_m = collections.defaultdict(lambda: ([], [], []))
    for r in rows:
        fits = sorted((tile(t), us) for t, us in r["cand"].items() if tile(t) >= r["m"])
        if not fits:
            continue
        if "_ws" in r["auto"] and tile(r["auto"]) < fits[0][0]:
            # the selection already runs a smaller tile: it is the new form, the named tactic the old
            new, old = r["auto_us"], fits[-1][1]
        else:
            new, old = fits[0][1], r["auto_us"]
        sp, before, after = per_m[r["m"]]
        sp.append(old / new)
        before.append(r["cublas_us"] / old)
        after.append(r["cublas_us"] / new)
    every = []
    for m in sorted(per_m):
        sp, before, after = per_m[m]
        every += sp
        print(f"M={m}: {g(sp):.3f}x [{min(sp):.3f}, {max(sp):.3f}] n={len(sp)}; over fp16 cuBLAS {g(before):.3f} -> {g(after):.3f}")
    allb = [x for v in per_m.values() for x in v[1]]
    alla = [x for v in per_m.values() for x in v[2]]
    print(f"all: {g(every):.3f}x [{min(every):.3f}, {max(every):.3f}] n={len(every)}; over fp16 cuBLAS {g(allb):.3f} -> {g(alla):.3f}")


if __name__ == "__main__":
    main(sys.argv[1])

"""Per (layer, M) of `bench --tactic all` JSONs: the fastest tactic of one subset of the compiled
tactics against the fastest of the rest, and the geomean per M of both (ratios over fp16 cuBLAS,
measured in the same run, so the two columns are comparable).

    python benchmarks/tile_subset_table.py 'x(48|96|192)x128_' results/tokens_sweep_h200_fp16_*.json

The subset is a regular expression on the tactic name (above: the tokens-per-tile values issue 16
added). Rows that `--screen` left out (not timed fully) count for neither side; a side with no fully
timed tactic at a point shows 0. Used for the tokens sweep in benchmarks/NOTES.md.
"""

import collections
import json
import math
import re
import sys


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs and min(xs) > 0 else 0.0


def main(pattern: str, files: list[str]) -> None:
    subset = re.compile(pattern)
    per_m = collections.defaultdict(list)
    for f in files:
        rows = json.load(open(f))["rows"]
        points = collections.defaultdict(list)
        for r in rows:
            if not r.get("screened"):
                points[(r["k"], r["n"], r["m"])].append(r)
        for (k, n, m), rs in sorted(points.items()):
            rest = max((r for r in rs if not subset.search(r["tactic"])), key=lambda r: r["speedup"], default=None)
            sub = max((r for r in rs if subset.search(r["tactic"])), key=lambda r: r["speedup"], default=None)
            a = rest["speedup"] if rest else 0.0
            b = sub["speedup"] if sub else 0.0
            per_m[m].append((a, max(a, b)))
            mark = "*" if b > a * 1.03 else " "
            layers = ",".join(rs[0].get("layers", []))[:40]
            print(f"{mark} K{k:6d} N{n:7d} M{m:5d}  rest {a:.3f} {rest['tactic'] if rest else '-'}"
                  f"  subset {b:.3f} {sub['tactic'] if sub else '-'}  {layers}")
    for m, v in sorted(per_m.items()):
        print(f"M={m}: {len(v)} layers; geomean best of the rest {geomean([a for a, _ in v]):.3f}, "
              f"with the subset {geomean([b for _, b in v]):.3f}; worst {min(a for a, _ in v):.3f} -> "
              f"{min(b for _, b in v):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

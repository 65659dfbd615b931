"""How far the heuristic's choice is from the fastest compiled tactic, offline, from `bench --tactic
all` JSONs: per (layer, M), the heuristic table (python/w4a16_build/heuristics.json, as installed or
on PYTHONPATH) ranks the tactics a JSON timed that also pass a name filter (e.g. the ones `default`
compiles), and its first is compared with the fastest of them.

    python benchmarks/selection_regret.py NAME_REGEX results/tokens_sweep_h200_fp16_*.json

Prints the share of points where the heuristic's choice is within 5% of the best and the worst
ratio, per M and overall (issue 16, item 4's test: >= 90% within 5%, none worse than 15%). Times
are the JSON's (`--screen` rows count with their short screening time). The models of the JSONs
must be left out of whatever the heuristic was derived from for this to be a validation.
"""

import collections
import json
import re
import sys

from w4a16_build.schema import parse_name
from w4a16_build.selection import rank_by_heuristic

SMS = {"H100": 132, "H200": 132}


def main(pattern: str, files: list[str]) -> None:
    keep = re.compile(pattern)
    per_m = collections.defaultdict(list)
    for f in files:
        d = json.load(open(f))
        sms = SMS[d["card"]]
        points = collections.defaultdict(dict)
        for r in d["rows"]:
            if keep.search(r["tactic"]):
                points[(r["k"], r["n"], r["m"])][r["tactic"]] = r["us"]
        for (k, n, m), times in sorted(points.items()):
            order = rank_by_heuristic([parse_name(t) for t in times], m, n, sms, dtype=d["dtype"],
                                      mode=d["mode"], group=d["group"], k=k)
            pick, best = order[0], min(times, key=times.get)
            ratio = times[best] / times[pick]       # 1.0: the heuristic picked the fastest
            per_m[m].append(ratio)
            if ratio < 0.95:
                print(f"K{k:6d} N{n:7d} M{m:5d}: heuristic {pick} at {ratio:.3f} of {best}")
    allr = [x for v in per_m.values() for x in v]
    for m, v in sorted(per_m.items()) + [("all", allr)]:
        print(f"M={m}: {len(v)} points, within 5% of the best at {sum(x >= 0.95 for x in v) / len(v):.0%}, "
              f"worst {min(v):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

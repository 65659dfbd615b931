"""Leave-one-model-out check of a nearest-neighbour selection, offline, from `bench --tactic all`
corpus JSONs (one model per file, named ..._MODEL.json): for each point (K, N, M) of one model, the
tactic with the best summed log relative time over the k nearest points of the other models
(distance |log N ratio| + |log K ratio| + wm * |log M ratio|) is compared with that point's fastest.

    python benchmarks/knn_lomo.py NAME_REGEX results/tokens_sweep_h200_fp16_*.json

Prints, per (k, wm), the share of points within 5% of the best and the worst ratio: the numbers
issue 16's item 4 asks of a selection (>= 90%, none below 0.85). A tactic a neighbour did not time
counts as 3x its best; `--screen` rows count with their short screening time.

    PYTHONPATH=. python benchmarks/knn_lomo.py ...   (from a checkout: it reads generator/)
"""

import math
import re
import sys

from generator.derive import load_points


def load(pattern: str, files: list[str]) -> list[tuple]:
    """(model, k, n, m, {tactic: us}) per point of each file (one model per file, named
    ..._MODEL.json), the tactics whose names match `pattern` (generator/derive.py load_points)."""
    keep = re.compile(pattern)
    data = []
    for f in files:
        model = f.rsplit("_", 1)[1][:-5]
        for (_, _, _, k, n, m), timed in load_points([f]).items():
            times = {t: us for t, us in timed.items() if keep.search(t)}
            if times:
                data.append((model, k, n, m, times))
    return data


def main(pattern: str, files: list[str]) -> None:
    data = load(pattern, files)
    tactics = sorted({t for d in data for t in d[4]})

    def log_rel(times):
        best = min(times.values())
        return {x: math.log(times.get(x, 3 * best) / best) for x in tactics}

    rel = [log_rel(d[4]) for d in data]
    for k in (1, 3, 5):
        for wm in (0.5, 1, 2, 4):
            ratios = []
            for p in data:
                others = [i for i, q in enumerate(data) if q[0] != p[0]]
                near = sorted(others, key=lambda i: abs(math.log(p[1] / data[i][1])) + abs(math.log(p[2] / data[i][2]))
                              + wm * abs(math.log(p[3] / data[i][3])))[:k]
                pick = min(p[4], key=lambda x: sum(rel[i][x] for i in near))
                ratios.append(min(p[4].values()) / p[4][pick])
            print(f"k={k} wm={wm}: {len(ratios)} points, within 5% of the best at "
                  f"{sum(r >= 0.95 for r in ratios) / len(ratios):.0%}, worst {min(ratios):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

"""`--from-results`: the smallest manifest that keeps every measured point within a tolerance.

Input: JSON files from `python -m w4a16_build.bench --tactic all` (every tactic timed at every
(shape, M)), each naming its dtype, mode and group. A point is (dtype, mode, group, K, N, M); a
tactic "covers" a point when its time there is within (1 + tolerance) of the point's best. A greedy
set cover (the tactic covering most uncovered points first, ties by name, so the result is
deterministic) picks the kernels. The same data yields the measured rows of the heuristic table:
for each point, the fastest *chosen* tactic.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .model import parse_name


def load_points(paths: list[str]) -> dict[tuple, dict[str, float]]:
    points: dict[tuple, dict[str, float]] = {}
    for p in paths:
        doc = json.loads(Path(p).read_text())
        for key in ("dtype", "mode", "group", "rows"):
            if key not in doc:
                raise ValueError(f"{p}: not a benchmark result (no {key!r}); make it with "
                                 "python -m w4a16_build.bench --tactic all --json FILE")
        for r in doc["rows"]:
            pt = (doc["dtype"], doc["mode"], int(doc["group"]), int(r["k"]), int(r["n"]), int(r["m"]))
            t = r["tactic"]
            if t in ("auto", ""):
                raise ValueError(f"{p}: rows name no tactic (run the benchmark with --tactic all)")
            parse_name(t)  # a row must name a real kernel
            points.setdefault(pt, {})
            points[pt][t] = min(points[pt].get(t, math.inf), float(r["us"]))
    if not points:
        raise ValueError("no benchmark rows in " + ", ".join(paths))
    return points


def cover(points: dict[tuple, dict[str, float]], tolerance: float) -> list[str]:
    ok = {pt: {t for t, us in ts.items() if us <= min(ts.values()) * (1 + tolerance)}
          for pt, ts in points.items()}
    uncovered = set(ok)
    chosen: list[str] = []
    while uncovered:
        counts: dict[str, int] = {}
        for pt in uncovered:
            for t in ok[pt]:
                counts[t] = counts.get(t, 0) + 1
        best = min(counts, key=lambda t: (-counts[t], t))
        chosen.append(best)
        uncovered = {pt for pt in uncovered if best not in ok[pt]}
    return sorted(chosen)


def measured_rows(points: dict[tuple, dict[str, float]], chosen: list[str]) -> list[dict]:
    rows = []
    keep = set(chosen)
    for (dtype, mode, group, k, n, m), ts in sorted(points.items()):
        cands = {t: us for t, us in ts.items() if t in keep}
        if cands:
            t = min(sorted(cands), key=lambda x: cands[x])
            rows.append({"dtype": dtype, "mode": mode, "group": group, "k": k, "n": n, "m": m,
                         "tactic": t, "us": round(cands[t], 3)})
    return rows


def manifest_text(chosen: list[str], sources: list[str], tolerance: float, n_points: int) -> str:
    lines = [
        "name: derived",
        "description: >",
        f"  Derived by `generate --from-results` (tolerance {tolerance:g}) from {', '.join(sources)}:",
        f"  the smallest set (greedy cover) whose best tactic is within {100 * tolerance:g}% of the",
        f"  best measured one at each of {n_points} (dtype, mode, group, shape, M) points.",
        "kernels_per_file: 1",
        "gemv: false  # the GEMV kernels the data chose are listed by name below",
        "kernels:",
    ]
    lines += [f"  - {t}" for t in chosen]
    return "\n".join(lines) + "\n"

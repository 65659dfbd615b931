"""Benchmark results -> the smallest manifest (and the heuristic table's measured rows).

    python -m w4a16_build.derive RESULTS.json... [--tolerance 0.03] [--write-manifest YAML]
        [--heuristics heuristics.json --write-heuristics OUT.json]

(`python -m generator.derive` in a source checkout.) The smallest manifest keeps every measured
point within a tolerance of its best tactic; the heuristic table is the one given with
--heuristics (usually python/w4a16_build/heuristics.json), its rules kept and its measured rows
replaced.

Input: JSON files from `python -m w4a16_build.bench --tactic all` (every tactic timed at every
(shape, M)), each naming its dtype, mode and group. A point is (dtype, mode, group, K, N, M); a
tactic "covers" a point when its time there is within (1 + tolerance) of the point's best. A greedy
set cover (the tactic covering most uncovered points first, ties by name, so the result is
deterministic) picks the kernels. The same data yields the measured rows of the heuristic table:
for each point, the fastest *chosen* tactic.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .model import FAMILIES, parse_name


def load_points(paths: list[str]) -> dict[tuple, dict[str, float]]:
    """{point: {tactic: microseconds}}, the fastest time each tactic got at each point.

    Files from different runs (chunks of a sweep) are put on one scale through the fp16 cuBLAS
    time each run took of the same point: a row's time is multiplied by
    (first run's cuBLAS time / its own run's cuBLAS time) for that point, so a card that ran a
    little faster or slower in one run does not decide which tactic wins.
    """
    points: dict[tuple, dict[str, float]] = {}
    ref_cublas: dict[tuple, float] = {}
    for p in paths:
        doc = json.loads(Path(p).read_text())
        for key in ("dtype", "mode", "group", "rows"):
            if key not in doc:
                raise ValueError(f"{p}: not a benchmark result (no {key!r}); make it with "
                                 "python -m w4a16_build.bench --tactic all --json FILE")
        for r in doc["rows"]:
            pt = (doc["dtype"], doc["mode"], int(doc["group"]), int(r["k"]), int(r["n"]), int(r["m"]))
            t = r["tactic"]
            if t in ("auto", "") or t.startswith("auto:"):
                raise ValueError(f"{p}: rows name no tactic (run the benchmark with --tactic all)")
            parse_name(t)  # a row must name a real kernel
            us = float(r["us"])
            base = r.get("cublas_us")
            if base:
                ref = ref_cublas.setdefault(pt[3:], float(base))  # cuBLAS fp16 is per (K, N, M)
                us *= ref / float(base)
            points.setdefault(pt, {})
            points[pt][t] = min(points[pt].get(t, math.inf), us)
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


def add_fallbacks(points: dict[tuple, dict[str, float]], chosen: list[str]) -> list[str]:
    """The cover only knows the group size that was measured. Group sizes that K=128 tiles cannot
    serve (a tile's K must divide the group: 64) still need a CUTLASS kernel at every M, so each
    (dtype, groupwise mode) gets the K=64 tile with the best geomean ratio to the best time over
    its points, unless the cover already holds a K=64 tile there."""
    out = list(chosen)
    pairs = sorted({(pt[0], pt[1]) for pt in points if pt[1] != "per_column"})
    for dtype, mode in pairs:
        cfgs = [parse_name(t) for t in out]
        if any(c.family == "cutlass" and c.dtype.value == dtype and c.mode.value == mode
               and c.tile.k == 64 for c in cfgs):
            continue
        score: dict[str, list[float]] = {}
        for pt, ts in points.items():
            if pt[:2] != (dtype, mode):
                continue
            best = min(ts.values())
            for t, us in ts.items():
                c = parse_name(t)
                if c.family == "cutlass" and c.tile.k == 64:
                    score.setdefault(t, []).append(math.log(us / best))
        if score:
            n_max = max(len(v) for v in score.values())
            full = {t: v for t, v in score.items() if len(v) == n_max}
            out.append(min(sorted(full), key=lambda t: sum(full[t]) / len(full[t])))
    return sorted(out)


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


def results_card(paths: list[str]) -> str:
    """The one card that benchmark results name ("card"). A result without one, or results of
    several cards, are refused (ValueError) for the heuristic table: a measured row is taken only on
    its own card (selection.measured_choice, measured_same_card), so one table holds one card's
    rows (a manifest alone may be derived from several cards' results)."""
    cards = {json.loads(Path(p).read_text()).get("card") for p in paths}
    if None in cards:
        raise ValueError("a result names no card (\"card\"): the table's measured rows need the card that timed "
                         "them (python -m w4a16_build.bench --json records it)")
    if len(cards) > 1:
        raise ValueError(f"results of several cards ({', '.join(sorted(cards))}): derive one card's results at a time")
    return cards.pop()


def manifest_text(chosen: list[str], sources: list[str], tolerance: float, n_points: int, *,
                  name: str = "derived", n_fallbacks: int = 0) -> str:
    lines = [
        f"name: {name}",
        "description: >",
        f"  Derived by `python -m w4a16_build.derive` (tolerance {tolerance:g}) from",
        f"  {', '.join(sources)}: a greedy set cover whose best tactic is within",
        f"  {100 * tolerance:g}% of the best measured one at each of {n_points} (dtype, mode, group, shape, M)",
        f"  points, plus {n_fallbacks} K=64 tile(s) so that group size 64 runs at every M.",
        "kernels_per_file: 4",
    ]
    # Families whose omitted section means "all of them" (model.py) are switched off: the kernels
    # the data chose are listed by name below.
    lines += [f"{cls.manifest_key}: false  # the {cls.family} kernels the data chose are listed by name below"
              for cls in FAMILIES if cls.section_default_all]
    lines += ["kernels:"]
    lines += [f"  - {t}" for t in chosen]
    return "\n".join(lines) + "\n"


def heuristics_text(table: dict) -> str:
    """JSON with one line per rule and per measured row, so diffs of a re-derivation are readable."""
    parts = []
    for key, value in table.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows = ",\n".join("  " + json.dumps(v) for v in value)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", metavar="JSON", help="results of `python -m w4a16_build.bench --tactic all`")
    p.add_argument("--tolerance", type=float, default=0.03,
                   help="allowed slowdown against the best measured tactic (default 0.03)")
    p.add_argument("--write-manifest", metavar="YAML", help="write the manifest here (default: standard output)")
    p.add_argument("--name", default="derived", help="the derived manifest's name")
    p.add_argument("--heuristics", metavar="PATH", help="the heuristic table to extend (its rules are kept)")
    p.add_argument("--write-heuristics", metavar="JSON",
                   help="write the table of --heuristics with its measured rows replaced by these results")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m w4a16_build.derive") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not 0 <= args.tolerance < 1:
        print(f"error: --tolerance must be in [0, 1), got {args.tolerance}", file=sys.stderr)
        return 2
    if args.write_heuristics and not args.heuristics:
        print("error: --write-heuristics needs --heuristics PATH (the table whose rules to keep)", file=sys.stderr)
        return 2
    try:
        points = load_points(args.results)
        card = results_card(args.results) if args.write_heuristics else None   # a manifest may mix cards
        table = json.loads(Path(args.heuristics).read_text()) if args.heuristics else None
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    covered = cover(points, args.tolerance)
    chosen = add_fallbacks(points, covered)
    text = manifest_text(chosen, [os.path.basename(p) for p in args.results], args.tolerance, len(points),
                         name=args.name, n_fallbacks=len(chosen) - len(covered))
    if args.write_manifest:
        with open(args.write_manifest, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.write_heuristics:
        table["measured"] = measured_rows(points, chosen)
        table["measured_from"] = [os.path.basename(p) for p in args.results]
        table["measured_card"] = card
        with open(args.write_heuristics, "w") as f:
            f.write(heuristics_text(table))
    print(f"{len(covered)} kernels cover {len(points)} points within {100 * args.tolerance:g}%; "
          f"{len(chosen) - len(covered)} K=64 fallbacks added for group sizes below 128", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m generator.derive"))

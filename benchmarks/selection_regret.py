"""How far the heuristic's choice is from the fastest compiled tactic, offline, from `bench --tactic
all` JSONs: per (layer, M), the heuristic table (python/w4a16_build/heuristics.json, as installed or
on PYTHONPATH) ranks the tactics a JSON timed that also pass a name filter (e.g. the ones `default`
compiles), and its first is compared with the fastest of them.

    python benchmarks/selection_regret.py NAME_REGEX results/tokens_sweep_h200_fp16_*.json
    python benchmarks/selection_regret.py --leave-models-out NAME_REGEX results/tokens_sweep_h200_fp16_*.json
    python benchmarks/selection_regret.py --fit-on A.json,B.json NAME_REGEX C.json D.json

Prints the share of points where the heuristic's choice is within 5% of the best and the worst
ratio, per M and overall (issue 16, item 4's test: >= 90% within 5%, none worse than 15%), and the
geomean speed-up over the rows' fp16 cuBLAS time of the choice and of the fastest tactic. Times
are the JSON's as derive reads them (generator/derive.py load_points; `--screen` rows count with
their short screening time). With --leave-models-out (one model per file), each file's points are
ranked with the table's "cost" rule refitted (generator/tile_costs.py) on the other files only: the
fitted rule checked on models left out of its fit. With --fit-on, the rule is refitted on the
comma-separated files and checked on the others (models in no fit; a file in both lists is
refused). Without either, the models of the JSONs must be left out of whatever the table was
derived from for this to be a validation.
"""

import argparse
import collections
import copy
import json
import math
import os
import re
import sys
from unittest import mock

from generator import tile_costs
from generator.derive import load_points
from w4a16_build import selection
from w4a16_build.bench import geomean
from w4a16_build.schema import parse_name


def table_fitted_on(files: list[str]) -> dict:
    """The heuristic table with its "cost" rule refitted (terms and residuals) on these files."""
    t = copy.deepcopy(selection.heuristic_table())
    rule = next(r for r in t["rules"] if r.get("tokens") == tile_costs.RULE_TOKENS)
    rule.update(tile_costs.fitted(files))
    return t


def regret(f: str, keep) -> dict[int, list[tuple[float, float, float]]]:
    """{M: [(fastest / choice time, cuBLAS / choice time, cuBLAS / fastest time) per point]}."""
    with open(f) as fh:
        doc = json.load(fh)
    sms = tile_costs.SMS[doc["card"]]
    if doc.get("complete") is False:
        print(f"{f}: a partial run (complete: false), its finished layers checked", file=sys.stderr)
    # (K, N, M, tactic) timed only by `--screen`'s short round: a miss there may be partly noise.
    screened = {(r["k"], r["n"], r["m"], r["tactic"]) for r in doc["rows"] if r.get("screened")}
    cublas = {(r["k"], r["n"], r["m"]): r["cublas_us"] for r in doc["rows"] if r.get("cublas_us")}
    per_m = collections.defaultdict(list)
    for (dtype, mode, group, k, n, m), timed in sorted(load_points([f]).items()):
        times = {t: us for t, us in timed.items() if keep.search(t)}
        if not times:
            continue
        order = selection.rank_by_heuristic([parse_name(t) for t in times], m, n, sms, dtype=dtype,
                                            mode=mode, group=group, k=k, card=doc["card"])
        # As gemm() on Hopper: its own kernels before the SM80 families' PTX (a run without
        # W4A16_FORCE_SM80 times both); a forced run has only SM80 tactics and keeps its order.
        order.sort(key=lambda t: "90a" not in parse_name(t).archs)
        pick, best = order[0], min(times, key=times.get)
        ratio = times[best] / times[pick]       # 1.0: the heuristic picked the fastest
        base = cublas.get((k, n, m), math.nan)
        per_m[m].append((ratio, base / times[pick], base / times[best]))
        if ratio < 0.95:
            note = " (its time: a screening round)" if (k, n, m, pick) in screened else ""
            print(f"K{k:6d} N{n:7d} M{m:5d}: heuristic {pick} at {ratio:.3f} of {best}{note}")
    return per_m


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python benchmarks/selection_regret.py", description=__doc__.split("\n\n")[0])
    how = p.add_mutually_exclusive_group()
    how.add_argument("--leave-models-out", action="store_true",
                     help="rank each file with the cost rule refitted on the other files")
    how.add_argument("--fit-on", metavar="A.json,B.json", help="rank with the cost rule refitted on these files")
    p.add_argument("pattern", metavar="NAME_REGEX")
    p.add_argument("files", nargs="+", metavar="JSON")
    args = p.parse_args(argv)
    keep = re.compile(args.pattern)
    fit_on = args.fit_on.split(",") if args.fit_on else None
    checked = list(map(os.path.realpath, args.files))
    if len(set(checked)) != len(checked):
        p.error("a file is named twice (it would stay in its own fit with --leave-models-out)")
    if fit_on:
        both = set(map(os.path.realpath, fit_on)) & set(checked)
        if both:
            p.error(f"checked on files it is fitted on (in-sample): {', '.join(sorted(both))}")
        table = table_fitted_on(fit_on)
    per_m = collections.defaultdict(list)
    for f in args.files:
        if args.leave_models_out:
            table = table_fitted_on([g for g in args.files if g != f])
        if args.leave_models_out or fit_on:
            with mock.patch.object(selection, "heuristic_table", lambda t=table: t):
                got = regret(f, keep)
        else:
            got = regret(f, keep)
        for m, v in got.items():
            per_m[m] += v
    allr = [x for v in per_m.values() for x in v]
    for m, v in sorted(per_m.items()) + [("all", allr)]:
        ratios = [x[0] for x in v]
        line = (f"M={m}: {len(v)} points, within 5% of the best at {sum(x >= 0.95 for x in ratios) / len(v):.0%}, "
                f"worst {min(ratios):.3f}")
        if m != "all" and not any(math.isnan(x[1]) for x in v):
            line += (f"; over fp16 cuBLAS (geomean): choice {geomean([x[1] for x in v]):.3f}, "
                     f"fastest {geomean([x[2] for x in v]):.3f}")
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])

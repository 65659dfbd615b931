"""Per-tile costs for the CUTLASS family's "cost" ranking, fitted from `bench --tactic all` results.

    python -m generator.tile_costs RESULTS.json ... [--heuristics heuristics.json --write-heuristics OUT.json]

The model: a call takes waves x K x c(tile), with waves = KernelConfig.waves (whole waves of output
tiles over the SMs, or stream-K's even share), K the layer's and c one constant per tile (the name
without dtype and mode), fitted as the median of us / (waves x K) over every timed point. Only the
ranking matters (K is the same for every tile of a call). Rows `--screen` did not time fully count
with their screening time. Checked by leaving whole models out (benchmarks/selection_regret.py
--leave-models-out, benchmarks/NOTES.md); a test re-derives the shipped constants from the shipped
results. The constants are per SM count: results of cards with different counts are refused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict

from .derive import heuristics_text
from .model import KernelConfig, parse_name

RULE_TOKENS = "cost"
SMS = {"H100": 132, "H200": 132}   # the cards bench results name, and their SM counts


def fit(rows: list[dict], sms: int) -> dict[str, float]:
    """{tile_key: median us / (waves x K)} over the CUTLASS rows of bench results (4 significant
    digits, so the table reads and re-derives exactly)."""
    ratios = defaultdict(list)
    for r in rows:
        cfg = parse_name(r["tactic"])
        if not isinstance(cfg, KernelConfig):
            continue
        ratios[cfg.tile_key].append(r["us"] / (cfg.waves(r["m"], r["n"], sms) * r["k"]))
    return {key: float(f"{statistics.median(v):.4g}") for key, v in sorted(ratios.items())}


def fit_files(paths: list[str]) -> dict[str, float]:
    rows, sms = [], set()
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        if d.get("card") not in SMS:
            raise SystemExit(f"error: {p}: card {d.get('card')!r} has no known SM count ({sorted(SMS)})")
        rows += d["rows"]
        sms.add(SMS[d["card"]])
    if len(sms) != 1:
        raise SystemExit(f"error: results from cards with different SM counts: {sorted(sms)}")
    return fit(rows, sms.pop())


def main(argv: list[str] | None = None, prog: str = "python -m generator.tile_costs") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", metavar="JSON")
    p.add_argument("--heuristics", metavar="PATH", help="a heuristic table whose cost rule to refit")
    p.add_argument("--write-heuristics", metavar="JSON", help="write that table with the new costs here")
    args = p.parse_args(argv)
    costs = fit_files(args.results)
    if not args.heuristics:
        print(json.dumps(costs, indent=1))
        return 0
    with open(args.heuristics) as f:
        table = json.load(f)
    rules = [r for r in table["rules"] if r.get("tokens") == RULE_TOKENS]
    if len(rules) != 1:
        print(f"error: {args.heuristics} has {len(rules)} rules with tokens '{RULE_TOKENS}' (needs one)", file=sys.stderr)
        return 2
    rules[0]["cost_per_wave"] = costs
    with open(args.write_heuristics or args.heuristics, "w") as f:
        f.write(heuristics_text(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())

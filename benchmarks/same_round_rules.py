"""Score a candidate size rule offline on `benchmarks/same_round_tactic.py` JSONs: at the points the
rule covers, its tactic's time from the same rounds replaces the selection's (`auto`); elsewhere the
selection's stands. Per M and overall: geomean speed-up over the rows' fp16 cuBLAS of the selection,
of the rule and of the fastest tactic timed (`auto` and the candidates), the share of points within
5% of that fastest, the worst ratio, and the rule against the selection where it applies.

    python benchmarks/same_round_rules.py TACTIC "m=2-8 min_nk=60e6 max_n=60000" A.json [B.json ...]

TACTIC: a candidate's name with or without its "{dtype}_int4_{mode}_" prefix (e.g.
skinny_m16_r32_s4). Bounds (all optional, inclusive): m=LO-HI, min_nk / max_nk (N*K), min_n / max_n,
min_k / max_k; tail=OF:MOST, M 1 to MOST tokens past a multiple of OF (heuristics.json's tail_of /
tail_max, e.g. tail=128:16 for the dense rule). A point whose row did not time TACTIC keeps the
selection's time. Used for the M = 2-8
rules (benchmarks/NOTES.md, "Sixteenth session"): set a rule from development files, then score it
once on held-out ones.
"""

import json
import math
import sys

from w4a16_build.bench import geomean

KEYS = ("min_nk", "max_nk", "min_n", "max_n", "min_k", "max_k")


def parse_bounds(text: str) -> dict:
    out = {}
    for part in text.split():
        key, _, value = part.partition("=")
        if key == "m":
            lo, _, hi = value.partition("-")
            out["m"] = (int(lo), int(hi or lo))
        elif key in KEYS:
            out[key] = float(value)
        elif key == "tail":
            of, _, most = value.partition(":")
            out["tail"] = (int(of), int(most))
            if not 1 <= out["tail"][1] < out["tail"][0]:
                raise ValueError(f"tail={value}: needs OF:MOST with 1 <= MOST < OF")
        else:
            raise ValueError(f"unknown bound {part!r}: use m=LO-HI, tail=OF:MOST or one of {', '.join(KEYS)}")
    return out


def covers(b: dict, k: int, n: int, m: int) -> bool:
    lo, hi = b.get("m", (1, 1 << 30))
    of, most = b.get("tail", (1 << 30, 1 << 30))
    nk = n * k
    return (lo <= m <= hi and 1 <= m % of <= most and b.get("min_nk", 0) <= nk <= b.get("max_nk", math.inf)
            and b.get("min_n", 0) <= n <= b.get("max_n", math.inf) and b.get("min_k", 0) <= k <= b.get("max_k", math.inf))


def short(name: str) -> str:
    for mode in ("groupwise_zero", "groupwise", "per_column"):
        for dt in ("fp16", "bf16"):
            prefix = f"{dt}_int4_{mode}_"
            if name.startswith(prefix):
                return name[len(prefix):]
    return name


def points(files: list[str]) -> list[dict]:
    out = []
    for f in files:
        with open(f) as fh:
            doc = json.load(fh)
        for r in doc["rows"] if isinstance(doc, dict) else doc:
            cand = {short(t): us for t, us in r["cand"].items()}
            out.append(dict(k=r["k"], n=r["n"], m=r["m"], cublas=r["cublas_us"], auto=r["auto_us"],
                            fastest=min([r["auto_us"], *cand.values()]), cand=cand))
    return out


def score(pts: list[dict], tactic: str, bounds: dict) -> dict:
    tactic = short(tactic)
    rows = []
    for p in pts:
        use = covers(bounds, p["k"], p["n"], p["m"]) and tactic in p["cand"]
        rows.append((p, p["cand"][tactic] if use else p["auto"], use))
    if not rows:
        return {"points": 0}
    used = [p["auto"] / t for p, t, u in rows if u]
    return {
        "points": len(rows), "covered": len(used),
        "selection": geomean([p["cublas"] / p["auto"] for p, _, _ in rows]),
        "rule": geomean([p["cublas"] / t for p, t, _ in rows]),
        "fastest": geomean([p["cublas"] / p["fastest"] for p, _, _ in rows]),
        "within_5pct": sum(p["fastest"] / t >= 0.95 for p, t, _ in rows) / len(rows),
        "worst": min(p["fastest"] / t for p, t, _ in rows),
        "rule_vs_selection": geomean(used) if used else None,
        "rule_vs_selection_min": min(used) if used else None,
    }


def main(argv):
    tactic, bounds, files = argv[0], parse_bounds(argv[1]), argv[2:]
    pts = points(files)
    for m in sorted({p["m"] for p in pts}) + [None]:
        s = score([p for p in pts if m is None or p["m"] == m], tactic, bounds)
        tag = "all" if m is None else f"M={m}"
        vs = (f"rule/selection {s['rule_vs_selection']:.3f} (min {s['rule_vs_selection_min']:.3f})"
              if s["rule_vs_selection"] else "rule covers none")
        print(f"{tag:6s} {s['points']:3d} points, {s['covered']:3d} covered: over cuBLAS {s['selection']:.3f} -> "
              f"{s['rule']:.3f} (fastest {s['fastest']:.3f}); within 5% {s['within_5pct']:.0%}, worst "
              f"{s['worst']:.3f}; {vs}")


if __name__ == "__main__":
    main(sys.argv[1:])

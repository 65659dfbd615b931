"""What the corpus sweep covers (issue 16, item 2: "record what was covered"): per model of
benchmarks/shapes.yaml, which of its distinct layer shapes a `bench --tactic all` result timed at
large M (M >= 65), in which dtype / mode / group, at which M, with how many CUTLASS tiles, on which
card, from which files. A result counts for every model that has the shape (layers recur).

    PYTHONPATH=python:. python benchmarks/sweep_coverage.py [RESULTS.json ...]

Without files, the committed results (benchmarks/results/*.json and */*.json). Files that are not
`--tactic all` bench results are skipped; a partial run ("complete": false) is marked. Prints a
Markdown table.
"""

import collections
import glob
import json
import os
import sys

from generator.model import KernelConfig, parse_name
from w4a16_build import corpus

LARGE_M = 65
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def committed_results() -> list[str]:
    return sorted(glob.glob(os.path.join(RESULTS, "*.json")) + glob.glob(os.path.join(RESULTS, "*", "*.json")))


def coverage(paths: list[str]) -> dict[str, dict]:
    """{model: {"shapes": n, "timed": {(dtype, mode, group, card): {"shapes", "m", "tiles", "files"}}}}."""
    by_shape = collections.defaultdict(set)
    models = {}
    for layer in corpus.all_layers():
        if layer.model != "odd":
            by_shape[(layer.k, layer.n)].add(layer.model)
            models.setdefault(layer.model, set()).add((layer.k, layer.n))
    out = {m: {"shapes": len(s), "timed": {}} for m, s in models.items()}
    for p in paths:
        try:
            with open(p) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or doc.get("tactic") != "all" or "rows" not in doc:
            continue
        inside = os.path.realpath(p).startswith(os.path.realpath(RESULTS) + os.sep)
        name = (os.path.relpath(p, RESULTS) if inside else p) + (" (partial)" if doc.get("complete") is False else "")
        key = (doc["dtype"], doc["mode"], doc["group"], doc.get("card", "?"))
        for r in doc["rows"]:
            cfg = parse_name(r["tactic"])
            if r["m"] < LARGE_M or not isinstance(cfg, KernelConfig):
                continue
            for model in by_shape.get((r["k"], r["n"]), ()):
                t = out[model]["timed"].setdefault(key, {"shapes": set(), "m": set(), "tiles": set(), "files": set()})
                t["shapes"].add((r["k"], r["n"]))
                t["m"].add(r["m"])
                t["tiles"].add(cfg.tile_key)
                t["files"].add(name)
    return out


def table(cov: dict[str, dict]) -> str:
    lines = ["| model | layer shapes | timed (dtype mode group, card) | shapes timed | M | CUTLASS tiles | files |",
             "|---|---|---|---|---|---|---|"]
    for model, c in cov.items():
        if not c["timed"]:
            lines.append(f"| {model} | {c['shapes']} | none | 0 | | | |")
        for (dtype, mode, group, card), t in sorted(c["timed"].items()):
            ms = ", ".join(map(str, sorted(t["m"])))
            lines.append(f"| {model} | {c['shapes']} | {dtype} {mode} g{group}, {card} | {len(t['shapes'])} | {ms} "
                         f"| {len(t['tiles'])} | {', '.join(sorted(t['files']))} |")
    swept = sum(1 for c in cov.values() if any(len(t["shapes"]) == c["shapes"] for t in c["timed"].values()))
    lines.append(f"\n{swept} of {len(cov)} models have every layer shape timed in some dtype, mode and group.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(coverage(sys.argv[1:] or committed_results())))

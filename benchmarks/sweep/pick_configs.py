"""Pick the configurations worth sweeping in the other (dtype, mode) pairs.

    python benchmarks/sweep/pick_configs.py RESULTS.json --count 24 --pairs bf16:groupwise,fp16:per_column

Reads `bench --tactic all` results of one (dtype, mode) (the full fp16 groupwise sweep), takes the
greedy cover at 3% (`python -m w4a16_build.derive`), then adds the configurations that are within 10%
of the best at the most points, up to --count. Prints a W4A16_KERNELS value: those configurations
under every pair asked for, plus every GEMV variant of those pairs (seconds each to build).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from generator.derive import cover, load_points  # noqa: E402
from generator.model import parse_name  # noqa: E402


def suffix(name: str) -> str:
    cfg = parse_name(name)
    prefix = f"{cfg.dtype.value}_int4_{cfg.mode.value}_"
    assert name.startswith(prefix), name
    return name[len(prefix):]


def pick(points, count: int) -> list[str]:
    chosen = [suffix(t) for t in cover(points, 0.03) if parse_name(t).family == "cutlass"]
    near: dict[str, int] = {}
    for ts in points.values():
        best = min(ts.values())
        for t, us in ts.items():
            if parse_name(t).family == "cutlass" and us <= best * 1.10:
                near[suffix(t)] = near.get(suffix(t), 0) + 1
    for s in sorted(near, key=lambda s: (-near[s], s)):
        if len(chosen) >= count:
            break
        if s not in chosen:
            chosen.append(s)
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--pairs", required=True, help="dtype:mode,dtype:mode,...")
    args = ap.parse_args()
    configs = pick(load_points(args.results), args.count)
    names = []
    for pair in args.pairs.split(","):
        dtype, mode = pair.split(":")
        names += [f"{dtype}_int4_{mode}_{c}" for c in configs]
        names.append(f"{dtype}_int4_{mode}_gemv_*")
    print(",".join(names))


if __name__ == "__main__":
    main()

"""The selection's choice for each layer and M, computed offline by whichever tree is on PYTHONPATH
(e.g. an older commit checked out with `git worktree add`), among one build's fp16 groupwise kernels
(the kernel names a bench JSON of that build records), Hopper's own before the SM80 PTX as gemm()
orders them on an H100/H200 (132 SMs), on the card the bench JSON names (which measured rows
apply; a tree whose ranking takes no card ranks as it did):

    PYTHONPATH=OLD/python:OLD python benchmarks/selection_picks.py SPEC M_LIST BENCH.json OUT.json

SPEC: corpus names or "shapes:KxN;KxN;..." (K x N pairs).

benchmarks/same_round_picks.py then times those choices against the installed package's own.
"""

import inspect
import json
import sys

from w4a16_build import selection
from w4a16_build.schema import parse_name
from w4a16_build.corpus import shapes as corpus_shapes


def layers(spec):
    """SPEC: corpus names (benchmarks/shapes.yaml) or "shapes:KxN;KxN;..." (as same_round_tactic.py)."""
    if spec.startswith("shapes:"):
        return [(int(a), int(b), []) for a, b in (s.split("x") for s in spec[7:].split(";"))]
    return corpus_shapes(spec)


def main(argv):
    spec, ms, build_json, out = argv[0], [int(v) for v in argv[1].split(",")], argv[2], argv[3]
    with open(build_json) as f:
        doc = json.load(f)
    names = doc["build"]["kernel_names"]
    card = {"card": doc["card"]} if "card" in inspect.signature(selection.rank_by_heuristic).parameters else {}
    cfgs = [parse_name(n) for n in names if n.startswith("fp16_int4_groupwise_")]
    picks = {}
    for k, n, labels in layers(spec):
        for m in ms:
            ok = [c for c in cfgs if not (getattr(c, "max_m", 0) and c.max_m < m)]
            order = selection.rank_by_heuristic(ok, m, n, 132, dtype="fp16", mode="groupwise", group=128, k=k,
                                               **card)
            order.sort(key=lambda t: "90a" not in parse_name(t).archs)
            picks[f"{k}x{n}x{m}"] = order[0]
    with open(out, "w") as f:
        json.dump(picks, f, indent=1)
    print(len(picks), "picks")


if __name__ == "__main__":
    main(sys.argv[1:])

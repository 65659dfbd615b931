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

from same_round_tactic import layers  # SPEC: corpus names or shapes:KxN;KxN (as the timing scripts)


def main(argv):
    spec, ms, build_json, out = argv[0], [int(v) for v in argv[1].split(",")], argv[2], argv[3]
    with open(build_json) as f:
        doc = json.load(f)
    names = doc["build"]["kernel_names"]
    card = {"card": doc["card"]} if "card" in inspect.signature(selection.rank_by_heuristic).parameters else {}
    # fp16 groupwise only: the zero-point kernels' names start with "fp16_int4_groupwise_" too.
    cfgs = [c for c in map(parse_name, names) if c.axis_values()["dtype"] == "fp16"
            and c.axis_values()["mode"] == "groupwise"]
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

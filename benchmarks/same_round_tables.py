"""The selection under two heuristics tables, timed in the same interleaved rounds (with fp16 cuBLAS
in both layouts and tinygemm), per layer and M: how a change of heuristics.json moves each call.

    python benchmarks/same_round_tables.py SPEC M_LIST DTYPE OUT.json OLD_HEURISTICS.json

"new" is the installed package's table, "old" the given file (e.g. `git show HEAD~1:python/
w4a16_build/heuristics.json > old.json`). SPEC as in same_round_tactic.py; groupwise, group 128.
Used to validate issue 15's warp-split rules on models left out of them (benchmarks/NOTES.md).
"""

import json
import os
import sys
import tempfile
import time

# The selection's own choices, not a tuned one: an empty tuning cache for this run.
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")

import torch  # noqa: E402

import w4a16_build.selection as selection  # noqa: E402
from w4a16_build.bench import CublasBench, OursBench, TinygemmBench  # noqa: E402
from w4a16_build.timing import SETTLE_S, time_interleaved  # noqa: E402

from same_round_tactic import layers  # noqa: E402


def main(argv):
    spec, ms, dtype, out = argv[0], [int(v) for v in argv[1].split(",")], argv[2], argv[3]
    new_table = selection.heuristic_table()
    with open(argv[4]) as f:
        old_table = json.load(f)

    def pick(ours, m, table):
        selection.clear_memo()
        selection.heuristic_table = lambda: table
        try:
            return ours.picked(m)
        finally:
            selection.heuristic_table = lambda: new_table
            selection.clear_memo()

    rows, t0 = [], time.time()
    for k, n, labels in layers(spec):
        if k % 128:
            print(f"skip {k}x{n}: K is not a multiple of 128")
            continue
        cub, ours, tiny = CublasBench(k, n), OursBench(k, n, dtype, "groupwise", 128), TinygemmBench(k, n)
        for m in ms:
            time.sleep(SETTLE_S)
            old, new = pick(ours, m, old_table), pick(ours, m, new_table)
            fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, old), ours.copies)]
            if new != old:
                fns.append((ours.fn(m, new), ours.copies))
            if tiny.error is None:
                fns.append((tiny.fn(m), tiny.copies))
            s = time_interleaved(fns)
            r = dict(k=k, n=n, m=m, layers=labels, cublas_us=min(s[:2]) * 1e6, old=old, old_us=s[2] * 1e6, new=new,
                     new_us=(s[3] if new != old else s[2]) * 1e6,
                     tinygemm_us=s[-1] * 1e6 if tiny.error is None else None)
            rows.append(r)
            print(f"{k}x{n} M={m}: cuBLAS {r['cublas_us']:.2f} old {r['old_us']:.2f} new {r['new_us']:.2f} ({new})",
                  flush=True)
        del cub, ours, tiny
        torch.cuda.empty_cache()
        with open(out, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), dtype=dtype, spec=spec, seconds=time.time() - t0,
                           rows=rows), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""tune() judged in the same interleaved rounds as the choice it replaces: for each layer, the
selection's choice per M before tuning and after `tune()` are timed together (with fp16 cuBLAS in
both layouts), so that the card's state (clock, power cap) is the same for both. Issue 16 item 5:
"tune() of a shape can never make that shape slower than untuned by more than noise".

    python benchmarks/same_round_tuned.py SPEC M_LIST DTYPE OUT.json [BUCKETS]

SPEC as in same_round_tactic.py; BUCKETS are the M values tune() is given (default 1024,2048,4096).
Groupwise, group 128. Rows where tuning kept the untuned choice are timed once (ratio 1 by
construction) and marked `same`.
"""

import json
import os
import sys
import tempfile
import time

# An empty tuning cache of this run's own: the "before" choices are the heuristic's.
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
os.environ.pop("W4A16_TUNE", None)                 # no tuning on first use either

import torch  # noqa: E402

import w4a16_build  # noqa: E402
import w4a16_build.selection as selection  # noqa: E402
from w4a16_build.bench import CublasBench, OursBench  # noqa: E402
from w4a16_build.timing import SETTLE_S, time_interleaved  # noqa: E402

from same_round_tactic import layers  # noqa: E402


def main(argv):
    spec, ms, dtype, out = argv[0], [int(v) for v in argv[1].split(",")], argv[2], argv[3]
    buckets = [int(v) for v in argv[4].split(",")] if len(argv) > 4 else [1024, 2048, 4096]
    rows, t0 = [], time.time()
    for k, n, labels in layers(spec):
        if k % 128:
            print(f"skip {k}x{n}: K is not a multiple of 128")
            continue
        cub, ours = CublasBench(k, n), OursBench(k, n, dtype, "groupwise", 128)
        selection.clear_memo()
        before = {m: ours.picked(m) for m in ms}
        w4a16_build.tune(n, k, dtype, "groupwise", 128, m_values=buckets, progress=False)
        selection.clear_memo()
        after = {m: ours.picked(m) for m in ms}
        for m in ms:
            time.sleep(SETTLE_S)
            fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, before[m]), ours.copies)]
            if after[m] != before[m]:
                fns.append((ours.fn(m, after[m]), ours.copies))
            s = time_interleaved(fns)
            r = dict(k=k, n=n, m=m, layers=labels, cublas_us=min(s[:2]) * 1e6, before=before[m],
                     before_us=s[2] * 1e6, after=after[m], after_us=s[-1] * 1e6, same=after[m] == before[m])
            rows.append(r)
            print(f"{k}x{n} M={m}: cuBLAS {r['cublas_us']:.1f} untuned {r['before_us']:.1f} tuned "
                  f"{r['after_us']:.1f} ({'same' if r['same'] else r['after']})", flush=True)
        del cub, ours
        torch.cuda.empty_cache()
        with open(out, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), dtype=dtype, spec=spec, buckets=buckets,
                           seconds=time.time() - t0, rows=rows), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

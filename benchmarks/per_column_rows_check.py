"""One-off check of the per-column measured-rows fix (benchmarks/NOTES.md, "Per-column calls never found
their measured rows"): on the shape set, the selection with `measured_choice` switched off (as before the
fix) and on, timed in the same interleaved rounds with fp16 cuBLAS.

    python benchmarks/per_column_rows_check.py 1,16,64,256,1024 fp16 OUT.json
"""

import json
import os
import math
import sys
import tempfile
import time

# The selection's own choices, not a tuned one: an empty tuning cache for this run.
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")

import torch  # noqa: E402

import w4a16_build.selection as S  # noqa: E402
from w4a16_build.bench import SHAPE_SET, CublasBench, OursBench  # noqa: E402
from w4a16_build.timing import SETTLE_S, time_interleaved  # noqa: E402

ms, dtype, out = [int(v) for v in sys.argv[1].split(",")], sys.argv[2], sys.argv[3]
real = S.measured_choice


def pick(ours, m, use):
    S.clear_memo()
    S.measured_choice = real if use else (lambda *a, **k: None)
    try:
        return ours.picked(m)
    finally:
        S.measured_choice = real
        S.clear_memo()


rows = []
for k, n in SHAPE_SET:
    cub, ours = CublasBench(k, n), OursBench(k, n, dtype, "per_column", 128)
    for m in ms:
        time.sleep(SETTLE_S)
        old, new = pick(ours, m, False), pick(ours, m, True)
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, old), ours.copies)]
        if new != old:
            fns.append((ours.fn(m, new), ours.copies))
        s = time_interleaved(fns)
        base = min(s[:2])
        r = dict(k=k, n=n, m=m, cublas_us=base*1e6, old=old, old_us=s[2]*1e6, new=new, new_us=(s[3] if new != old else s[2])*1e6)
        rows.append(r)
        print(f"{k}x{n} M={m}: old {base/s[2]:.2f} ({old.split('int4_')[-1]}) new {base*1e6/r['new_us']:.2f} ({new.split('int4_')[-1]})", flush=True)
    del cub, ours
    torch.cuda.empty_cache()
with open(out, "w") as f:
    json.dump(dict(device=torch.cuda.get_device_name(), dtype=dtype, rows=rows), f, indent=1)
for m in ms:
    R = [r for r in rows if r["m"] == m]
    old = math.exp(sum(math.log(r["cublas_us"] / r["old_us"]) for r in R) / len(R))
    new = math.exp(sum(math.log(r["cublas_us"] / r["new_us"]) for r in R) / len(R))
    print(f"M={m}: geomean old {old:.2f} new {new:.2f}")

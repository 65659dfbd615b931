"""Held-out check of the dense rule (tail_of 128): the selection with the rule (new), the selection
without it (old: the rule removed from the table in-process), fp16 cuBLAS in both layouts, same
interleaved rounds (time_interleaved's defaults: 3 s warm-up, 20 replays). Only where the rule fires.
    python heldout.py "KxN;KxN" M_LIST OUT.json DEADLINE DTYPE"""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from w4a16_build import selection
from w4a16_build.bench import CublasBench, OursBench
from w4a16_build.timing import SETTLE_S, time_interleaved

spec, ms, out, dl, dt = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3], float(sys.argv[4]), sys.argv[5]
lay = [(int(a), int(b)) for a, b in (s.split("x") for s in spec.split(";"))]
table = selection.heuristic_table()
old_table = dict(table, rules=[r for r in table["rules"] if r["family"] != "dequant"])
assert len(old_table["rules"]) == len(table["rules"]) - 1

def old_pick(ours, m):
    real = selection.heuristic_table
    selection.heuristic_table = lambda: old_table
    selection.clear_memo()
    try:
        return ours.picked(m)
    finally:
        selection.heuristic_table = real
        selection.clear_memo()

rows, t0 = [], time.time()
for k, n in lay:
    if time.time() > dl: print("deadline"); break
    cub, ours = CublasBench(k, n), OursBench(k, n, dt, "groupwise", 128)
    for m in ms:
        if time.time() > dl: break
        time.sleep(SETTLE_S)
        new, old = ours.picked(m), old_pick(ours, m)
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, new), ours.copies), (ours.fn(m, old), ours.copies)]
        s = time_interleaved(fns)
        r = dict(k=k, n=n, m=m, dtype=dt, cublas_us=min(s[:2]) * 1e6, new=new, new_us=s[2] * 1e6, old=old, old_us=s[3] * 1e6)
        rows.append(r)
        c = r["cublas_us"]
        print(f"{k}x{n} M={m}: cuBLAS {c:.1f} new {c/r['new_us']:.3f} ({new.split('_int4_')[1]}) old {c/r['old_us']:.3f} ({old.split('_int4_')[1]}) t={time.time()-t0:.0f}", flush=True)
    del cub, ours
    torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f)

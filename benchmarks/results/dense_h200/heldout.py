"""Held-out check of the dense rule: new selection (auto), the selection without the dense rule (old),
the dense tactic, fp16 cuBLAS (both layouts), same interleaved rounds. Only where the rule fires."""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from w4a16_build import selection
from w4a16_build.bench import CublasBench, OursBench
from w4a16_build.corpus import shapes as corpus_shapes
from w4a16_build.timing import SETTLE_S, time_interleaved

spec, ms, out, dl = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3], float(sys.argv[4])
dt = sys.argv[5] if len(sys.argv) > 5 else "fp16"
lay = corpus_shapes(spec) if not spec.startswith("shapes:") else [(int(a), int(b), []) for a, b in (s.split("x") for s in spec[7:].split(";"))]
table = selection.heuristic_table()
old_table = dict(table, rules=[r for r in table["rules"] if r["family"] != "dequant"])

def old_pick(ours, m):
    real = selection.heuristic_table
    selection.heuristic_table = lambda: old_table
    selection.clear_memo()
    try:
        return ours.picked(m)
    finally:
        selection.heuristic_table = real
        selection.clear_memo()

rows, seen = [], set()
for k, n, labels in lay:
    if (k, n) in seen or k % 128: continue
    seen.add((k, n))
    if not (n * k <= 22e6 and min(n, k) >= 1024):
        continue
    if time.time() > dl: print("deadline"); break
    cub, ours = CublasBench(k, n), OursBench(k, n, dt, "groupwise", 128)
    dense = f"{dt}_int4_groupwise_dequant_mm"
    for m in ms:
        if time.time() > dl: break
        time.sleep(SETTLE_S)
        new, old = ours.picked(m), old_pick(ours, m)
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, None), ours.copies), (ours.fn(m, old), ours.copies), (ours.fn(m, dense), ours.copies)]
        s = time_interleaved(fns)
        r = dict(k=k, n=n, m=m, layers=labels, dtype=dt, cublas_us=min(s[:2]) * 1e6, new=new, new_us=s[2] * 1e6, old=old, old_us=s[3] * 1e6, dense_us=s[4] * 1e6)
        rows.append(r)
        c = r["cublas_us"]
        print(f"{k}x{n} M={m}: cuBLAS {c:.1f} new {c/r['new_us']:.3f} ({new.split('_int4_')[1]}) old {c/r['old_us']:.3f} ({old.split('_int4_')[1]}) dense {c/r['dense_us']:.3f}", flush=True)
    del cub, ours
    torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f)

"""The selection (auto) against the dense tactic, fp16 cuBLAS in both layouts in the same interleaved
rounds, per layer and M.   python dense_vs_fused.py "KxN;KxN" M_LIST OUT.json DEADLINE DTYPE WARM_S REPLAYS"""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from w4a16_build.bench import CublasBench, OursBench
from w4a16_build.timing import SETTLE_S, time_interleaved

spec, ms, out, dl, dt = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3], float(sys.argv[4]), sys.argv[5]
warm, replays = float(sys.argv[6]), int(sys.argv[7])
lay = [(int(a), int(b)) for a, b in (s.split("x") for s in spec.split(";"))]
dense = f"{dt}_int4_groupwise_dequant_mm"
rows, t0 = [], time.time()
for k, n in lay:
    if time.time() > dl: print("deadline"); break
    cub, ours = CublasBench(k, n), OursBench(k, n, dt, "groupwise", 128)
    for m in ms:
        if time.time() > dl: break
        time.sleep(SETTLE_S)
        auto = ours.picked(m)
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, None), ours.copies), (ours.fn(m, dense), ours.copies)]
        s = time_interleaved(fns, replays=replays, warm_s=warm)
        r = dict(k=k, n=n, m=m, dtype=dt, cublas_us=min(s[:2]) * 1e6, auto=auto, auto_us=s[2] * 1e6, dense_us=s[3] * 1e6)
        rows.append(r)
        c = r["cublas_us"]
        print(f"{k}x{n} M={m}: cuBLAS {c:.1f} auto {c/r['auto_us']:.3f} ({auto.split('_int4_')[1]}) dense {c/r['dense_us']:.3f} t={time.time()-t0:.0f}", flush=True)
    del cub, ours
    torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, warm_s=warm, replays=replays, rows=rows), f)

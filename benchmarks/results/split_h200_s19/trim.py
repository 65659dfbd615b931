"""Issue 16, the split's second form (splits.py as of this commit): the whole call's tactic on the
first q = M - M mod 128 rows and the selection at M = r on the last r rows (new: gemm() with a broad
m_splits entry patched in: M = 1025-3168, 1-96 past, any N*K, families [cutlass]), against the
whole call on that tactic (old: run by name), fp16 cuBLAS in both layouts, same interleaved rounds.
Points where the whole call's choice is not a CUTLASS tactic (the dense path) are listed untimed.
    python trim.py "KxN;KxN" M_LIST OUT.json DEADLINE DTYPE WARM_S REPLAYS"""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from w4a16_build import gemm, selection, splits
from w4a16_build.bench import CublasBench, OursBench
from w4a16_build.runner import selected_plan
from w4a16_build.timing import SETTLE_S, time_interleaved

spec, ms, out, dl, dt = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3], float(sys.argv[4]), sys.argv[5]
warm, replays = float(sys.argv[6]), int(sys.argv[7])
lay = [(int(a), int(b)) for a, b in (s.split("x") for s in spec.split(";"))]
broad = dict(selection.heuristic_table(), m_splits=[{"m_min": 1025, "m_max": 3168, "tail_of": 128, "tail_max": 96,
             "min_nk": 1, "families": ["cutlass"], "cc": [90], "why": "broad, for timing"}])
splits.heuristic_table = lambda: broad
sh = lambda t: t.split('_int4_')[1]
rows, t0 = [], time.time()
for k, n in lay:
    if time.time() > dl: print("deadline"); break
    cub, ours = CublasBench(k, n), OursBench(k, n, dt, "groupwise", 128)
    for m in ms:
        if time.time() > dl: break
        x = torch.randn(m, k, device="cuda", dtype=ours.dt)
        y = torch.empty(m, n, device="cuda", dtype=ours.dt)
        plan = selected_plan(x, ours.base)
        whole = plan[0][1]
        r = dict(k=k, n=n, m=m, dtype=dt, plan=[[list(p), t] for p, t in plan], whole=whole)
        if len(plan) == 1:
            rows.append(r)
            print(f"{k}x{n} M={m}: not split ({sh(whole)})", flush=True)
            continue
        time.sleep(SETTLE_S)
        gemm(x, ours.packs[0], out=y)
        ref = gemm(x, ours.packs[0], tactic=whole)
        err = ((y.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(lambda i: gemm(x, ours.packs[i], out=y), ours.copies),
                                                               (ours.fn(m, whole), ours.copies)]
        s = time_interleaved(fns, replays=replays, warm_s=warm)
        r.update(cublas_us=min(s[:2]) * 1e6, new_us=s[2] * 1e6, old_us=s[3] * 1e6, rel_err=err)
        rows.append(r)
        c = r["cublas_us"]
        print(f"{k}x{n} M={m}: cuBLAS {c:.1f} new {c/r['new_us']:.3f} ({sh(whole)} + {sh(plan[1][1])}) "
              f"old {c/r['old_us']:.3f} err {err:.1e} t={time.time()-t0:.0f}", flush=True)
        del x, y, ref, fns
    del cub, ours
    torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, warm_s=warm, replays=replays, rows=rows), f)

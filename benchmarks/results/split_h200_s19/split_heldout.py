"""Held-out check of the split (heuristics.json m_splits): gemm() as it ships (new: two M pieces
where the entry covers the call) against the selection without the entry (old: the whole call, its
tactic picked with m_splits removed in-process and run by name), fp16 cuBLAS in both layouts, same
interleaved rounds (time_interleaved's defaults: 3 s warm-up, 20 replays). On a layer the entry does
not cover (below min_nk) `new` is the split done by hand (two gemm() calls), marked in_rule false.
    python split_heldout.py "KxN;KxN" M_LIST OUT.json DEADLINE DTYPE"""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from w4a16_build import gemm, selection
from w4a16_build.bench import CublasBench, OursBench
from w4a16_build.runner import selected_plan
from w4a16_build.timing import SETTLE_S, time_interleaved

spec, ms, out, dl, dt = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3], float(sys.argv[4]), sys.argv[5]
lay = [(int(a), int(b)) for a, b in (s.split("x") for s in spec.split(";"))]
table = selection.heuristic_table()
old_table = {key: v for key, v in table.items() if key != "m_splits"}
assert "m_splits" in table

def old_pick(ours, m):
    real = selection.heuristic_table
    import w4a16_build.splits as sp
    selection.heuristic_table = sp.heuristic_table = lambda: old_table
    selection.clear_memo()
    try:
        return ours.picked(m)
    finally:
        selection.heuristic_table = sp.heuristic_table = real
        selection.clear_memo()

sh = lambda t: t.split('_int4_')[1]
rows, t0 = [], time.time()
for k, n in lay:
    if time.time() > dl: print("deadline"); break
    cub, ours = CublasBench(k, n), OursBench(k, n, dt, "groupwise", 128)
    for m in ms:
        if time.time() > dl: break
        time.sleep(SETTLE_S)
        x = torch.randn(m, k, device="cuda", dtype=ours.dt)
        y = torch.empty(m, n, device="cuda", dtype=ours.dt)
        plan = selected_plan(x, ours.base)
        old = old_pick(ours, m)
        q = m // 128 * 128
        in_rule = len(plan) == 2
        if in_rule:
            assert plan[0][0][:2] == (0, q) and plan[1][0][:2] == (q, m), plan
            new = lambda i: gemm(x, ours.packs[i], out=y)
        else:
            xq, xr, yq, yr = x[:q], x[q:], y[:q], y[q:]
            new = lambda i: (gemm(xq, ours.packs[i], out=yq), gemm(xr, ours.packs[i], out=yr))
            plan = [((0, q), ours.picked(q)), ((q, m), ours.picked(m - q))]
        new(0)
        ref = gemm(x, ours.packs[0], tactic=old)
        err = ((y.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(new, ours.copies), (ours.fn(m, old), ours.copies)]
        s = time_interleaved(fns)
        r = dict(k=k, n=n, m=m, dtype=dt, in_rule=in_rule, cublas_us=min(s[:2]) * 1e6, new=[p[1] for p in plan],
                 new_us=s[2] * 1e6, old=old, old_us=s[3] * 1e6, rel_err=err)
        rows.append(r)
        c = r["cublas_us"]
        print(f"{k}x{n} M={m}{'' if in_rule else ' (outside)'}: cuBLAS {c:.1f} new {c/r['new_us']:.3f} "
              f"({' + '.join(sh(t) for t in r['new'])}) old {c/r['old_us']:.3f} ({sh(old)}) err {err:.1e} "
              f"t={time.time()-t0:.0f}", flush=True)
        del x, y, ref, fns, new
    del cub, ours
    torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f)

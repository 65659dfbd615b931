"""Issue 16, M just past a multiple of 128: the selection (auto), the dense tactic and a split call
(the first q = 128*floor(M/128) tokens through the selection at q, the last r = M - q through the
selection at r), fp16 cuBLAS in both layouts, all in the same interleaved rounds.
    python split_vs_dense.py "KxN;KxN" M_LIST OUT.json DEADLINE DTYPE WARM_S REPLAYS"""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from w4a16_build import gemm
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
        q = m // 128 * 128
        r = m - q
        x = torch.randn(m, k, device="cuda", dtype=ours.dt)
        y = torch.empty(m, n, device="cuda", dtype=ours.dt)
        xq, xr, yq, yr = x[:q], x[q:], y[:q], y[q:]
        split = lambda i: (gemm(xq, ours.packs[i], out=yq), gemm(xr, ours.packs[i], out=yr))
        ref = gemm(x, ours.packs[0])
        split(0)
        err = ((y.float() - ref.float()).abs().max() / ref.float().abs().max().clamp_min(1e-6)).item()
        time.sleep(SETTLE_S)
        auto, aq, ar = ours.picked(m), ours.picked(q), ours.picked(r)
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, None), ours.copies), (ours.fn(m, dense), ours.copies), (split, ours.copies)]
        s = time_interleaved(fns, replays=replays, warm_s=warm)
        row = dict(k=k, n=n, m=m, q=q, r=r, dtype=dt, cublas_us=min(s[:2]) * 1e6, auto=auto, auto_us=s[2] * 1e6,
                   dense_us=s[3] * 1e6, split_us=s[4] * 1e6, split_q=aq, split_r=ar, split_rel_err=err)
        rows.append(row)
        c = row["cublas_us"]
        sh = lambda t: t.split('_int4_')[1]
        print(f"{k}x{n} M={m}: cuBLAS {c:.1f} auto {c/row['auto_us']:.3f} ({sh(auto)}) dense {c/row['dense_us']:.3f} "
              f"split {c/row['split_us']:.3f} ({sh(aq)} + {sh(ar)}) err {err:.1e} t={time.time()-t0:.0f}", flush=True)
        del x, y, xq, xr, yq, yr, ref, fns
    del cub, ours
    torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, warm_s=warm, replays=replays, rows=rows), f)

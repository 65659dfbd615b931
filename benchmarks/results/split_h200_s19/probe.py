"""Why the split lost: the whole call's tactic T on all M rows, on the first q rows alone, the last
r rows alone (the selection at r), and both pieces back to back, in the same interleaved rounds.
    python probe.py "KxN;KxN" M_LIST OUT.json DEADLINE"""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from w4a16_build import gemm
from w4a16_build.bench import CublasBench, OursBench
from w4a16_build.timing import SETTLE_S, time_interleaved

spec, ms, out, dl = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3], float(sys.argv[4])
lay = [(int(a), int(b)) for a, b in (s.split("x") for s in spec.split(";"))]
rows = []
for k, n in lay:
    if time.time() > dl: break
    cub, ours = CublasBench(k, n), OursBench(k, n, "fp16", "groupwise", 128)
    for m in ms:
        if time.time() > dl: break
        q = m // 128 * 128
        x = torch.randn(m, k, device="cuda", dtype=ours.dt)
        y = torch.empty(m, n, device="cuda", dtype=ours.dt)
        xq, xr, yq, yr = x[:q], x[q:], y[:q], y[q:]
        T, Tr = ours.picked(m), ours.picked(m - q)
        P = ours.packs
        fns = {"whole": lambda i: gemm(x, P[i], tactic=T, out=y),
               "head": lambda i: gemm(xq, P[i], tactic=T, out=yq),
               "tail": lambda i: gemm(xr, P[i], tactic=Tr, out=yr),
               "pair": lambda i: (gemm(xq, P[i], tactic=T, out=yq), gemm(xr, P[i], tactic=Tr, out=yr))}
        time.sleep(SETTLE_S)
        s = time_interleaved([(f, cub.copies) for f in cub.fns(m).values()] + [(f, ours.copies) for f in fns.values()])
        r = dict(k=k, n=n, m=m, whole_tactic=T, tail_tactic=Tr, cublas_us=min(s[:2]) * 1e6,
                 **{name: v * 1e6 for name, v in zip(fns, s[2:])})
        rows.append(r)
        print(f"{k}x{n} M={m} T={T.split('_int4_')[1]} tail={Tr.split('_int4_')[1]}: " +
              " ".join(f"{name} {r[name]:.1f}" for name in ["cublas_us", *fns]), flush=True)
    del cub, ours
    torch.cuda.empty_cache()
with open(out, "w") as f:
    json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f)

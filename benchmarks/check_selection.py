"""Tune the shape set, then check what gemm() selects against every tactic, re-timed.

    python benchmarks/check_selection.py --dtype fp16 --json out.json

Step 1 tunes each shape (w4a16_build.tune, into $W4A16_TUNE_CACHE) and reports the time.
Step 2 times every applicable tactic per (shape, M) with the benchmark protocol (cold L2, CUDA
graphs) and reports the time of the tactic gemm() selects over the fastest, from the same run (two
separate runs drift by several percent at large M as clocks change).
"""

import argparse
import json
import time

import torch

import w4a16_build
from w4a16_build import bench
from w4a16_build.runner import selected_tactic


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--mode", default="groupwise")
    ap.add_argument("--m", default="1,2,4,8,16,32,64,128,256,512,1024,4096")
    ap.add_argument("--json")
    ap.add_argument("--skip-tune", action="store_true")
    a = ap.parse_args()
    ms = [int(v) for v in a.m.split(",")]
    t0 = time.time()
    if not a.skip_tune:
        for k, n in bench.SHAPE_SET:
            w4a16_build.tune(n, k, a.dtype, a.mode, 128, progress=False)
    tune_s = time.time() - t0
    print(f"tuning {a.dtype} {a.mode}: {tune_s:.1f} s for {len(bench.SHAPE_SET)} shapes", flush=True)
    rows = []
    for k, n in bench.SHAPE_SET:
        dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
        q = torch.zeros(n, k, dtype=torch.int8, device="cuda")
        z = torch.zeros(n, k // 128, dtype=dt, device="cuda") if a.mode == "groupwise_zero" else None
        s = torch.ones(n, 1 if a.mode == "per_column" else k // 128, dtype=dt, device="cuda")
        p = w4a16_build.pack(q, s, z, mode=a.mode, dtype=dt)
        ours = bench.OursBench(k, n, a.dtype, a.mode, 128)
        for m in ms:
            sel = selected_tactic(torch.zeros(m, k, dtype=dt, device="cuda"), p)
            every = ours.rank(m)
            times = {t: sec for sec, t, _ in every}
            best_s, best_t, _ = every[0]
            sel_s = times[sel]
            rows.append(dict(k=k, n=n, m=m, selected=sel, fastest=best_t, fastest_us=best_s * 1e6,
                             selected_us=sel_s * 1e6, ratio=sel_s / best_s))
            print(f"{k:>6}x{n:<6} M={m:<5} selected {sel_s*1e6:9.2f} us  fastest {best_s*1e6:9.2f} us "
                  f"({best_t})  ratio {sel_s / best_s:.3f}", flush=True)
    worst = max(r["ratio"] for r in rows)
    print(f"worst selected/fastest: {worst:.3f}; within 5%: {sum(r['ratio'] <= 1.05 for r in rows)}/{len(rows)}")
    if a.json:
        json.dump(dict(card=bench.card_name(), dtype=a.dtype, mode=a.mode, tune_seconds=tune_s, rows=rows),
                  open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()

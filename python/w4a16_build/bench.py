"""`python -m w4a16_build.bench`: W4A16 GEMM speed against fp16 cuBLAS, per shared/BENCHMARKING.md.

- Every figure is a ratio to `torch.matmul` in fp16 (cuBLAS) for the same M, N, K, timed in the
  same process on the same card, and the card is named in the output.
- Cold L2: each timed pass rotates over enough weight copies to touch >= 4x the L2 size.
- No launch overhead: one call per weight copy is captured in a CUDA graph; graph replays are
  timed with CUDA events; the best of 3 repeats of >= 20 replays is kept.
- Random int4 codes, random scales, random activations.

    python -m w4a16_build.bench --m 1,2,4,8,16 --json bench.json
    python -m w4a16_build.bench --shapes 4096x6144 --m 1 --tactic best
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from . import build_info, gemm, pack, quantize, tactics
from .runner import _check_device, _kernels
from .timing import n_copies, time_graph

# shared/BENCHMARKING.md: K x N of one linear layer each.
SHAPE_SET = [(4096, 6144), (4096, 28672), (14336, 4096), (8192, 8192), (8192, 57344), (28672, 8192)]
DEFAULT_M = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]
SPEC_BW = {"H100": 3.35e12, "H200": 4.8e12}  # bytes/s, vendor spec (BENCHMARKING.md)
DT = {"fp16": torch.float16, "bf16": torch.bfloat16}


def card_name() -> str:
    name = torch.cuda.get_device_name()
    for key in SPEC_BW:
        if key in name:
            return key
    return name


def weight_bytes(n: int, k: int, mode: str, group: int) -> int:
    groups = 1 if mode == "per_column" else k // group
    per_group = 2 * (2 if mode == "groupwise_zero" else 1)
    return n * k // 2 + n * groups * per_group


def bench_cublas(k: int, n: int, ms: list[int]) -> dict[int, float]:
    copies = n_copies(n * k * 2)
    ws = [torch.randn(n, k, device="cuda", dtype=torch.float16) for _ in range(copies)]
    out = {}
    for m in ms:
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        y = torch.empty(m, n, device="cuda", dtype=torch.float16)
        out[m] = time_graph(lambda i: torch.matmul(x, ws[i].t(), out=y), copies)
    del ws
    torch.cuda.empty_cache()
    return out


def applicable(names, x, p, sms) -> list[str]:
    from ._ext import ext

    C = ext()
    m = x.numel() // p.k
    ptrs = dict(x=x.data_ptr(), w=p.qweight.data_ptr(), scales=p.scales.data_ptr(),
                zeros=0 if p.zeros is None else p.zeros.data_ptr(), out=x.data_ptr())
    return [t for t in names if C.can_implement(t, m, p.n, p.k, p.group_size, **ptrs, sm_count=sms) == 0]


def bench_ours(k, n, ms, dtype, mode, group, tactic) -> dict[int, tuple[float, str]]:
    dt = DT[dtype]
    w = torch.randn(n, k, device="cuda") * 0.02
    q, s, z = quantize(w, None if mode == "per_column" else group, mode)
    base = pack(q, s.to(dt), None if z is None else z.to(dt), mode=mode, dtype=dt)
    del w, q
    copies = n_copies(weight_bytes(n, k, mode, group))
    import dataclasses

    packs = [dataclasses.replace(base, qweight=base.qweight.clone(), scales=base.scales.clone(),
                                 zeros=None if base.zeros is None else base.zeros.clone())
             for _ in range(copies)]
    sms = _check_device(torch.device("cuda"))
    out = {}
    for m in ms:
        x = torch.randn(m, k, device="cuda", dtype=dt)
        y = torch.empty(m, n, device="cuda", dtype=dt)
        if tactic in ("best", "all"):
            cands = applicable(tactics(dtype, mode), x, base, sms)
        elif tactic == "auto":
            cands = [None]
        else:
            cands = [tactic]
        timed = []
        for t in cands:
            sec = time_graph(lambda i: gemm(x, packs[i], tactic=t, out=y), copies)
            timed.append((sec, t or "auto"))
        out[m] = sorted(timed) if tactic == "all" else [min(timed)]
    del packs, base
    torch.cuda.empty_cache()
    return out


def parse_shapes(text: str):
    if text == "set":
        return SHAPE_SET
    shapes = []
    for item in text.split(","):
        kk, nn = item.lower().split("x")
        shapes.append((int(kk), int(nn)))
    return shapes


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m w4a16_build.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="set", help="'set' (BENCHMARKING.md) or KxN,KxN,...")
    ap.add_argument("--m", default=",".join(map(str, DEFAULT_M)), help="comma-separated M values")
    ap.add_argument("--dtype", default="fp16", choices=list(DT))
    ap.add_argument("--mode", default="groupwise", choices=["per_column", "groupwise", "groupwise_zero"])
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--tactic", default="auto",
                    help="'auto' (the selection logic), 'best' (fastest measured), 'all' (every applicable "
                         "tactic, fastest first) or a kernel name")
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--plot", help="write a PNG of speed-up vs M, one line per shape (needs matplotlib)")
    args = ap.parse_args(argv)

    if not torch.cuda.is_available():
        print("error: no CUDA GPU", file=sys.stderr)
        return 2
    shapes, ms = parse_shapes(args.shapes), [int(v) for v in args.m.split(",")]
    card = card_name()
    bw = SPEC_BW.get(card)
    rows = []
    t0 = time.time()
    print(f"card: {torch.cuda.get_device_name()} ({card}); dtype {args.dtype}, mode {args.mode}, "
          f"group {args.group}, tactic {args.tactic}")
    print(f"{'K x N':>13} {'M':>5} {'ours us':>9} {'cuBLAS us':>10} {'speedup':>8} {'HBM %':>6}  tactic")
    for k, n in shapes:
        base = bench_cublas(k, n, ms)
        ours = bench_ours(k, n, ms, args.dtype, args.mode, args.group, args.tactic)
        for m in ms:
            for rank, (sec, used) in enumerate(ours[m]):
                frac = weight_bytes(n, k, args.mode, args.group) / sec / bw if bw else float("nan")
                row = dict(k=k, n=n, m=m, us=sec * 1e6, cublas_us=base[m] * 1e6, speedup=base[m] / sec,
                           hbm_fraction=frac, tactic=used, rank=rank)
                rows.append(row)
                print(f"{k:>6}x{n:<6} {m:>5} {row['us']:>9.2f} {row['cublas_us']:>10.2f} {row['speedup']:>8.2f} "
                      f"{100 * frac:>6.1f}  {used}", flush=True)
    summary = {m: geomean([r["speedup"] for r in rows if r["m"] == m and r["rank"] == 0]) for m in ms}
    print("geomean speedup over fp16 cuBLAS: " + ", ".join(f"M={m}: {v:.2f}" for m, v in summary.items()))
    doc = dict(card=card, device=torch.cuda.get_device_name(), torch=torch.__version__,
                   build=build_info(), dtype=args.dtype, mode=args.mode, group=args.group,
                   tactic=args.tactic, seconds=time.time() - t0, rows=rows,
                   geomean_speedup={str(m): v for m, v in summary.items()})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.plot:
        from .plot import plot

        plot(doc, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

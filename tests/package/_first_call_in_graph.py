"""The first call of each GEMV and skinny tactic in this process made inside a CUDA graph capture
(their launchers ask the occupancy calculator then, to choose K splits), replayed, against an eager
call of the same tactic made after it. Bitwise equal: the same split count must run both times.

    python _first_call_in_graph.py

Prints "ok N" (N tactics checked) or a MISMATCH line and exits 1.
"""

import sys

import torch

import w4a16_build
from w4a16_build import kernels
from _weights import random_weight

SHAPES = [(4096, 8192, 3), (28672, 4096, 7), (1536, 2048, 1)]  # N, K, M


def main():
    served = set(w4a16_build.tactics("fp16", "groupwise", device="cuda"))
    names = [k["name"] for k in w4a16_build.list_kernels()
             if k["family"] in ("gemv", "skinny") and k["name"] in served]
    gen = torch.Generator("cuda").manual_seed(0)
    weights = {(n, k): random_weight(n, k, "groupwise", 128, torch.float16, gen) for n, k, _ in SHAPES}
    checked = 0
    for name in names:
        max_m = next(k["max_m"] for k in w4a16_build.list_kernels() if k["name"] == name)
        for n, k, m in SHAPES:
            if m > max_m:
                continue
            p = weights[(n, k)].packed
            x = torch.randn(m, k, device="cuda", dtype=torch.float16, generator=gen)
            out = torch.full((m, n), float("nan"), device="cuda", dtype=torch.float16)
            sms = torch.cuda.get_device_properties(0).multi_processor_count
            if kernels.can_implement(name, kernels.problem(x, p, out, sms=sms)) != 0:
                continue                    # asks no device question: the launcher's first run stays in the graph
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                w4a16_build.gemm(x, p, tactic=name, out=out)
            g.replay()
            eager = w4a16_build.gemm(x, p, tactic=name)
            torch.cuda.synchronize()
            if not torch.equal(out, eager):
                print(f"MISMATCH {name} N={n} K={k} M={m}: replay differs from eager "
                      f"(max diff {(out.float() - eager.float()).abs().max().item():.3g})")
                return 1
            checked += 1
    print(f"ok {checked}")
    return 0 if checked else 2


if __name__ == "__main__":
    sys.exit(main())

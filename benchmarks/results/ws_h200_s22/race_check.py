"""The graph test's failure on main 2c6bb97 (test_workspace_is_stream_ordered_inside_graphs): x2
created on the current stream after other.wait_stream(current). A 50 ms sleep on the current
stream before x2's write stands in for a busy GPU: the old order then fails, the new one passes
(race_check.txt). Run from the repository root on a GPU machine with the package installed:

    python3 benchmarks/results/ws_h200_s22/race_check.py
"""
import sys

import torch

import w4a16_build

sys.path.insert(0, "tests/package")
from _weights import random_weight
from test_graphs_gpu import streamk_tactic, capture

def run(old_order, sleep):
    t = streamk_tactic()
    gen = torch.Generator("cuda").manual_seed(3)
    w = random_weight(4096, 4096, "groupwise", 128, torch.float16, gen)
    x = torch.randn(16, 4096, device="cuda", dtype=torch.float16, generator=gen)
    o = torch.empty(16, 4096, device="cuda", dtype=torch.float16)
    w4a16_build.gemm(x, w.packed, tactic=t, out=o)
    expected = o.clone()
    g = capture(lambda: w4a16_build.gemm(x, w.packed, tactic=t, out=o))
    torch.cuda.synchronize()
    if old_order:
        other = torch.cuda.Stream(); other.wait_stream(torch.cuda.current_stream())
        if sleep: torch.cuda._sleep(50_000_000)
        x2 = torch.randn(40, 4096, device="cuda", dtype=torch.float16, generator=gen)
        exp2 = w4a16_build.gemm(x2, w.packed, tactic=t)
    else:
        if sleep: torch.cuda._sleep(50_000_000)
        x2 = torch.randn(40, 4096, device="cuda", dtype=torch.float16, generator=gen)
        exp2 = w4a16_build.gemm(x2, w.packed, tactic=t)
        other = torch.cuda.Stream(); other.wait_stream(torch.cuda.current_stream())
    outs = []
    for _ in range(50):
        g.replay()
        with torch.cuda.stream(other):
            outs.append(w4a16_build.gemm(x2, w.packed, tactic=t))
    torch.cuda.current_stream().wait_stream(other)
    torch.cuda.synchronize()
    return torch.equal(o, expected), sum(not torch.equal(a, exp2) for a in outs)

for old in (True, False):
    for sleep in (False, True):
        ok, wrong = run(old, sleep)
        print(f"order={'old' if old else 'new'} sleep={sleep}: graph ok={ok}, eager wrong={wrong} of 50", flush=True)

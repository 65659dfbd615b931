"""Run one tactic on one shape a few times (for ncu / compute-sanitizer).

    ncu --clock-control none -k regex:gemv python benchmarks/profile_one.py K N M TACTIC [MODE]
"""

import sys

import torch

import w4a16_build

k, n, m, tactic = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else "groupwise"
dt = torch.bfloat16 if tactic.startswith("bf16") else torch.float16
w = torch.randn(n, k, device="cuda") * 0.02
q, s, z = w4a16_build.quantize(w, None if mode == "per_column" else 128, mode)
p = w4a16_build.pack(q, s.to(dt), None if z is None else z.to(dt), mode=mode, dtype=dt)
x = torch.randn(m, k, device="cuda", dtype=dt)
for _ in range(3):
    w4a16_build.gemm(x, p, tactic=tactic)
torch.cuda.synchronize()
print("done")

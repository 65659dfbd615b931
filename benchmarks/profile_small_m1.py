"""One M=1 call on a 2048x2048 layer, ours (the selected tactic) and torch's tinygemm, for ncu.

    ncu --launch-skip 2 --launch-count 1 -k regex:skinny   python benchmarks/profile_small_m1.py
    ncu --launch-skip 2 --launch-count 1 -k regex:tinygemm python benchmarks/profile_small_m1.py tiny

(benchmarks/NOTES.md, "The targets measured on an H100": what bounds M=1 on small layers.)
"""

import sys

import torch

from w4a16_build.nn import W4A16Linear

k, n = 2048, 2048
lin = torch.nn.Linear(k, n, bias=False, dtype=torch.float16, device="cuda")
w = W4A16Linear.from_linear(lin)
x = torch.randn(1, k, dtype=torch.float16, device="cuda")
if sys.argv[1:] != ["tiny"]:
    for _ in range(3):
        w(x)
# tinygemm on random codes (its speed does not depend on the values), bf16, group 128
packed = torch._convert_weight_to_int4pack(torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda"), 8)
sz = torch.randn(k // 128, n, 2, dtype=torch.bfloat16, device="cuda") * 0.01
xb = x.bfloat16()
for _ in range(3):
    torch._weight_int4pack_mm(xb, packed, 128, sz)
torch.cuda.synchronize()

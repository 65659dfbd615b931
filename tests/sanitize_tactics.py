"""One small call of every compiled tactic, for compute-sanitizer:

    compute-sanitizer --tool memcheck python tests/sanitize_tactics.py

Exits non-zero if any result is wrong; memcheck reports bad accesses.
"""

import sys

import torch

import w4a16_build

DT = {"fp16": torch.float16, "bf16": torch.bfloat16}


def main() -> int:
    bad = 0
    for k in w4a16_build.list_kernels():
        dtype = DT[k["dtype"]]
        n, kk, m = 264, 256, 5
        group = None if k["mode"] == "per_column" else 128
        w = torch.randn(n, kk, device="cuda") * 0.05
        q, s, z = w4a16_build.quantize(w, group, k["mode"])
        s, z = s.to(dtype), None if z is None else z.to(dtype)
        p = w4a16_build.pack(q, s, z, mode=k["mode"], dtype=dtype)
        x = torch.randn(m, kk, device="cuda", dtype=dtype)
        bias = torch.randn(n, device="cuda", dtype=dtype)
        out = w4a16_build.gemm(x, p, bias, tactic=k["name"])
        torch.cuda.synchronize()
        ref = x.float() @ w4a16_build.dequantize(q, s, z, mode=k["mode"]).t() + bias.float()
        err = ((out.float() - ref).norm() / ref.norm()).item()
        ok = err < (1e-2 if k["dtype"] == "bf16" else 2e-3)
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {k['name']}  rel err {err:.2e}")
    print(f"{len(w4a16_build.list_kernels()) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Small calls of every compiled tactic on odd shapes, for compute-sanitizer:

    compute-sanitizer --tool memcheck python tests/sanitize_tactics.py [GLOB]

PyTorch's caching allocator is switched off (PYTORCH_NO_CUDA_MEMORY_CACHING=1,
set here before torch starts): with it, an access past a tensor that lands in
the same pool segment is invisible to memcheck. Every tensor is then its own
allocation, so a read or write one byte past x, the weight, the scales, the
zeros, the bias or out is reported. Shapes are odd on purpose: N not a multiple
of 16 or of any tile, K not a multiple of 128, M odd, and the group equal to K.
Exits non-zero if any result is wrong; memcheck reports bad accesses.
"""

import fnmatch
import os
import sys

os.environ.setdefault("PYTORCH_NO_CUDA_MEMORY_CACHING", "1")

import torch  # noqa: E402

import w4a16_build  # noqa: E402

DT = {"fp16": torch.float16, "bf16": torch.bfloat16}
# (N, K, group or None for "= K") per family; M values below.
SHAPES = [(264, 256, 128), (8, 320, None), (1000, 192, 64)]
# The warp-split forms (skinny k_warps > 1, skinny80) split K between 8 / k_warps warps: with the
# small K above each warp has one weight stage, so also a long K (several stages per warp: ring
# refills and barrier phase flips; x of 16 tokens is refused there, fewer tokens run).
WSPLIT_SHAPES = [(40, 8192, 128)]
# The warp-specialized skinny form (`_ws`) splits K over a cluster only past a few 64-k stages:
# with the small K above it runs one split. These run several, so that both paths of its cluster
# reduction run under the sanitizer (16-byte reads of the partials up to 12 splits, a row per
# thread at 16; on an H200 the launcher picked 16 and 12 for layers like these).
WS_SHAPES = [(904, 4864, 128), (3000, 3072, 128)]


def shapes_for(k):
    wsplit = k["family"] == "skinny80" or k.get("k_warps", 1) > 1
    return SHAPES + (WSPLIT_SHAPES if wsplit else []) + (WS_SHAPES if k["name"].endswith("_ws") else [])


def ms_for(k):
    # The small-batch kernels compile their loop for 1, 2, up to 4 and all token tiles of 8
    # (gemv/skinny_kernel.cuh): one M in each, and the kernel's largest.
    if not k["max_m"]:
        return [1, 133]
    return sorted({m for m in (1, 3, 9, 17, 33) if m < k["max_m"]} | {k["max_m"]})


def main() -> int:
    glob = sys.argv[1] if len(sys.argv) > 1 else "*"
    bad = runs = 0
    kernels = [k for k in w4a16_build.list_kernels() if fnmatch.fnmatchcase(k["name"], glob)]
    weights = {}  # one weight per (dtype, mode, shape), shared by the tactics (torch ops are slow here)
    for k in kernels:
        dtype = DT[k["dtype"]]
        for n, kk, group in shapes_for(k):
            g = kk if k["mode"] == "per_column" or group is None else group
            if k["family"] == "cutlass" and g != kk and g % k["tile_k"]:
                continue   # a 128-K tile cannot run group 64 (gemm refuses it; covered by the GPU tests)
            key = (k["dtype"], k["mode"], n, kk, g)
            if key not in weights:
                gen = torch.Generator("cuda").manual_seed(n + kk)
                w = torch.randn(n, kk, device="cuda", generator=gen) * 0.05
                q, s, z = w4a16_build.quantize(w, None if k["mode"] == "per_column" else g, k["mode"],
                                               clip_search=False)
                s, z = s.to(dtype), None if z is None else z.to(dtype)
                weights[key] = (w4a16_build.pack(q, s, z, mode=k["mode"], dtype=dtype),
                                w4a16_build.dequantize(q, s, z, mode=k["mode"]), gen)
            p, ref_w, gen = weights[key]
            for m in ms_for(k):
                x = torch.randn(m, kk, device="cuda", dtype=dtype, generator=gen)
                bias = torch.randn(n, device="cuda", dtype=dtype, generator=gen)
                out = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)
                try:
                    w4a16_build.gemm(x, p, bias, tactic=k["name"], out=out)
                except ValueError as e:
                    print(f"skip {k['name']} M={m} N={n} K={kk} g={g}: {e}")
                    continue
                torch.cuda.synchronize()
                ref = x.float() @ ref_w.t() + bias.float()
                err = ((out.float() - ref).norm() / ref.norm()).item()
                ok = err < (1e-2 if k["dtype"] == "bf16" else 2e-3)
                bad += not ok
                runs += 1
                print(f"{'ok ' if ok else 'BAD'} {k['name']} M={m} N={n} K={kk} g={g}  rel err {err:.2e}")
    print(f"{len(kernels)} tactics, {runs} calls: {runs - bad} passed, {bad} failed")
    return 1 if bad or not runs else 0


if __name__ == "__main__":
    sys.exit(main())

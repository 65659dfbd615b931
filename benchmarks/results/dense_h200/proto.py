"""Prototype: dequantize to dense + torch mm (cuBLAS) vs the selection (auto) vs fp16 cuBLAS, same rounds."""
import json, os, sys, tempfile, time
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
import torch
from torch.utils.cpp_extension import load_inline
from w4a16_build.bench import CublasBench, OursBench, TinygemmBench
from w4a16_build.corpus import shapes as corpus_shapes
from w4a16_build.timing import SETTLE_S, time_interleaved, random_packed
from w4a16_build.packing import dequantize_packed
from w4a16_build import gemm

ROOT = os.getcwd()
src = r'''
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include "dense/dequant_kernel.cuh"
using namespace w4a16;
template <class T, QuantMode M>
void go(torch::Tensor qw, torch::Tensor s, torch::Tensor z, torch::Tensor out, int64_t n, int64_t k, int64_t g) {
  int64_t units = (n + 15) / 16 * 16 * k / 32;
  int64_t blocks = (units + 255) / 256;
  dense::dequant_kernel<T, M><<<dim3(unsigned(blocks)), 256, 0, at::cuda::getCurrentCUDAStream()>>>(
    (const uint4*)qw.data_ptr(), (const T*)s.data_ptr(), z.numel() ? (const T*)z.data_ptr() : nullptr,
    (T*)out.data_ptr(), int(n), int(k), int(g), n, units);
}
torch::Tensor dq(torch::Tensor qw, torch::Tensor s, torch::Tensor z, int64_t n, int64_t k, int64_t g, int64_t mode) {
  auto out = torch::empty({n, k}, s.options());
  bool h = s.scalar_type() == torch::kHalf;
  #define GO(T) if (mode == 0) go<T, QuantMode::kPerColumn>(qw,s,z,out,n,k,k); else if (mode == 1) go<T, QuantMode::kGroupwise>(qw,s,z,out,n,k,g); else go<T, QuantMode::kGroupwiseZero>(qw,s,z,out,n,k,g);
  if (h) { GO(__half) } else { GO(__nv_bfloat16) }
  return out;
}
'''
t0 = time.time()
ext = load_inline("dqproto", cpp_sources="torch::Tensor dq(torch::Tensor qw, torch::Tensor s, torch::Tensor z, int64_t n, int64_t k, int64_t g, int64_t mode);",
                  cuda_sources=src, functions=["dq"], extra_include_paths=[ROOT, ROOT + "/csrc"],
                  extra_cuda_cflags=["-O3", "-gencode=arch=compute_90a,code=sm_90a", "-std=c++17"], verbose=False)
print(f"compiled in {time.time()-t0:.0f} s", flush=True)
MODES = {"per_column": 0, "groupwise": 1, "groupwise_zero": 2}
E = torch.tensor([], device="cuda")

def dq(p):
    return ext.dq(p.qweight, p.scales, p.zeros if p.zeros is not None else E.to(p.dtype), p.n, p.k, p.group_size, MODES[p.mode])

# correctness: every mode and dtype, odd N, against dequantize_packed rounded to 16 bits
bad = 0
for dt in ("fp16", "bf16"):
    for mode, g in (("groupwise", 128), ("groupwise_zero", 64), ("per_column", 0), ("groupwise", 64)):
        for n, k in ((8, 64), (24, 192), (1000, 512), (4104, 4096)):
            if mode != "per_column" and k % g: continue
            p = random_packed(n, k, dt, mode, g if g else k)
            got = dq(p).float()
            ref = dequantize_packed(p).to(p.dtype).float()
            err = (got - ref).abs().max().item()
            tol = ref.abs().max().item() * (2 ** -7 if dt == "bf16" else 2 ** -10)
            ok = err <= tol
            bad += not ok
            if not ok: print("BAD", dt, mode, g, n, k, err, tol)
print("dequant check: bad =", bad, flush=True)

spec, ms, out = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3]
dl = float(sys.argv[4]) if len(sys.argv) > 4 else 1e9
if spec.startswith("shapes:"):
    lay = [(int(a), int(b), []) for a, b in (s.split("x") for s in spec[7:].split(";"))]
else:
    lay = corpus_shapes(spec)
rows = []
for k, n, labels in lay:
    if k % 128: continue
    if time.time() > dl: print("deadline"); break
    cub, ours = CublasBench(k, n), OursBench(k, n, "fp16", "groupwise", 128)
    for m in ms:
        if time.time() > dl: break
        time.sleep(SETTLE_S)
        auto = ours.picked(m)
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        y = torch.empty(m, n, device="cuda", dtype=torch.float16)
        # check hybrid output against gemm once
        w = dq(ours.packs[0]); yh = torch.mm(x, w.t()); ya = gemm(x, ours.packs[0])
        rel = ((yh.float() - ya.float()).abs().max() / ya.float().abs().max()).item()
        def hyb(i, x=x, y=y):
            w = dq(ours.packs[i]); torch.mm(x, w.t(), out=y)
        def dqo(i):
            dq(ours.packs[i])
        fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, None), ours.copies), (hyb, ours.copies), (dqo, ours.copies)]
        s = time_interleaved(fns, warm_s=1.0)
        r = dict(k=k, n=n, m=m, layers=labels, cublas_us=min(s[:2]) * 1e6, auto=auto, auto_us=s[2] * 1e6,
                 hyb_us=s[3] * 1e6, dq_us=s[4] * 1e6, rel=rel)
        rows.append(r)
        print(f"{k}x{n} M={m}: cuBLAS {r['cublas_us']:.1f} auto {r['auto_us']:.1f} ({r['cublas_us']/r['auto_us']:.3f}) hyb {r['hyb_us']:.1f} ({r['cublas_us']/r['hyb_us']:.3f}) dq {r['dq_us']:.1f} rel {rel:.2e}", flush=True)
    del cub, ours
    torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump(dict(card=torch.cuda.get_device_name(), rows=rows), f)

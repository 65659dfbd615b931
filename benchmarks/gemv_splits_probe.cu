// Probe of the GEMV's K splits (gemv/launch.cuh): for each layer, M and GEMV variant, time the
// kernel at every split count whose plan fits shared memory, beside the split counts of the old rule
// (make_plan) and of the launcher (choose_splits), and print the resident clusters the driver reports for each
// (cudaOccupancyMaxActiveClusters). The data behind the planner's wave rule (benchmarks/NOTES.md,
// "Twentieth session").
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I. -Icsrc \
//        benchmarks/gemv_splits_probe.cu csrc/status.cpp -o gemv_splits_probe   (from the repo root)
//   ./gemv_splits_probe KxN [KxN ...]     fp16 groupwise g128, M = 1..16 (PROBE_M=2,5,8 sets it),
//                                         CUDA graphs over rotating weight copies (>= 300 MB: cold L2)
//
// One line per (layer, variant, M): "plan=S" (make_plan's rule: the fewest splits that give 2 CTAs
// per SM), "new=S" (choose_splits, what Gemv::run launches), then "s:µs:clusters" per split.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>
#include <string>
#include <vector>

#include "gemv/launch.cuh"
#include "gemv/skinny_launch.cuh"

using namespace w4a16;
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e_), __LINE__); exit(1);} } while (0)

__global__ void fill_rand(uint8_t* p, long n, uint32_t seed) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) { uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15; p[i] = h & 0xff; }
}
__global__ void fill_half(__half* p, long n, uint32_t seed, float lo, float hi) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) { uint32_t h = (uint32_t)i * 2246822519u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15; p[i] = __float2half(lo + (hi - lo) * (h & 0xffff) / 65535.f); }
}

struct Probe {
  const char* name;
  int max_m;
  // plan for a given split count (0: the planner's own); returns false when it does not fit
  bool (*plan)(const GemmArgs&, int splits, gemv::Plan&);
  int (*chosen)(const GemmArgs&);  // choose_splits' split count (0: none)
  void* kernel;
  int rows_per_cta;
  bool skinny = false;             // a skinny cluster form: its own Params, PDL as its launcher
};

template <int NT, int RB, int S>
bool plan_fn(const GemmArgs& a, int splits, gemv::Plan& p) {
  if (splits == 0) return gemv::make_plan<NT, RB, S, true, false>(a, a.group_size, a.sm_count, p);
  if (splits > gemv::kMaxCluster || splits > a.k / gemv::kChunkK) return false;
  p.row_groups = (a.n + gemv::kWarps * 16 * RB - 1) / (gemv::kWarps * 16 * RB);
  return gemv::plan_for_splits<NT, RB, S, true, false>(a, a.group_size, splits, p) <= gemv::kMaxSmemBytes;
}
template <int NT, int RB, int S>
int chosen_fn(const GemmArgs& a) {
  using G = gemv::Gemv<__half, QuantMode::kGroupwise, NT, RB, S>;
  static std::map<std::tuple<int, int, int>, int> cache;
  gemv::Plan plan;
  if (!gemv::make_plan<NT, RB, S, true, false>(a, a.group_size, a.sm_count, plan)) return 0;
  auto kernel = gemv::gemv_kernel<__half, QuantMode::kGroupwise, NT, RB, S>;
  auto fit = [&](int s, int smem, gemv::SplitFit& f) { G::fit(0, kernel, cache, s, smem, f); };
  if (!gemv::choose_splits<NT, RB, S, true, false>(a, a.group_size, fit, plan)) return 0;
  return plan.splits;
}
template <int NT, int RB, int S>
Probe probe(const char* nm) {
  return {nm, 8 * NT, plan_fn<NT, RB, S>, chosen_fn<NT, RB, S>,
          (void*)gemv::gemv_kernel<__half, QuantMode::kGroupwise, NT, RB, S>, gemv::kWarps * 16 * RB};
}

// The skinny cluster forms (gemv/skinny_launch.cuh): their shared memory does not depend on the
// split count; splits from 1 to half the chunks. plan=: its launcher's choose_splits.
template <int NT, int RB, int WST, bool WG>
bool sk_plan_fn(const GemmArgs& a, int splits, gemv::Plan& p) {
  using P = skinny::Planner<NT, RB, WST, true, false, WG>;
  skinny::Plan sp;
  if (!P::make(a, sp)) return false;
  p.row_groups = sp.row_groups;
  p.smem_bytes = sp.smem_bytes;
  p.xs_bytes = sp.x_slot_bytes;
  if (splits == 0) {
    auto kernel = skinny::skinny_kernel<__half, QuantMode::kGroupwise, NT, RB, WST, WG>;
    static std::map<std::pair<int, int>, int> slots;
    P::choose_splits(a, sp, [&](int s) {
      auto key = std::make_pair(sp.smem_bytes, s);
      auto it = slots.find(key);
      if (it != slots.end()) return it->second;
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = dim3(s, 1, 1); cfg.blockDim = dim3(skinny::kThreads, 1, 1); cfg.dynamicSmemBytes = sp.smem_bytes;
      cudaLaunchAttribute at[1];
      at[0].id = cudaLaunchAttributeClusterDimension; at[0].val.clusterDim.x = s; at[0].val.clusterDim.y = 1; at[0].val.clusterDim.z = 1;
      cfg.attrs = at; cfg.numAttrs = 1;
      int c = 0;
      if (cudaOccupancyMaxActiveClusters(&c, kernel, &cfg) != cudaSuccess) { cudaGetLastError(); c = 0; }
      slots[key] = c * s;
      return c * s;
    });
    p.splits = sp.splits;
    return true;
  }
  const int nchunks = a.k / skinny::kChunkK;
  if (splits > gemv::kMaxCluster || splits > (nchunks / 2 > 0 ? nchunks / 2 : 1)) return false;
  p.splits = splits;
  return true;
}
int no_chosen(const GemmArgs&) { return 0; }
template <int NT, int RB, int WST, bool WG>
Probe sk_probe(const char* nm) {
  Probe p{nm, 8 * NT, sk_plan_fn<NT, RB, WST, WG>, no_chosen,
          (void*)skinny::skinny_kernel<__half, QuantMode::kGroupwise, NT, RB, WST, WG>, skinny::kWarps * 16 * RB};
  p.skinny = true;
  return p;
}

static cudaLaunchConfig_t config(const gemv::Plan& plan, cudaStream_t stream, cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(plan.row_groups * plan.splits, 1, 1);
  cfg.blockDim = dim3(gemv::kThreads, 1, 1);
  cfg.dynamicSmemBytes = plan.smem_bytes;
  cfg.stream = stream;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = plan.splits;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cfg;
}

int main(int argc, char** argv) {
  std::vector<Probe> ps = {probe<1, 2, 4>("m8_r32_s4"), probe<1, 1, 4>("m8_r16_s4"), probe<2, 1, 4>("m16_r16_s4"),
                           probe<2, 2, 4>("m16_r32_s4")};
  // PROBE_SKINNY=1: the skinny cluster forms instead (default's m16_r16_s4, m32/m64 _wg, m64_r16_s4).
  if (std::getenv("PROBE_SKINNY") && std::getenv("PROBE_SKINNY")[0] == '1') {
    ps = {sk_probe<2, 1, 4, false>("sk_m16_r16_s4"), sk_probe<4, 1, 4, true>("sk_m32_r16_s4_wg"),
          sk_probe<8, 1, 4, true>("sk_m64_r16_s4_wg"), sk_probe<8, 1, 4, false>("sk_m64_r16_s4")};
  }
  for (auto& p : ps) {
    CK(cudaFuncSetAttribute(p.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, gemv::kMaxSmemBytes));
    CK(cudaFuncSetAttribute(p.kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    cudaFuncAttributes fa; CK(cudaFuncGetAttributes(&fa, p.kernel));
    printf("# %s: %d registers\n", p.name, fa.numRegs);
  }
  std::vector<int> ms;
  for (int m = 1; m <= 16; ++m) ms.push_back(m);
  if (const char* e = std::getenv("PROBE_M")) {
    ms.clear();
    for (const char* q = e; *q;) { ms.push_back(atoi(q)); while (*q && *q != ',') ++q; if (*q) ++q; }
  }
  int sms = 0; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaStream_t stream; CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  for (int i = 1; i < argc; ++i) {
    int k, n; sscanf(argv[i], "%dx%d", &k, &n);
    const int g = 128; long wbytes = (long)(n + 15) / 16 * 16 * k / 2;
    int copies = (int)std::max(2L, (300L << 20) / wbytes + 1);
    std::vector<uint8_t*> ws(copies); std::vector<__half*> ss(copies);
    for (int c = 0; c < copies; ++c) {
      CK(cudaMalloc(&ws[c], wbytes)); fill_rand<<<(wbytes + 255) / 256, 256>>>(ws[c], wbytes, c);
      CK(cudaMalloc(&ss[c], (long)k / g * n * 2)); fill_half<<<((long)k / g * n + 255) / 256, 256>>>(ss[c], (long)k / g * n, 9, 0.001f, 0.01f);
    }
    __half *x, *out; CK(cudaMalloc(&x, 128L * k * 2)); CK(cudaMalloc(&out, 128L * n * 2));  // up to 128 tokens
    fill_half<<<(128 * k + 255) / 256, 256>>>(x, 128L * k, 1, -1, 1);
    CK(cudaDeviceSynchronize());
    printf("== K=%d N=%d (%.1f MB int4, %d copies)\n", k, n, wbytes / 1e6, copies);
    for (auto& p : ps) {
      for (int m : ms) {
        if (m > p.max_m) continue;
        GemmArgs a; a.m = m; a.n = n; a.k = k; a.group_size = g; a.x = x; a.out = out; a.stream = stream; a.sm_count = sms;
        gemv::Plan chosen;
        if (!p.plan(a, 0, chosen)) { printf("%s m=%d refused\n", p.name, m); continue; }
        printf("%s m=%d plan=%d new=%d rows=%d", p.name, m, chosen.splits, p.chosen(a), chosen.row_groups);
        for (int s = 1; s <= gemv::kMaxCluster; ++s) {
          gemv::Plan plan;
          if (!p.plan(a, s, plan)) continue;
          cudaLaunchAttribute attr[2];
          cudaLaunchConfig_t cfg = config(plan, stream, attr);
          if (p.skinny) {  // as skinny_launch.cuh: programmatic dependent launch
            attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
            attr[1].val.programmaticStreamSerializationAllowed = 1;
          }
          int clusters = 0;
          if (cudaOccupancyMaxActiveClusters(&clusters, p.kernel, &cfg) != cudaSuccess) { cudaGetLastError(); clusters = -1; }
          if (clusters <= 0) { printf(" %d:-:%d", s, clusters); continue; }
          const int reps = copies < 50 ? 4 * copies : copies;  // tiny layers: one pass over their copies
          cudaGraph_t graph; cudaGraphExec_t exec;
          CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
          for (int r = 0; r < reps; ++r) {
            gemv::Params prm{x, ws[r % copies], ss[r % copies], nullptr, nullptr, out, m, n, k, g, (int64_t)n, (int64_t)n,
                             plan.splits, plan.xs_stride, plan.xs_bytes, plan.slice_groups, plan.sz_bytes, plan.xsum_bytes};
            skinny::Params sprm{x, ws[r % copies], ss[r % copies], nullptr, nullptr, out, m, n, k, g, (int64_t)n, (int64_t)n,
                                plan.splits, plan.xs_bytes};
            void* args[] = {&prm};
            void* sargs[] = {&sprm};
            if (p.skinny) {
              cfg.numAttrs = 2;
              CK(cudaLaunchKernelExC(&cfg, p.kernel, sargs));
            } else {
              CK(cudaLaunchKernelExC(&cfg, p.kernel, args));
            }
          }
          CK(cudaStreamEndCapture(stream, &graph));
          CK(cudaGraphInstantiate(&exec, graph, 0));
          CK(cudaGraphLaunch(exec, stream));
          float best = 1e9;
          for (int rep = 0; rep < 3; ++rep) {
            cudaEventRecord(e0, stream); CK(cudaGraphLaunch(exec, stream)); cudaEventRecord(e1, stream); CK(cudaEventSynchronize(e1));
            float t; cudaEventElapsedTime(&t, e0, e1); best = std::min(best, t);
          }
          printf(" %d:%.2f:%d", s, best * 1000 / reps, clusters);
          cudaGraphExecDestroy(exec); cudaGraphDestroy(graph);
        }
        printf("\n");
        fflush(stdout);
      }
    }
    for (int c = 0; c < copies; ++c) { cudaFree(ws[c]); cudaFree(ss[c]); }
    cudaFree(x); cudaFree(out);
  }
  return 0;
}

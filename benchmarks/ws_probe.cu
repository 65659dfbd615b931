// Probe of the skinny kernel's warp-specialized form (gemv/skinny_ws_kernel.cuh, the product's
// kernel itself, fp16/bf16 groupwise g128): every cluster split timed against a reference check,
// the split the launcher would pick (ws::choose_splits) marked, fp16 cuBLAS timed the same way.
// Cold L2 (rotating weight copies of >= 300 MB), CUDA graphs, best of three replays.
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I. -Icsrc benchmarks/ws_probe.cu \
//        -o ws_probe [-DPROBE_CUBLAS -lcublas] [-DW4A16_WS_TRACE] [-DWS_PROBE_BASE='"file.cuh"']
//   ./ws_probe KxN [KxN ...]      M = 17,33,64 (PROBE_M sets them); PROBE_S=splits: one split;
//                                 PROBE_DTYPE=bf16; PROBE_TRACE_ALL=1 (with -DW4A16_WS_TRACE): the
//                                 trace of every variant at every split; -DPROBE_NT_SWEEP: token tiles of 24-64
//                                 (24 and 32 for m <= 24, 40-64 for larger m); -DPROBE_SMALL_NT: the
//                                 8-token tile at m <= 8 and the 16-token one at m = 5-16; -DPROBE_STAGE_SWEEP: rings of 4, 8 and 12 stages
//                                 at 32 and 64 tokens; PROBE_SPREAD=1: the product's kernel timed
//                                 once more ("spread") with the dynamic shared memory that lets at
//                                 most ceil(CTAs / SMs) CTAs share an SM (tried in the twenty-third
//                                 session: never faster); PROBE_SLOTS=1: print the resident clusters per
//                                 split (at the kernel's shared memory and at 1-4 CTAs per SM), time nothing
//
// -DWS_PROBE_BASE / -DWS_PROBE_ALT / -DWS_PROBE_ALT2 name headers with other forms of the kernel
// as w4a16::skinny_old:: / skinny_alt:: / skinny_alt2::skinny_ws_kernel (same template and arguments): all
// are timed at every split in alternating rounds (an A/B of a change; the twenty-second
// session's epilogue). -DW4A16_WS_TRACE builds the
// kernel's clock64 marks: at the launcher's split, one launch per point prints each phase's mean
// and largest cycles over the CTAs (prologue, first stage's wait, the loop, the wait for the
// other warps, the partials and cluster barrier, the reduction, the last barrier), then warp 0's
// cycles in full-barrier waits and in wgmma waits and the producer's in empty-barrier waits and
// in its whole loop (means over the CTAs).
//
// The earlier probe (its own copy of the kernel, with the variants measured on the way: chunks per
// stage, 1-4 consumer warpgroups, two register sets) is in git history before this session
// (benchmarks/results/ws_h200_s21/README.md names its builds).
#include <cooperative_groups.h>
#ifdef PROBE_CUBLAS
#include <cublas_v2.h>
#endif
#include <cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gemv/skinny_ws_launch.cuh"
#ifdef WS_PROBE_BASE
#include WS_PROBE_BASE
#endif
#ifdef WS_PROBE_ALT
#include WS_PROBE_ALT
#endif
#ifdef WS_PROBE_ALT2
#include WS_PROBE_ALT2
#endif

using namespace w4a16;
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e_), __LINE__); exit(1);} } while (0)

// ---- reference: the packed weight dequantized to fp32 [N][K], then a naive product ----
template <class T>
__global__ void dequant_ref(const uint8_t* w, const T* scales, float* wd, int n, int k, int group) {
  const long long atom = blockIdx.x * 4LL + threadIdx.x / 32;  // one warp per 16x16 atom
  const int lane = threadIdx.x % 32;
  const long long atoms_per_block = k / 16;
  const long long rb = atom / atoms_per_block;
  const int ka = static_cast<int>(atom % atoms_per_block);
  if (rb * 16 >= n) return;
  const uint32_t word = *reinterpret_cast<const uint32_t*>(w + rb * 8LL * k + ka * 128LL + lane * 4);
  uint32_t f[4];
  gemv::codes_to_pairs<T>(word, f);
  const int g = lane / 4, c = lane % 4;
  for (int r = 0; r < 4; ++r) {
    const int row = static_cast<int>(rb * 16) + g + 8 * (r % 2);
    const int kk = ka * 16 + 2 * c + 8 * (r / 2);
    const T* pair = reinterpret_cast<const T*>(&f[r]);
    for (int e = 0; e < 2; ++e) {
      if (row >= n) continue;  // the packed weight's padding rows have no scale
      const float s = gemv::Act<T>::to_float(scales[static_cast<long long>((kk + e) / group) * n + row]);
      wd[static_cast<long long>(row) * k + kk + e] = gemv::Act<T>::to_float(pair[e]) * s;
    }
  }
}
template <class T>
__global__ void gemm_ref(const T* x, const float* wd, float* out, int m, int n, int k) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x, tok = blockIdx.y;
  if (row >= n) return;
  float v = 0.f;
  for (int i = 0; i < k; ++i) v += gemv::Act<T>::to_float(x[static_cast<long long>(tok) * k + i]) * wd[static_cast<long long>(row) * k + i];
  out[static_cast<long long>(tok) * n + row] = v;
}

__global__ void fill_rand(uint8_t* p, long n, uint32_t seed) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) { uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15; p[i] = h & 0xff; }
}
template <class T>
__global__ void fill_val(T* p, long n, uint32_t seed, float lo, float hi) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) { uint32_t h = (uint32_t)i * 2246822519u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15;
    p[i] = gemv::Act<T>::from_float(lo + (hi - lo) * (h & 0xffff) / 65535.f); }
}


static CUtensorMap map2d(const void* base, bool words, uint64_t d0, uint64_t d1, uint64_t stride1, uint32_t b0,
                         uint32_t b1, bool swz, bool stream) {
  CUtensorMap m;
  if (!skinny::ws::make_map(m, base, words, d0, d1, stride1, b0, b1, swz, stream)) { printf("map failed\n"); exit(1); }
  return m;
}

template <class T, int NT, int S = 8>
int run_layer(int k, int n, const std::vector<int>& ms_all, cudaStream_t stream, const char* dtname
#ifdef PROBE_CUBLAS
              , cublasHandle_t hb
#endif
) {
  using W = skinny::SkinnyWs<T, QuantMode::kGroupwise, NT, S>;
  const int g = 128;
  std::vector<int> ms;
#ifdef PROBE_NT_SWEEP  // token tiles of 24-64: 24 and 32 for m <= 24, 40 / 48 / 56 / 64 for m > 24 (as fits)
  for (int m : ms_all) if (m <= 8 * NT && (NT <= 4 ? m <= 24 : m > 24)) ms.push_back(m);
#elif defined(PROBE_SMALL_NT)  // the 8-token tile at every m <= 8, the 16-token tile from m = 5
  for (int m : ms_all) if (m <= 8 * NT && (NT == 1 || m > 4)) ms.push_back(m);
#else
  for (int m : ms_all) if (m <= 8 * NT && (NT == 4 || m > 4 * NT)) ms.push_back(m);
#endif
  if (ms.empty()) return 0;
  void* kern_new = (void*)skinny::skinny_ws_kernel<T, QuantMode::kGroupwise, NT, S>;
  std::vector<std::pair<const char*, void*>> kerns = {{"new", kern_new}};  // at most 4 (t, wrong, best)
#ifdef WS_PROBE_ALT2
  kerns.insert(kerns.begin(), {"alt2", (void*)skinny_alt2::skinny_ws_kernel<T, QuantMode::kGroupwise, NT, S>});
#endif
#ifdef WS_PROBE_ALT
  kerns.insert(kerns.begin(), {"alt", (void*)skinny_alt::skinny_ws_kernel<T, QuantMode::kGroupwise, NT, S>});
#endif
#ifdef WS_PROBE_BASE
  kerns.insert(kerns.begin(), {"base", (void*)skinny_old::skinny_ws_kernel<T, QuantMode::kGroupwise, NT, S>});
#endif
  // PROBE_SPREAD=1: the product's kernel once more ("spread"), launched with the dynamic shared
  // memory that lets at most ceil(CTAs / SMs) CTAs share an SM (W::kSmem where that is already so).
  const char* spread_env = std::getenv("PROBE_SPREAD");
  const bool spread = spread_env != nullptr && atoi(spread_env) != 0;
  if (spread) kerns.push_back({"spread", kern_new});
  if (kerns.size() > 4) { printf("at most 4 forms (base, alt, alt2, new, spread)\n"); exit(1); }
  int sm_cap = 0, sm_res = 0, sm_optin = 0, sm_count = 0;  // per SM, reserved per CTA, opt-in per CTA; SMs
  int dev = 0;
  {
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&sm_cap, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev));
    CK(cudaDeviceGetAttribute(&sm_res, cudaDevAttrReservedSharedMemoryPerBlock, dev));
    CK(cudaDeviceGetAttribute(&sm_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    CK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, dev));
  }
  if (std::getenv("PROBE_SLOTS")) {
    // PROBE_SLOTS=1: the resident clusters per split at the kernel's shared memory and at the
    // shared memory that lets at most p = 1..4 CTAs share an SM (then the layer is not timed)
    CK(cudaFuncSetAttribute(kern_new, cudaFuncAttributeMaxDynamicSharedMemorySize, sm_optin));
    CK(cudaFuncSetAttribute(kern_new, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    int per_sm = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern_new, skinny::ws::kThreads, W::kSmem));
    printf("slots NT=%d S=%d smem=%d per_sm=%d SMs=%d |", NT, S, W::kSmem, per_sm, sm_count);
    for (int s : {1, 2, 3, 4, 6, 8, 12, 16}) {
      int c0 = 0;
      gemv::resident_clusters(kern_new, skinny::ws::kThreads, W::kSmem, s, c0);
      printf(" %d:%d", s, c0);
      for (int p = 1; p <= 4; ++p) {
        const int bytes = std::max(W::kSmem, (sm_cap / (p + 1) - sm_res) / 128 * 128 + 128);  // as ws::one_per_sm_bytes at p = 1
        int c = 0;
        if (bytes <= sm_optin) gemv::resident_clusters(kern_new, skinny::ws::kThreads, bytes, s, c);
        printf("/%d", c);
      }
    }
    printf("\n");
    return 0;
  }
  for (auto& kv : kerns) {
    // as the launcher: the one-per-SM size allowed for the occupancy query (launches ask for kSmem)
    CK(cudaFuncSetAttribute(kv.second, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            spread ? sm_optin : std::max(W::kSmem, skinny::ws::one_per_sm_bytes(dev))));
    CK(cudaFuncSetAttribute(kv.second, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  }
  const int rbs = (n + 15) / 16;
  const long wbytes = (long)rbs * 16 * k / 2;
  const int copies = (int)std::max(2L, (300L << 20) / wbytes + 1);
  std::vector<uint8_t*> wsv(copies); std::vector<T*> ss(copies);
  std::vector<CUtensorMap> twm(copies), tsm(copies);
  for (int c = 0; c < copies; ++c) {
    CK(cudaMalloc(&wsv[c], wbytes)); fill_rand<<<(wbytes + 255) / 256, 256>>>(wsv[c], wbytes, c);
    CK(cudaMalloc(&ss[c], (long)k / g * n * 2));
    fill_val<<<((long)k / g * n + 255) / 256, 256>>>(ss[c], (long)k / g * n, 9 + c, 0.001f, 0.01f);
    twm[c] = map2d(wsv[c], true, 2ull * k, rbs, 8ull * k, 128, 8, false, true);
    tsm[c] = map2d(ss[c], false, n, k / g, 2ull * n, skinny::ws::kRows, 1, false, false);
  }
  T *x, *out; float *wd, *ref;
  CK(cudaMalloc(&x, 128L * k * 2)); CK(cudaMalloc(&out, 128L * n * 2));
  CK(cudaMalloc(&wd, (long)n * k * 4)); CK(cudaMalloc(&ref, 128L * n * 4));
  fill_val<<<(128 * k + 255) / 256, 256>>>(x, 128L * k, 1, -1, 1);
  dequant_ref<T><<<(unsigned)(((long)rbs * (k / 16) + 3) / 4), 128>>>(wsv[0], ss[0], wd, n, k, g);
#ifdef PROBE_CUBLAS
  const long hbytes = (long)n * k * 2;
  const int hcopies = (int)std::max(2L, (300L << 20) / hbytes + 1);
  std::vector<__half*> hw(hcopies);
  for (int c = 0; c < hcopies; ++c) { CK(cudaMalloc(&hw[c], hbytes)); fill_val<<<(hbytes / 2 + 255) / 256, 256>>>(hw[c], hbytes / 2, 5 + c, -1, 1); }
  __half *hx, *hout; CK(cudaMalloc(&hx, 128L * k * 2)); CK(cudaMalloc(&hout, 128L * n * 2));
  fill_val<<<(128 * k + 255) / 256, 256>>>(hx, 128L * k, 1, -1, 1);
#endif
  CK(cudaDeviceSynchronize());
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  auto time_graph = [&](auto&& body, int reps) {
    cudaGraph_t graph; cudaGraphExec_t exec;
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    for (int r = 0; r < reps; ++r) body(r);
    CK(cudaStreamEndCapture(stream, &graph));
    CK(cudaGraphInstantiate(&exec, graph, 0));
    CK(cudaGraphLaunch(exec, stream));
    float best = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      cudaEventRecord(e0, stream); CK(cudaGraphLaunch(exec, stream)); cudaEventRecord(e1, stream); CK(cudaEventSynchronize(e1));
      float t; cudaEventElapsedTime(&t, e0, e1); best = std::min(best, t);
    }
    cudaGraphExecDestroy(exec); cudaGraphDestroy(graph);
    return best * 1000 / reps;
  };
  printf("== %s K=%d N=%d (%.1f MB int4, %d copies) NT=%d S=%d\n", dtname, k, n, wbytes / 1e6, copies, NT, S);
  const int row_groups = (n + skinny::ws::kRows - 1) / skinny::ws::kRows;
  // the launcher's occupancy answers (ws::choose_splits): per split, the clusters resident at once
  // and those that fit one CTA per SM; the kernel's CTAs per SM
  int slots_of[17] = {0};
  skinny::ws::Fit fit_of[17];
  const int spread_bytes = skinny::ws::one_per_sm_bytes(dev);
  int cta_per_sm = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&cta_per_sm, kern_new, skinny::ws::kThreads, W::kSmem));
  for (int s : {1, 2, 3, 4, 6, 8, 12, 16}) {
    int cl = 0;
    if (gemv::resident_clusters(kern_new, skinny::ws::kThreads, W::kSmem, s, cl) == cudaSuccess) slots_of[s] = cl * s;
    fit_of[s].resident = cl;
    if (spread_bytes > W::kSmem) gemv::resident_clusters(kern_new, skinny::ws::kThreads, spread_bytes, s, fit_of[s].spread);
  }
  for (int m : ms) {
    gemm_ref<T><<<dim3((n + 127) / 128, m), 128>>>(x, wd, ref, m, n, k);
    float t_cublas = 0.f;
#ifdef PROBE_CUBLAS
    const float one = 1.f, zero = 0.f;
    t_cublas = time_graph([&](int r) {
      cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, hw[r % hcopies], CUDA_R_16F, k, hx, CUDA_R_16F, k,
                   &zero, hout, CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }, std::max(hcopies, 20));
#endif
    const CUtensorMap txm = map2d(x, false, k, m, 2ull * k, 64, 8 * NT, true, false);
    const int pick = skinny::ws::choose_splits(row_groups, k, cta_per_sm, [&](int s) { return fit_of[s]; });
    printf("%s m=%d cublas=%.2f pick=%d |", dtname, m, t_cublas, pick);
    float best[4] = {1e9f, 1e9f, 1e9f, 1e9f};
    for (int s : {1, 2, 3, 4, 6, 8, 12, 16}) {
      if (k / skinny::kChunkK < s) break;
      if (const char* f = std::getenv("PROBE_S"); f && atoi(f) != s) continue;
      if (slots_of[s] <= 0) continue;
      cudaLaunchAttribute at[2], at_sp[2];
      const cudaLaunchConfig_t cfg = gemv::cluster_config(row_groups * s, skinny::ws::kThreads, W::kSmem, s, stream, at);
      int smem_sp = W::kSmem;
      {
        const int per_sm = (row_groups * s + sm_count - 1) / sm_count;
        // the least size at which per_sm + 1 CTAs no longer fit an SM
        const int want = sm_cap / (per_sm + 1) - sm_res + 128;
        if (want > smem_sp && want <= sm_optin) smem_sp = want;
      }
      const cudaLaunchConfig_t cfg_sp = gemv::cluster_config(row_groups * s, skinny::ws::kThreads, smem_sp, s, stream, at_sp);
      float t[4] = {1e9f, 1e9f, 1e9f, 1e9f};
      bool wrong[4] = {false, false, false, false};
      for (size_t v = 0; v < kerns.size(); ++v) {
        auto launch = [&](int c) {
          skinny::ws::Params prm{ss[c], nullptr, out, m, n, k, g, s, (int64_t)n};
          void* args[] = {(void*)&txm, (void*)&twm[c], (void*)&tsm[c], (void*)&tsm[c], &prm};
          CK(cudaLaunchKernelExC(kerns[v].first == std::string("spread") ? &cfg_sp : &cfg, kerns[v].second, args));
        };
        CK(cudaMemsetAsync(out, 0xff, 128L * n * 2, stream));
        launch(0);
        CK(cudaStreamSynchronize(stream));
        std::vector<uint16_t> ho((size_t)m * n); std::vector<float> hr((size_t)m * n);
        CK(cudaMemcpy(ho.data(), out, ho.size() * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hr.data(), ref, hr.size() * 4, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < ho.size(); ++i) {
          float o;
          if constexpr (std::is_same<T, __half>::value) o = __half2float(__ushort_as_half(ho[i]));
          else o = __bfloat162float(__ushort_as_bfloat16(ho[i]));
          if (!(std::fabs((double)o - hr[i]) <= 0.02 * std::fabs(hr[i]) + 0.02)) { wrong[v] = true; break; }
        }
      }
      const int reps = copies < 50 ? 4 * copies : copies;
      for (int round = 0; round < 2; ++round)  // alternating rounds: base, alt, new, base, alt, new
        for (size_t v = 0; v < kerns.size(); ++v) {
          const float tv = time_graph([&](int r) {
            const int c = r % copies;
            skinny::ws::Params prm{ss[c], nullptr, out, m, n, k, g, s, (int64_t)n};
            void* args[] = {(void*)&txm, (void*)&twm[c], (void*)&tsm[c], (void*)&tsm[c], &prm};
            CK(cudaLaunchKernelExC(kerns[v].first == std::string("spread") ? &cfg_sp : &cfg, kerns[v].second, args));
          }, reps);
          t[v] = std::min(t[v], tv);
        }
      if (spread) printf(" [%d:smem %d]", s, smem_sp);
      printf(" %d:", s);
      for (size_t v = 0; v < kerns.size(); ++v) {
        printf("%s%.2f%s", v ? "/" : "", t[v], wrong[v] ? "!WRONG" : "");
        best[v] = std::min(best[v], t[v]);
      }
#ifdef W4A16_WS_TRACE
      // PROBE_TRACE_ALL=1: every variant at every split; otherwise the product's at the pick
      const bool all = std::getenv("PROBE_TRACE_ALL") != nullptr;
      for (size_t v = 0; v < kerns.size(); ++v) {
        if (!(all || (s == pick && kerns[v].second == kern_new))) continue;
        unsigned long long* tr; const int ctas = row_groups * s;
        CK(cudaMalloc(&tr, (size_t)ctas * 16 * 8)); CK(cudaMemset(tr, 0, (size_t)ctas * 16 * 8));
        CK(cudaMemcpyToSymbol(skinny::ws::ws_trace, &tr, sizeof(tr)));
        skinny::ws::Params prm{ss[1 % copies], nullptr, out, m, n, k, g, s, (int64_t)n};
        void* args[] = {(void*)&txm, (void*)&twm[1 % copies], (void*)&tsm[1 % copies], (void*)&tsm[1 % copies], &prm};
        CK(cudaLaunchKernelExC(kerns[v].first == std::string("spread") ? &cfg_sp : &cfg, kerns[v].second, args));
        CK(cudaStreamSynchronize(stream));
        std::vector<unsigned long long> h((size_t)ctas * 16);
        CK(cudaMemcpy(h.data(), tr, h.size() * 8, cudaMemcpyDeviceToHost));
        unsigned long long* nul = nullptr;
        CK(cudaMemcpyToSymbol(skinny::ws::ws_trace, &nul, sizeof(nul)));
        CK(cudaFree(tr));
        const int a[] = {0, 1, 2, 3, 4, 6, 7, 0}, b[] = {1, 2, 3, 4, 6, 7, 8, 8};
        const char* nm[] = {"init", "first", "loop", "join", "part+sync", "reduce", "last", "all"};
        printf(" [trace %s s=%d:", kerns[v].first, s);
        for (int j = 0; j < 8; ++j) {
          double sum = 0, mx = 0;
          for (int c = 0; c < ctas; ++c) {
            const double d = (double)(h[c * 16 + b[j]] - h[c * 16 + a[j]]);
            sum += d; mx = std::max(mx, d);
          }
          printf(" %s %.0f/%.0f", nm[j], sum / ctas, mx);
        }
        double fw = 0, mw = 0, pe = 0, pl = 0;
        for (int c = 0; c < ctas; ++c) { fw += h[c * 16 + 9]; mw += h[c * 16 + 10]; pe += h[c * 16 + 11]; pl += h[c * 16 + 12]; }
        printf(" | warp 0: full-wait %.0f wgmma-wait %.0f; producer: empty-wait %.0f loop %.0f; stages/CTA %.1f]",
               fw / ctas, mw / ctas, pe / ctas, pl / ctas, (double)(k / skinny::kChunkK) / s);
      }
#endif
    }
    printf(" | best");
    for (size_t v = 0; v < kerns.size(); ++v) printf(" %s %.2f (%.2fx)", kerns[v].first, best[v], t_cublas / best[v]);
    printf("\n");
    fflush(stdout);
  }
  for (int c = 0; c < copies; ++c) { cudaFree(wsv[c]); cudaFree(ss[c]); }
  cudaFree(x); cudaFree(out); cudaFree(wd); cudaFree(ref);
#ifdef PROBE_CUBLAS
  for (int c = 0; c < hcopies; ++c) cudaFree(hw[c]);
  cudaFree(hx); cudaFree(hout);
#endif
  cudaEventDestroy(e0); cudaEventDestroy(e1);
  return 0;
}

template <class T>
int run_all(int argc, char** argv, const char* dtname) {
  std::vector<int> ms = {17, 33, 64};
  if (const char* e = std::getenv("PROBE_M")) {
    ms.clear();
    for (const char* q = e; *q;) { ms.push_back(atoi(q)); while (*q && *q != ',') ++q; if (*q) ++q; }
  }
  cudaStream_t stream; CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
#ifdef PROBE_CUBLAS
  cublasHandle_t hb; cublasCreate(&hb); cublasSetStream(hb, stream);
#endif
  for (int ai = 1; ai < argc; ++ai) {
    int k, n; sscanf(argv[ai], "%dx%d", &k, &n);
    if (n % 8 || k % 128) { printf("skip %s: N %% 8 or K %% 128\n", argv[ai]); continue; }
#ifdef PROBE_CUBLAS
#define PROBE_LAYER(NT, S) run_layer<T, NT, S>(k, n, ms, stream, dtname, hb)
#else
#define PROBE_LAYER(NT, S) run_layer<T, NT, S>(k, n, ms, stream, dtname)
#endif
#if defined(PROBE_NT_SWEEP)
    PROBE_LAYER(3, 8); PROBE_LAYER(4, 8); PROBE_LAYER(5, 8); PROBE_LAYER(6, 8); PROBE_LAYER(7, 8); PROBE_LAYER(8, 8);
#elif defined(PROBE_SMALL_NT)  // the product's tiles of 8 and 16 tokens
    PROBE_LAYER(1, 8); PROBE_LAYER(2, 8);
#elif defined(PROBE_STAGE_SWEEP)  // ring depths beside the product's 8
    PROBE_LAYER(4, 4); PROBE_LAYER(4, 8); PROBE_LAYER(4, 12);
    PROBE_LAYER(8, 4); PROBE_LAYER(8, 8); PROBE_LAYER(8, 12);
#else
    PROBE_LAYER(4, 8); PROBE_LAYER(8, 8); PROBE_LAYER(16, 8);
#endif
  }
  return 0;
}

int main(int argc, char** argv) {
  const char* dt = std::getenv("PROBE_DTYPE");
  if (dt && std::string(dt) == "bf16") return run_all<__nv_bfloat16>(argc, argv, "bf16");
  return run_all<__half>(argc, argv, "fp16");
}

// Probe of a warp-specialized small-batch kernel for M = 17-128 (issue 15): one producer warp
// feeds a ring of shared-memory stages by tensor copies (TMA: x, the packed weight of 128 rows,
// their scales), two consumer warpgroups each multiply 64 rows by all tokens with wgmma (the
// dequantized weight fragment as the register A operand, x as B from shared memory), split K over
// a thread-block cluster summed through distributed shared memory in a fixed order.
//
// Why (benchmarks/NOTES.md, "The warpgroup form"): the skinny kernel's warpgroup form does copies,
// dequantization, wgmma and the reduction in the same 8 warps (about 420 instructions per warp
// and 64-k chunk, 4 of them wgmma) and runs 2-3x behind CUTLASS on large layers at M >= 32. Here
// the consumers only wait, dequantize (one ldmatrix, two scale loads, 4 x 12 instructions per
// chunk) and issue wgmma; the producer issues three tensor copies per 64-k chunk.
//
// The product's form is gemv/skinny_ws_kernel.cuh (this probe's m*_s8_c1_w2 variants, all modes);
// the probe keeps the variants measured on the way (benchmarks/NOTES.md, "Twenty-first session"):
// chunks per stage (c), consumer warpgroups per CTA (w), two register sets (db). fp16/bf16
// groupwise (no zero point) only, N a multiple of 8, K of 128, group 128. It checks every launch
// against a reference and times every cluster split. -DPROBE_ROUND1 / -DPROBE_ROUND2 build the
// first and second sets of variants measured (results/ws_h200_s21/README.md), the default the last.
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I. -Icsrc benchmarks/ws_probe.cu \
//        -o ws_probe [-DPROBE_CUBLAS -lcublas]   (from the repo root)
//   ./ws_probe KxN [KxN ...]      M = 17,33,64,127 (PROBE_M sets them); cold L2 (rotating copies
//                                 of >= 300 MB), CUDA graphs; fp16 cuBLAS timed the same way;
//                                 PROBE_V=name, PROBE_S=splits: one variant, one split count;
//                                 PROBE_DTYPE=bf16; PROBE_SKIP=1|2 drops the x copies, the
//                                 weight copies (timing experiments; wrong results)
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

#include "gemv/dequant.cuh"
#include "gemv/skinny_kernel.cuh"
#include "gemv/wgmma.cuh"

using namespace w4a16;
namespace cg = cooperative_groups;
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e_), __LINE__); exit(1);} } while (0)

namespace ws {

constexpr int kChunkK = 64;
constexpr int kBarBytes = 1024;

// A CTA: WGS consumer warpgroups (64 rows each) and one producer warp. A stage: CPS chunks of
// 64 k: x (8*NT token rows per chunk, 128-byte swizzle), the packed weight of the CTA's rows
// (CPS * 512 bytes per 16-row block, contiguous in the packed layout), one scale row per chunk.
template <int NT, int CPS, int WGS>
struct Layout {
  static constexpr int kRows = 64 * WGS;
  static constexpr int kXChunk = NT * 1024;
  static constexpr int kX = CPS * kXChunk;
  static constexpr int kW = CPS * 512 * 4 * WGS;
  static constexpr int kSBytes = CPS * kRows * 2;
  static constexpr int kS = (kSBytes + 1023) / 1024 * 1024;
  static constexpr int kStage = kX + kW + kS;
  static constexpr int kTx = kX + kW + kSBytes;  // bytes the copies of one stage bring
  static_assert(kStage % 1024 == 0, "x of every stage stays 1024-byte aligned (the swizzle atom)");
};

struct Params {
  const void* bias;
  void* out;
  int m, n, k, group, splits;
  long long ld_out;
  int skip;  // probe experiments (PROBE_SKIP): 1 no x copies, 2 no weight copies
};

__device__ __forceinline__ void tma_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
      :: "r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar) : "memory");
}
__device__ __forceinline__ void tma_2d_evict_first(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar,
                                                   uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3}], [%4], %5;\n"
      :: "r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "l"(policy) : "memory");
}

template <int WGS, int NT, int CPS>
struct Threads {
  static constexpr int kConsumerWarps = 4 * WGS;
  static constexpr int value = (kConsumerWarps + 1) * 32;
  // CTAs per SM the registers should allow (two register sets of two chunks need more)
  static constexpr int kMinCtas = CPS > 1 || WGS > 2 ? 1 : WGS == 1 ? (NT <= 8 ? 3 : 2) : (NT <= 8 ? 2 : 1);
};

// DB: the next stage's fragments are dequantized into a second register set while the previous
// stage's wgmma run (wait_group 1); without it, each stage waits for the previous one's wgmma
// before its fragments are written (wait_group 0), as the skinny kernel's warpgroup form does.
template <class T, int NT, int S, int CPS, int WGS, bool DB>
__global__ void __launch_bounds__(Threads<WGS, NT, CPS>::value, Threads<WGS, NT, CPS>::kMinCtas)
    ws_kernel(const __grid_constant__ CUtensorMap tx, const __grid_constant__ CUtensorMap tw,
              const __grid_constant__ CUtensorMap ts, const Params p) {
  using L = Layout<NT, CPS, WGS>;
  using A = gemv::Act<T>;
  constexpr int kCW = Threads<WGS, NT, CPS>::kConsumerWarps;
  constexpr int kThreads = Threads<WGS, NT, CPS>::value;
  constexpr int kRows = L::kRows;
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint64_t* full = reinterpret_cast<uint64_t*>(smem_raw);
  uint64_t* empty = full + S;
  // The stages start 1024-byte aligned (the dynamic allocation has 1 KB to spare for it).
  uint8_t* stages = smem_raw + kBarBytes + ((1024 - (gemv::smem_addr(smem_raw) + kBarBytes) % 1024) % 1024);
  const int warp = __shfl_sync(0xffffffff, static_cast<int>(threadIdx.x / 32), 0), lane = threadIdx.x % 32;
  cg::cluster_group cluster = cg::this_cluster();
  const int split = static_cast<int>(cluster.block_rank());
  const int tile = blockIdx.x / p.splits;
  const int nst = p.k / (kChunkK * CPS);  // stages of the whole K
  const int st_begin = split * nst / p.splits;
  const int my = (split + 1) * nst / p.splits - st_begin;

  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      gemv::mbarrier_init(gemv::smem_addr(full + s), 1);
      gemv::mbarrier_init(gemv::smem_addr(empty + s), kCW);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.f;

  if (warp == kCW) {
    if (lane == 0) {
      const uint64_t policy = gemv::evict_first_policy();
      for (int i = 0; i < my; ++i) {
        const int slot = i % S;
        if (i >= S) gemv::mbarrier_wait(gemv::smem_addr(empty + slot), ((i / S) - 1) & 1);
        const uint32_t st = gemv::smem_addr(stages + slot * L::kStage);
        const uint32_t bar = gemv::smem_addr(full + slot);
        gemv::mbarrier_expect_tx(bar, (p.skip & 1 ? 0 : L::kX) + (p.skip & 2 ? 0 : L::kW) + L::kSBytes);
        const int c0 = (st_begin + i) * CPS, k0 = c0 * kChunkK;
        if (!(p.skip & 2)) tma_2d_evict_first(st + L::kX, &tw, c0 * 128, tile * 4 * WGS, bar, policy);
#pragma unroll
        for (int c = 0; c < CPS; ++c) {
          if (!(p.skip & 1)) tma_2d(st + c * L::kXChunk, &tx, k0 + c * kChunkK, 0, bar);
          tma_2d(st + L::kX + L::kW + c * kRows * 2, &ts, tile * kRows, (k0 + c * kChunkK) / p.group, bar);
        }
      }
    }
  } else {
    const int g = lane / 4;
    const uint32_t w_lane_off = (lane / 8) * 128 + (lane % 8) * 16;
    const uint32_t stages0 = gemv::smem_addr(stages);
    const uint64_t desc0 = gemv::wgmma_desc(stages0, 16, 1024) | (1ull << 62);
    uint32_t fr[DB ? 2 : 1][CPS * 4][4];
    // One stage into register set B: wait for its data, dequantize, issue its wgmma; then release
    // the stage before it once its wgmma are done.
    auto body = [&](int i, auto buf) {
      constexpr int B = decltype(buf)::value;
      const int slot = i % S;
      const uint32_t st = stages0 + slot * L::kStage;
      gemv::mbarrier_wait(gemv::smem_addr(full + slot), (i / S) & 1);
      uint32_t wq[CPS][4], s_lo[CPS], s_hi[CPS];
#pragma unroll
      for (int c = 0; c < CPS; ++c) {
        gemv::ldmatrix_x4(wq[c], st + L::kX + warp * (CPS * 512) + c * 512 + w_lane_off);
        const uint32_t srow = st + L::kX + L::kW + c * kRows * 2 + (warp * 16 + g) * 2;
        s_lo[c] = skinny::splat16(gemv::lds_u16(srow));
        s_hi[c] = skinny::splat16(gemv::lds_u16(srow + 16));
      }
      if constexpr (!DB) {
        gemv::wgmma_wait<0>();
        if (i > 0) {
          __syncwarp();
          if (lane == 0) gemv::mbarrier_arrive(gemv::smem_addr(empty + (i - 1) % S));
        }
      }
#pragma unroll
      for (int c = 0; c < CPS; ++c)
#pragma unroll
        for (int a = 0; a < 4; ++a)
          skinny::dequant_scaled<T, QuantMode::kGroupwise>(wq[c][a], s_lo[c], s_hi[c], 0, 0, fr[B][c * 4 + a]);
      uint64_t desc[CPS * 4];
#pragma unroll
      for (int c = 0; c < CPS; ++c)
#pragma unroll
        for (int a = 0; a < 4; ++a) {
          // K-major B with 128-byte swizzle: 16 k = 32 bytes into the swizzled rows, 1024 bytes
          // between groups of 8 token rows, layout type 1 (bits 62-63).
          desc[c * 4 + a] = desc0 + ((slot * L::kStage + c * L::kXChunk + a * 32) >> 4);
          gemv::pin(desc[c * 4 + a]);
#pragma unroll
          for (int j = 0; j < 4; ++j) gemv::pin(fr[B][c * 4 + a][j]);
        }
      gemv::wgmma_fence();
#pragma unroll
      for (int q = 0; q < CPS * 4; ++q) gemv::Wgmma<T, NT>::run(acc, fr[B][q], desc[q]);
      gemv::wgmma_commit();
      if constexpr (DB) {
        gemv::wgmma_wait<1>();  // the previous stage's wgmma are done: its registers and slot are free
#pragma unroll
        for (int q = 0; q < CPS * 4; ++q)
#pragma unroll
          for (int j = 0; j < 4; ++j) gemv::pin(fr[B ^ 1][q][j]);
        if (i > 0) {
          __syncwarp();
          if (lane == 0) gemv::mbarrier_arrive(gemv::smem_addr(empty + (i - 1) % S));
        }
      }
    };
    if constexpr (DB) {
      int i = 0;
      for (; i + 1 < my; i += 2) {
        body(i, std::integral_constant<int, 0>{});
        body(i + 1, std::integral_constant<int, 1>{});
      }
      if (i < my) body(i, std::integral_constant<int, 0>{});
    } else {
      for (int i = 0; i < my; ++i) body(i, std::integral_constant<int, 0>{});
    }
    gemv::wgmma_wait<0>();
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int j = 0; j < 4; ++j) gemv::pin(acc[t][j]);
  }
  __syncthreads();  // every stage consumed: the ring becomes the partials

  float* red = reinterpret_cast<float*>(stages);  // [8*NT tokens][kRows]
  if (warp < kCW) {
    const int r = warp * 16 + lane / 4;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int tok = t * 8 + 2 * (lane % 4);
      if (tok < p.m) {
        red[tok * kRows + r] = acc[t][0];
        red[tok * kRows + r + 8] = acc[t][2];
      }
      if (tok + 1 < p.m) {
        red[(tok + 1) * kRows + r] = acc[t][1];
        red[(tok + 1) * kRows + r + 8] = acc[t][3];
      }
    }
  }
  cluster.sync();
  const int per = (kRows + p.splits - 1) / p.splits;
  const int r_begin = split * per, r_count = max(0, min(per, kRows - r_begin));
  T* out = static_cast<T*>(p.out);
  const T* bias = static_cast<const T*>(p.bias);
  const int row0 = tile * kRows;
  for (int i = threadIdx.x; i < p.m * r_count; i += kThreads) {
    const int tok = i / r_count, r = r_begin + i % r_count, row = row0 + r;
    if (row >= p.n) continue;
    float v = 0.f;
    for (int s = 0; s < p.splits; ++s) v += cluster.map_shared_rank(red, s)[tok * kRows + r];
    if (bias != nullptr) v += A::to_float(bias[row]);
    out[static_cast<long long>(tok) * p.ld_out + row] = A::from_float(v);
  }
  cluster.sync();
}

}  // namespace ws

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
      const float s = gemv::Act<T>::to_float(scales[static_cast<long long>((kk + e) / group) * n + row]);
      if (row < n) wd[static_cast<long long>(row) * k + kk + e] = gemv::Act<T>::to_float(pair[e]) * s;
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

static CUtensorMap make_map(void* base, uint64_t d0, uint64_t d1, uint64_t stride1, uint32_t b0, uint32_t b1,
                            CUtensorMapL2promotion promo, CUtensorMapSwizzle swz = CU_TENSOR_MAP_SWIZZLE_NONE,
                            CUtensorMapDataType dt = CU_TENSOR_MAP_DATA_TYPE_UINT16) {
  CUtensorMap m;
  cuuint64_t dims[2] = {d0, d1}, strides[1] = {stride1};
  cuuint32_t box[2] = {b0, b1}, es[2] = {1, 1};
  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*, const cuuint64_t*,
                              const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                              CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static Encode encode = nullptr;
  if (encode == nullptr) {  // from the driver at run time: no -lcuda
    cudaDriverEntryPointQueryResult q;
    CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", reinterpret_cast<void**>(&encode), 12000,
                                        cudaEnableDefault, &q));
    if (q != cudaDriverEntryPointSuccess || encode == nullptr) { printf("no cuTensorMapEncodeTiled\n"); exit(1); }
  }
  CUresult r = encode(&m, dt, 2, base, dims, strides, box, es,
                                      CU_TENSOR_MAP_INTERLEAVE_NONE, swz, promo,
                                      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) { printf("cuTensorMapEncodeTiled failed (%d): d0=%llu d1=%llu\n", (int)r, (unsigned long long)d0, (unsigned long long)d1); exit(1); }
  return m;
}

struct Variant {
  const char* name;
  int nt, stages, cps, wgs;
  void* kernel;
  int smem;
};
template <class T, int NT, int S, int CPS, int WGS, bool DB>
Variant variant(const char* nm) {
  // the ring, or the partials that reuse it (8*NT tokens x 64*WGS rows of fp32) if larger
  return {nm, NT, S, CPS, WGS, (void*)ws::ws_kernel<T, NT, S, CPS, WGS, DB>,
          ws::kBarBytes + 1024 + std::max(S * ws::Layout<NT, CPS, WGS>::kStage, 8 * NT * 64 * WGS * 4)};
}

template <class T>
int run_all(int argc, char** argv, const char* dtname) {
  // name: tokens, stages, chunks per stage (c), consumer warpgroups (w), double-buffered (db)
#ifdef PROBE_ONLY
  std::vector<Variant> vs = {variant<T, 8, 8, 1, 2, true>("m64_s8_c1_w2_db")};
#elif !defined(PROBE_ROUND1) && !defined(PROBE_ROUND2)
  std::vector<Variant> vs = {
      variant<T, 4, 8, 1, 2, false>("m32_s8_c1_w2"), variant<T, 4, 4, 2, 2, true>("m32_s4_c2_w2_db"),
      variant<T, 8, 8, 1, 2, false>("m64_s8_c1_w2"), variant<T, 8, 4, 2, 2, true>("m64_s4_c2_w2_db"),
      variant<T, 16, 8, 1, 2, false>("m128_s8_c1_w2")};
#elif !defined(PROBE_ROUND1)
  std::vector<Variant> vs = {
      variant<T, 4, 8, 1, 2, false>("m32_s8_c1_w2"),     variant<T, 4, 8, 1, 4, false>("m32_s8_c1_w4"),
      variant<T, 4, 4, 2, 4, false>("m32_s4_c2_w4"),     variant<T, 4, 6, 1, 3, false>("m32_s6_c1_w3"),
      variant<T, 8, 8, 1, 2, false>("m64_s8_c1_w2"),     variant<T, 8, 8, 1, 4, false>("m64_s8_c1_w4"),
      variant<T, 8, 6, 1, 3, false>("m64_s6_c1_w3"),     variant<T, 8, 4, 2, 4, false>("m64_s4_c2_w4"),
      variant<T, 8, 6, 1, 4, true>("m64_s6_c1_w4_db"),
      variant<T, 16, 8, 1, 2, false>("m128_s8_c1_w2"),   variant<T, 16, 6, 1, 3, false>("m128_s6_c1_w3"),
      variant<T, 16, 4, 1, 3, false>("m128_s4_c1_w3")};
#else
  std::vector<Variant> vs = {
      variant<T, 4, 8, 1, 2, false>("m32_s8_c1_w2"),     variant<T, 4, 8, 1, 2, true>("m32_s8_c1_w2_db"),
      variant<T, 4, 4, 2, 2, true>("m32_s4_c2_w2_db"),   variant<T, 4, 8, 1, 1, true>("m32_s8_c1_w1_db"),
      variant<T, 8, 8, 1, 2, false>("m64_s8_c1_w2"),     variant<T, 8, 8, 1, 2, true>("m64_s8_c1_w2_db"),
      variant<T, 8, 4, 2, 2, true>("m64_s4_c2_w2_db"),   variant<T, 8, 8, 1, 1, true>("m64_s8_c1_w1_db"),
      variant<T, 8, 4, 2, 1, true>("m64_s4_c2_w1_db"),
      variant<T, 16, 8, 1, 2, false>("m128_s8_c1_w2"),   variant<T, 16, 6, 1, 2, true>("m128_s6_c1_w2_db"),
      variant<T, 16, 4, 2, 1, true>("m128_s4_c2_w1_db"), variant<T, 16, 6, 1, 1, true>("m128_s6_c1_w1_db")};
#endif
  for (auto& v : vs) {
    CK(cudaFuncSetAttribute(v.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, v.smem));
    CK(cudaFuncSetAttribute(v.kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    cudaFuncAttributes fa; CK(cudaFuncGetAttributes(&fa, v.kernel));
    printf("# %s %s: %d registers, %d B shared\n", dtname, v.name, fa.numRegs, v.smem);
  }
  std::vector<int> ms = {17, 33, 64, 127};
  if (const char* e = std::getenv("PROBE_M")) {
    ms.clear();
    for (const char* q = e; *q;) { ms.push_back(atoi(q)); while (*q && *q != ',') ++q; if (*q) ++q; }
  }
  int sms = 0; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int skip = std::getenv("PROBE_SKIP") ? atoi(std::getenv("PROBE_SKIP")) : 0;
  if (skip) printf("# PROBE_SKIP=%d: results are wrong by design\n", skip);
  cudaStream_t stream; CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
#ifdef PROBE_CUBLAS
  cublasHandle_t hb; cublasCreate(&hb); cublasSetStream(hb, stream);
#endif
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
  for (int ai = 1; ai < argc; ++ai) {
    int k, n; sscanf(argv[ai], "%dx%d", &k, &n);
    const int g = 128;
    if (n % 8 || k % 128) { printf("skip %s: N %% 8 or K %% 128\n", argv[ai]); continue; }
    const int rbs = (n + 15) / 16;
    long wbytes = (long)rbs * 16 * k / 2;
    int copies = (int)std::max(2L, (300L << 20) / wbytes + 1);
    std::vector<uint8_t*> ws(copies); std::vector<T*> ss(copies);
    // weight and scale maps per copy, for 1 and 2 consumer warpgroups; the weight box holds
    // CPS * 512 bytes of 4 * WGS row blocks: 2 chunks with one warpgroup, 1 with two (see below)
    std::vector<CUtensorMap> twm[2][4], tsm[4];
    for (auto& a : twm) for (auto& b : a) b.resize(copies);
    for (auto& a : tsm) a.resize(copies);
    for (int c = 0; c < copies; ++c) {
      CK(cudaMalloc(&ws[c], wbytes)); fill_rand<<<(wbytes + 255) / 256, 256>>>(ws[c], wbytes, c);
      CK(cudaMalloc(&ss[c], (long)k / g * n * 2)); fill_val<<<((long)k / g * n + 255) / 256, 256>>>(ss[c], (long)k / g * n, 9 + c, 0.001f, 0.01f);
      for (int w = 1; w <= 4; ++w) {
        for (int cps = 1; cps <= 2; ++cps)  // 32-bit elements: CPS * 512 bytes = 128 * CPS elements per row block
          twm[cps - 1][w - 1][c] = make_map(ws[c], (uint64_t)k * 2, rbs, (uint64_t)k * 8, 128 * cps, 4 * w,
                                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_DATA_TYPE_UINT32);
        tsm[w - 1][c] = make_map(ss[c], n, k / g, (uint64_t)n * 2, 64 * w, 1, CU_TENSOR_MAP_L2_PROMOTION_NONE);
      }
    }
    T *x, *out; float *wd, *ref;
    CK(cudaMalloc(&x, 128L * k * 2)); CK(cudaMalloc(&out, 128L * n * 2));
    CK(cudaMalloc(&wd, (long)n * k * 4)); CK(cudaMalloc(&ref, 128L * n * 4));
    fill_val<<<(128 * k + 255) / 256, 256>>>(x, 128L * k, 1, -1, 1);
    dequant_ref<T><<<(unsigned)(((long)rbs * (k / 16) + 3) / 4), 128>>>(ws[0], ss[0], wd, n, k, g);
    // cuBLAS fp16 (the baseline of every ratio), rotating weight copies, the TN layout.
    long hbytes = (long)n * k * 2;
    int hcopies = (int)std::max(2L, (300L << 20) / hbytes + 1);
    std::vector<__half*> hw(hcopies);
    for (int c = 0; c < hcopies; ++c) { CK(cudaMalloc(&hw[c], hbytes)); fill_val<<<(hbytes / 2 + 255) / 256, 256>>>(hw[c], hbytes / 2, 5 + c, -1, 1); }
    __half *hx, *hout; CK(cudaMalloc(&hx, 128L * k * 2)); CK(cudaMalloc(&hout, 128L * n * 2));
    fill_val<<<(128 * k + 255) / 256, 256>>>(hx, 128L * k, 1, -1, 1);
    CK(cudaDeviceSynchronize());
    printf("== %s K=%d N=%d (%.1f MB int4, %d copies)\n", dtname, k, n, wbytes / 1e6, copies);
    for (int m : ms) {
      gemm_ref<T><<<dim3((n + 127) / 128, m), 128>>>(x, wd, ref, m, n, k);
      const float one = 1.f, zero = 0.f;
      const int hreps = std::max(hcopies, 20);
#ifdef PROBE_CUBLAS
      const float t_cublas = time_graph([&](int r) {
        cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, hw[r % hcopies], CUDA_R_16F, k, hx, CUDA_R_16F, k,
                     &zero, hout, CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      }, hreps);
#else
      (void)one; (void)zero; (void)hreps;
      const float t_cublas = 0.f;
#endif
      printf("m=%d cublas=%.2f\n", m, t_cublas);
      CUtensorMap txm_all[3];
      for (auto& v : vs) {
        if (m > 8 * v.nt || (v.nt > 4 && m <= 4 * v.nt)) continue;  // each variant at the M it is meant for
        if (const char* f = std::getenv("PROBE_V"); f && std::string(v.name) != f) continue;
        const CUtensorMap txm = make_map(x, k, m, (uint64_t)k * 2, 64, 8 * v.nt, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                                         CU_TENSOR_MAP_SWIZZLE_128B);
        (void)txm_all;
        if (k % (ws::kChunkK * v.cps)) continue;
        const int rows = 64 * v.wgs, tiles = (n + rows - 1) / rows, threads = (4 * v.wgs + 1) * 32;
        printf("%s m=%d tiles=%d", v.name, m, tiles);
        float best = 1e9; int best_s = 0;
        for (int s : {1, 2, 3, 4, 6, 8, 12, 16}) {
          if (s > k / (ws::kChunkK * v.cps)) break;
          if (const char* f = std::getenv("PROBE_S"); f && atoi(f) != s) continue;
          cudaLaunchConfig_t cfg{};
          cfg.gridDim = dim3(tiles * s, 1, 1); cfg.blockDim = dim3(threads, 1, 1); cfg.dynamicSmemBytes = v.smem; cfg.stream = stream;
          cudaLaunchAttribute at[1];
          at[0].id = cudaLaunchAttributeClusterDimension; at[0].val.clusterDim.x = s; at[0].val.clusterDim.y = 1; at[0].val.clusterDim.z = 1;
          cfg.attrs = at; cfg.numAttrs = 1;
          int clusters = 0;
          if (cudaOccupancyMaxActiveClusters(&clusters, v.kernel, &cfg) != cudaSuccess) { cudaGetLastError(); clusters = -1; }
          if (clusters <= 0) { printf(" %d:-", s); continue; }
          auto launch = [&](int c) {
            ws::Params prm{nullptr, out, m, n, k, g, s, (long long)n, skip};
            void* args[] = {(void*)&txm, (void*)&twm[v.cps - 1][v.wgs - 1][c], (void*)&tsm[v.wgs - 1][c], &prm};
            CK(cudaLaunchKernelExC(&cfg, v.kernel, args));
          };
          // correctness on copy 0 against the reference
          CK(cudaMemsetAsync(out, 0xff, 128L * n * 2, stream));
          launch(0);
          CK(cudaStreamSynchronize(stream));
          std::vector<uint16_t> ho((size_t)m * n); std::vector<float> hr((size_t)m * n);
          CK(cudaMemcpy(ho.data(), out, ho.size() * 2, cudaMemcpyDeviceToHost));
          CK(cudaMemcpy(hr.data(), ref, hr.size() * 4, cudaMemcpyDeviceToHost));
          double max_err = 0, max_ref = 0; int bad = 0;
          for (size_t i = 0; i < ho.size(); ++i) {
            float o;
            if constexpr (std::is_same<T, __half>::value) o = __half2float(__ushort_as_half(ho[i]));
            else o = __bfloat162float(__ushort_as_bfloat16(ho[i]));
            const double e = std::fabs((double)o - hr[i]);
            if (!(e <= 0.02 * std::fabs(hr[i]) + 0.02)) ++bad;
            max_err = std::max(max_err, std::isnan(e) ? 1e30 : e); max_ref = std::max(max_ref, (double)std::fabs(hr[i]));
          }
          const int reps = copies < 50 ? 4 * copies : copies;
          const float t = time_graph([&](int r) { launch(r % copies); }, reps);
          printf(" %d:%.2f:%d%s", s, t, clusters, bad ? "!WRONG" : "");
          if (bad) printf("(%d bad, max err %.3g of %.3g)", bad, max_err, max_ref);
          if (t < best) { best = t; best_s = s; }
        }
        printf(" | best s=%d %.2f us, %.2fx cublas, %.0f GB/s\n", best_s, best, t_cublas / best, wbytes / best / 1e3);
        fflush(stdout);
      }
    }
    for (int c = 0; c < copies; ++c) { cudaFree(ws[c]); cudaFree(ss[c]); }
    for (int c = 0; c < hcopies; ++c) cudaFree(hw[c]);
    cudaFree(x); cudaFree(out); cudaFree(wd); cudaFree(ref); cudaFree(hx); cudaFree(hout);
  }
  return 0;
}

int main(int argc, char** argv) {
  const char* dt = std::getenv("PROBE_DTYPE");
  if (dt && std::string(dt) == "bf16") return run_all<__nv_bfloat16>(argc, argv, "bf16");
  return run_all<__half>(argc, argv, "fp16");
}

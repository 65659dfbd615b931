// Small-batch W4A16 GEMV on Hopper: memory-bound by design.
//
// out[m, n] = x[m, k] . W[n, k]^T for m <= 8*NT (NT = 1 or 2 token tiles).
//
// The packed weight (csrc/w4a16/cutlass_gemm.cuh, PackedWeightLayout) stores
// each 16x16 atom as the register fragment of an mma.m16n8k16 "A" operand:
// word t of the atom is what lane t holds. So a warp streams its 16-row block
// of the weight with coalesced 16-byte cp.async copies (512 contiguous bytes =
// 4 atoms = 64 k per warp and step), ldmatrix hands each lane its 4 fragment
// words, a lop3 with a magic number turns 8 nibbles into 8 fp16/bf16 values
// (exact, two at a time), and the tensor cores multiply them with x: with
// 16 values per lane per atom, CUDA-core FMAs would be compute-bound past M=4.
//
// Parallelism: a CTA of 8 warps owns 128*RB output rows and a K slice; the
// S = gridDim.x / row_groups CTAs that share the rows form one thread-block
// cluster and sum their partials in a fixed order through distributed
// shared memory: deterministic split-K, no workspace, one launch.
#pragma once

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "w4a16/gemm_args.h"

namespace w4a16::gemv {

enum class Mode { kPerColumn, kGroupwise, kGroupwiseZero };

constexpr int kWarps = 8;                 // warps per CTA; each owns RB 16-row blocks
constexpr int kThreads = kWarps * 32;
constexpr int kChunkK = 64;               // k per warp step: 4 atoms, 512 bytes
constexpr int kChunkBytes = 512;
constexpr int kXPad = 8;                  // halves of padding per x row: conflict-free ldmatrix
constexpr int kMaxCluster = 16;           // non-portable cluster size limit on SM90
// The one dynamic shared-memory limit of every GEMV plan: the launcher raises
// each kernel's limit to exactly this on every device it runs on, and a plan
// that needs more takes more K splits instead (SM90 opt-in maximum: 227 KiB).
constexpr int kMaxSmemBytes = 220 * 1024;
// Shared memory for x: the CTA's whole K slice stays resident. 64 KiB of x
// lets 2 CTAs (16 warps) share an SM next to the weight rings.
constexpr int kXSmemBytes = 64 * 1024;

template <class T>
struct Act;
template <>
struct Act<__half> {
  // (nibble ^ 8) | 0x6400 is the fp16 value 1024 + code + 8 (exact).
  static constexpr uint32_t kMagic = 0x64086408u;
  static __device__ __forceinline__ uint32_t bias2() { return 0x64086408u; }  // 1032, 1032
  static __device__ __forceinline__ uint32_t sub(uint32_t a, uint32_t b) {
    __half2 r = __hsub2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t mul(uint32_t a, uint32_t b) {
    __half2 r = __hmul2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t fma(uint32_t a, uint32_t b, uint32_t c) {
    __half2 r = __hfma2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b),
                        *reinterpret_cast<__half2*>(&c));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t splat(__half v) {
    __half2 r = __half2half2(v);
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <>
struct Act<__nv_bfloat16> {
  // (nibble ^ 8) | 0x4300 is the bf16 value 128 + code + 8 (exact: 7-bit mantissa).
  static constexpr uint32_t kMagic = 0x43084308u;
  static __device__ __forceinline__ uint32_t bias2() { return 0x43084308u; }  // 136, 136
  static __device__ __forceinline__ uint32_t sub(uint32_t a, uint32_t b) {
    __nv_bfloat162 r = __hsub2(*reinterpret_cast<__nv_bfloat162*>(&a),
                               *reinterpret_cast<__nv_bfloat162*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t mul(uint32_t a, uint32_t b) {
    __nv_bfloat162 r = __hmul2(*reinterpret_cast<__nv_bfloat162*>(&a),
                               *reinterpret_cast<__nv_bfloat162*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t fma(uint32_t a, uint32_t b, uint32_t c) {
    __nv_bfloat162 r = __hfma2(*reinterpret_cast<__nv_bfloat162*>(&a),
                               *reinterpret_cast<__nv_bfloat162*>(&b),
                               *reinterpret_cast<__nv_bfloat162*>(&c));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t splat(__nv_bfloat16 v) {
    __nv_bfloat162 r = __bfloat162bfloat162(v);
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

__device__ __forceinline__ uint32_t lop3_and_xor(uint32_t a, uint32_t b, uint32_t c) {
  // (a & b) ^ c in one instruction: truth table (0xF0 & 0xCC) ^ 0xAA.
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0x6a;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Weight chunks arrive by bulk copy (TMA engine), completing on an mbarrier
// that was told how many bytes to expect; L2 evict-first, since every weight
// byte is read once.
__device__ __forceinline__ void mbarrier_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_copy_evict_first(uint32_t dst, const void* src, uint32_t bytes,
                                                      uint32_t bar) {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint "
      "[%0], [%1], %2, [%3], %4;\n"
      :: "r"(dst), "l"(src), "r"(bytes), "r"(bar), "l"(policy) : "memory");
}
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n"
      "}\n" :: "r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void cp_async_16_zfill(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
               :: "r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

struct Params {
  const void* x;
  const uint8_t* w;
  const void* scales;
  const void* zeros;
  const void* bias;
  void* out;
  int m, n, k, group_size;
  int64_t ld_out;    // elements between token rows of out
  int64_t ld_scales; // elements between scale (and zero) groups
  int splits;        // CTAs per cluster sharing one row group (split K)
  int xs_stride;     // halves per token row of x in shared memory
  int xs_bytes;      // bytes of the x region (128-aligned)
  int slice_groups;  // scale groups one K slice can touch
  int sz_bytes;      // bytes of the scale (+ zero) region (128-aligned)
  int xsum_bytes;    // bytes of the per-chunk x sums (zero-point mode)
};

// Dequantize one fragment word (8 codes) to 4 registers of 16-bit pairs,
// codes only (no scale): exact. Pair p holds nibbles p (low) and p+4 (high).
template <class T>
__device__ __forceinline__ void codes_to_pairs(uint32_t w, uint32_t (&f)[4]);

template <>
__device__ __forceinline__ void codes_to_pairs<__half>(uint32_t w, uint32_t (&f)[4]) {
  // Nibbles at bits 0-3 / 4-7 of each half fit the fp16 mantissa in place:
  // (n ^ 8) | 0x6400 = 1024 + code + 8, and (n ^ 8) << 4 | 0x6400 = 1024 + 16*(code + 8).
  // One shift moves nibbles 2,3 (and 6,7) down for the second half of the word.
  const uint32_t hi = w >> 8;
  const uint32_t b0 = 0x64086408u;          // 1032, 1032
  const uint32_t k1 = 0x2c002c00u;          // 1/16, 1/16
  const uint32_t b1 = 0xd480d480u;          // -72, -72: (1024 + 16u)/16 - 72 = u - 8
  f[0] = Act<__half>::sub(lop3_and_xor(w, 0x000F000Fu, 0x64086408u), b0);
  f[1] = Act<__half>::fma(lop3_and_xor(w, 0x00F000F0u, 0x64806480u), k1, b1);
  f[2] = Act<__half>::sub(lop3_and_xor(hi, 0x000F000Fu, 0x64086408u), b0);
  f[3] = Act<__half>::fma(lop3_and_xor(hi, 0x00F000F0u, 0x64806480u), k1, b1);
}

template <>
__device__ __forceinline__ void codes_to_pairs<__nv_bfloat16>(uint32_t w, uint32_t (&f)[4]) {
  // bf16 has a 7-bit mantissa: only a nibble at bits 0-3 fits, so each pair
  // is shifted down: (n ^ 8) | 0x4300 = 128 + code + 8.
  const uint32_t b = 0x43084308u;           // 136, 136
#pragma unroll
  for (int pr = 0; pr < 4; ++pr) {
    f[pr] = Act<__nv_bfloat16>::sub(lop3_and_xor(w >> (4 * pr), 0x000F000Fu, 0x43084308u), b);
  }
}

template <class T, Mode kMode, int NT, int RB, int kStages>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(const Params p) {
  using A = Act<T>;
  constexpr int kTok = 8 * NT;
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  constexpr int kStageBytes = RB * kChunkBytes;   // one chunk of each of the warp's row blocks
  constexpr bool kScales = kMode != Mode::kPerColumn;
  constexpr bool kZeros = kMode == Mode::kGroupwiseZero;
  extern __shared__ __align__(128) uint8_t smem[];
  // [x slice (m rows) | scales (and zeros) | x sums | weight rings | mbarriers]
  T* xs = reinterpret_cast<T*>(smem);
  T* ss = reinterpret_cast<T*>(smem + p.xs_bytes);            // [groups][128 rows]
  T* zs = ss + p.slice_groups * kRowsPerCta;                  // [groups][rows]
  float* xsum = reinterpret_cast<float*>(smem + p.xs_bytes + p.sz_bytes);  // [chunk][kTok]
  uint8_t* wring = smem + p.xs_bytes + p.sz_bytes + p.xsum_bytes;

  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int split = static_cast<int>(cluster.block_rank());
  const int row_group = blockIdx.x / p.splits;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int nchunks = p.k / kChunkK;
  const int c_begin = split * nchunks / p.splits;
  const int c_end = (split + 1) * nchunks / p.splits;
  const int my_chunks = c_end - c_begin;
  const int k_begin = c_begin * kChunkK;
  const int first_block = (row_group * kWarps + warp) * RB;  // this warp's first 16-row block
  const int row_blocks = (p.n + 15) / 16;
  const bool active = first_block < row_blocks;

  // Weight streams: a ring of kStages stages per warp, each stage one 512-byte
  // chunk of each of the warp's RB row blocks, filled by bulk copies that
  // lane 0 issues; start them before anything else. Row blocks past n (in the
  // last row group) re-read the last real block; their rows are never written.
  const uint8_t* wsrc[RB];
#pragma unroll
  for (int r = 0; r < RB; ++r) {
    wsrc[r] = p.w + static_cast<int64_t>(min(first_block + r, row_blocks - 1)) * p.k * 8 +
              static_cast<int64_t>(c_begin) * kChunkBytes;
  }
  uint8_t* my_ring = wring + warp * kStages * kStageBytes;
  uint64_t* bars = reinterpret_cast<uint64_t*>(wring + kWarps * kStages * kStageBytes) + warp * kStages;
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) mbarrier_init(smem_addr(bars + s), 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncwarp();
  auto issue = [&](int j, int slot) {
    const uint32_t bar = smem_addr(bars + slot);
    mbarrier_expect_tx(bar, kStageBytes);
#pragma unroll
    for (int r = 0; r < RB; ++r) {
      bulk_copy_evict_first(smem_addr(my_ring + slot * kStageBytes + r * kChunkBytes),
                            wsrc[r] + static_cast<int64_t>(j) * kChunkBytes, kChunkBytes, bar);
    }
  };
  if (lane == 0 && active) {
#pragma unroll
    for (int j = 0; j < kStages - 1; ++j) {
      if (j < my_chunks) issue(j, j);
    }
  }

  // x[:m, slice] -> shared memory. Only the m real rows are stored: the
  // ldmatrix rows of tokens >= m point at row m-1, and those output columns
  // are never written.
  const T* xg = static_cast<const T*>(p.x);
  {
    const int vecs_per_row = my_chunks * kChunkK / 8;
    for (int i = threadIdx.x; i < p.m * vecs_per_row; i += kThreads) {
      const int tok = i / vecs_per_row, v = i % vecs_per_row;
      cp_async_16_zfill(smem_addr(xs + tok * p.xs_stride + v * 8),
                        xg + (static_cast<int64_t>(tok) * p.k + k_begin + v * 8), true);
    }
    if constexpr (kScales) {
      // This CTA's 128 rows of every scale group its K slice touches; rows
      // past n (whole 8-row pieces, as n % 8 == 0) read as 0.
      const int g0 = k_begin / p.group_size;
      const int ng = my_chunks > 0 ? (k_begin + my_chunks * kChunkK - 1) / p.group_size - g0 + 1 : 0;
      const int row0 = row_group * kRowsPerCta;
      const T* sg = static_cast<const T*>(p.scales);
      const T* zg = static_cast<const T*>(p.zeros);
      for (int i = threadIdx.x; i < ng * (kRowsPerCta / 8); i += kThreads) {
        const int gl = i / (kRowsPerCta / 8), piece = i % (kRowsPerCta / 8);
        const bool valid = row0 + piece * 8 < p.n;
        const int64_t off = static_cast<int64_t>(g0 + gl) * p.ld_scales + (valid ? row0 + piece * 8 : 0);
        cp_async_16_zfill(smem_addr(ss + gl * kRowsPerCta + piece * 8), sg + off, valid);
        if constexpr (kZeros) {
          cp_async_16_zfill(smem_addr(zs + gl * kRowsPerCta + piece * 8), zg + off, valid);
        }
      }
    }
    cp_async_commit();
    cp_async_wait<0>();
  }
  __syncthreads();
  if constexpr (kZeros) {
    // Sum of x over each 64-k chunk, per token: the zero point's share of a
    // chunk is zero * sum(x), added once per chunk in fp32.
    for (int i = threadIdx.x; i < my_chunks * kTok; i += kThreads) {
      const int c = i / kTok, tok = i % kTok;
      float sum = 0.f;
      if (tok < p.m) {
        const T* xr = xs + tok * p.xs_stride + c * kChunkK;
#pragma unroll 8
        for (int e = 0; e < kChunkK; ++e) sum += A::to_float(xr[e]);
      }
      xsum[c * kTok + tok] = sum;
    }
    __syncthreads();
  }

  const int g = lane / 4, c4 = lane % 4;
  const int r_lo = warp * 16 * RB + g;                       // row within the CTA, block 0
  const int cpg = p.group_size / kChunkK;                    // chunks per scale group
  int gl = 0, cig = (k_begin / kChunkK) % cpg;               // group (local), chunk in group

  float acc[RB][NT][4];
#pragma unroll
  for (int r = 0; r < RB; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[r][t][i] = 0.f;

  // ldmatrix row addresses: weights (4 atoms of 8 rows x 16 bytes) and x
  // (per token tile: atoms a, a+1 x k halves 0-7, 8-15; token rows >= m
  // alias row m-1).
  const uint32_t w_lane_off = (lane / 8) * 128 + (lane % 8) * 16;
  const int q = lane / 8;
  uint32_t x_lane[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const int tok = min(t * 8 + lane % 8, p.m - 1);
    x_lane[t] = smem_addr(xs + tok * p.xs_stride + 16 * (q / 2) + 8 * (q % 2));
  }

  // Unrolled by the ring depth so every ring slot and barrier index is a
  // compile-time constant; the barrier parity flips once per round.
  uint32_t parity = 0;
  for (int jb = 0; active && jb < my_chunks; jb += kStages, parity ^= 1) {
#pragma unroll
    for (int u = 0; u < kStages; ++u) {
      const int j = jb + u;
      if (j >= my_chunks) break;
      __syncwarp();                     // every lane is done with the slot refilled next
      if (lane == 0 && j + kStages - 1 < my_chunks) {
        issue(j + kStages - 1, (u + kStages - 1) % kStages);  // slot folds: u is unrolled
      }
      mbarrier_wait(smem_addr(bars + u), parity);

      uint32_t wq[RB][4];
#pragma unroll
      for (int r = 0; r < RB; ++r) {
        ldmatrix_x4(wq[r], smem_addr(my_ring + u * kStageBytes + r * kChunkBytes) + w_lane_off);
      }
      // Codes x activations for this chunk, in fp32; scales applied once per chunk.
      float part[RB][NT][4];
#pragma unroll
      for (int r = 0; r < RB; ++r)
#pragma unroll
        for (int t = 0; t < NT; ++t)
#pragma unroll
          for (int i = 0; i < 4; ++i) part[r][t][i] = 0.f;
#pragma unroll
      for (int a2 = 0; a2 < 2; ++a2) {      // atom pairs (a, a+1) = (2*a2, 2*a2+1)
        uint32_t xb[NT][4];
#pragma unroll
        for (int t = 0; t < NT; ++t) ldmatrix_x4(xb[t], x_lane[t] + 2 * (j * kChunkK + a2 * 32));
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
          for (int r = 0; r < RB; ++r) {
            uint32_t frag[4];
            codes_to_pairs<T>(wq[r][2 * a2 + h], frag);
#pragma unroll
            for (int t = 0; t < NT; ++t) A::mma(part[r][t], frag, xb[t][2 * h], xb[t][2 * h + 1]);
          }
        }
      }

      if constexpr (kScales) {
        float xs0[NT], xs1[NT];
        if constexpr (kZeros) {
#pragma unroll
          for (int t = 0; t < NT; ++t) {
            const float2 v = *reinterpret_cast<const float2*>(xsum + j * kTok + t * 8 + 2 * c4);
            xs0[t] = v.x;
            xs1[t] = v.y;
          }
        }
#pragma unroll
        for (int r = 0; r < RB; ++r) {
          const int row = gl * kRowsPerCta + r_lo + 16 * r;
          const float s_lo = A::to_float(ss[row]);
          const float s_hi = A::to_float(ss[row + 8]);
#pragma unroll
          for (int t = 0; t < NT; ++t) {
            acc[r][t][0] += s_lo * part[r][t][0];
            acc[r][t][1] += s_lo * part[r][t][1];
            acc[r][t][2] += s_hi * part[r][t][2];
            acc[r][t][3] += s_hi * part[r][t][3];
          }
          if constexpr (kZeros) {
            const float z_lo = A::to_float(zs[row]);
            const float z_hi = A::to_float(zs[row + 8]);
#pragma unroll
            for (int t = 0; t < NT; ++t) {
              acc[r][t][0] += z_lo * xs0[t];
              acc[r][t][1] += z_lo * xs1[t];
              acc[r][t][2] += z_hi * xs0[t];
              acc[r][t][3] += z_hi * xs1[t];
            }
          }
        }
        if (++cig == cpg) {
          cig = 0;
          ++gl;
        }
      } else {
#pragma unroll
        for (int r = 0; r < RB; ++r)
#pragma unroll
          for (int t = 0; t < NT; ++t)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[r][t][i] += part[r][t][i];
      }
    }
  }

  // Partials -> own shared memory (x is no longer needed), then the cluster
  // sums them in split order through distributed shared memory.
  __syncthreads();
  float* red = reinterpret_cast<float*>(smem);               // [kTok][kRowsPerCta]
#pragma unroll
  for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int r = r_lo + 16 * rb, tok = t * 8 + 2 * c4;
      red[tok * kRowsPerCta + r] = acc[rb][t][0];
      red[(tok + 1) * kRowsPerCta + r] = acc[rb][t][1];
      red[tok * kRowsPerCta + r + 8] = acc[rb][t][2];
      red[(tok + 1) * kRowsPerCta + r + 8] = acc[rb][t][3];
    }
  }
  cluster.sync();

  const int rows_per_split = (kRowsPerCta + p.splits - 1) / p.splits;
  const int r_begin = split * rows_per_split;
  const int r_count = max(0, min(rows_per_split, kRowsPerCta - r_begin));
  T* out = static_cast<T*>(p.out);
  const T* bias = static_cast<const T*>(p.bias);
  const T* scales = static_cast<const T*>(p.scales);
  for (int i = threadIdx.x; i < p.m * r_count; i += kThreads) {
    const int tok = i / r_count, r = r_begin + i % r_count;
    const int row = row_group * kRowsPerCta + r;
    if (row >= p.n) continue;
    float v = 0.f;
    for (int s = 0; s < p.splits; ++s) {
      const float* remote = cluster.map_shared_rank(red, s);
      v += remote[tok * kRowsPerCta + r];
    }
    if constexpr (kMode == Mode::kPerColumn) v *= A::to_float(scales[row]);
    if (bias != nullptr) v += A::to_float(bias[row]);
    out[static_cast<int64_t>(tok) * p.ld_out + row] = A::from_float(v);
  }
  cluster.sync();  // keep this CTA's partials alive until every reader is done
}

// ------------------------------------------------------------------ host side

struct Plan {
  int row_groups, splits, xs_stride, xs_bytes, slice_groups, sz_bytes, xsum_bytes, smem_bytes;
};

inline int align128(int x) { return (x + 127) / 128 * 128; }

template <int NT, int RB, int kStages, bool kScales, bool kZeros>
inline int plan_for_splits(const GemmArgs& a, int group_size, int splits, Plan& plan) {
  constexpr int kTok = 8 * NT;
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  const int nchunks = a.k / kChunkK;
  plan.splits = splits;
  const int slice_chunks = (nchunks + splits - 1) / splits;
  plan.xs_stride = slice_chunks * kChunkK + kXPad;
  plan.xs_bytes = align128(a.m * plan.xs_stride * 2);
  // A slice of c chunks starting anywhere touches at most this many groups.
  plan.slice_groups = kScales ? (slice_chunks * kChunkK + group_size - 2) / group_size + 1 : 0;
  plan.sz_bytes = align128(plan.slice_groups * kRowsPerCta * 2 * (kZeros ? 2 : 1));
  plan.xsum_bytes = kZeros ? align128(slice_chunks * kTok * 4) : 0;
  const int ring_bytes = kWarps * kStages * (RB * kChunkBytes + 8);  // + one mbarrier per stage
  const int red_bytes = kTok * kRowsPerCta * 4;  // partials, reusing the front after the loop
  const int total = plan.xs_bytes + plan.sz_bytes + plan.xsum_bytes + ring_bytes;
  plan.smem_bytes = total > red_bytes ? total : red_bytes;
  return plan.smem_bytes;
}

template <int NT, int RB, int kStages, bool kScales, bool kZeros>
inline bool make_plan(const GemmArgs& a, int group_size, int sm_count, Plan& plan) {
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  const int nchunks = a.k / kChunkK;
  plan.row_groups = (a.n + kRowsPerCta - 1) / kRowsPerCta;
  // Fewest splits whose K slice of x (m rows) fits its shared-memory budget ...
  const int max_slice_chunks = (kXSmemBytes / (a.m * 2) - kXPad) / kChunkK;
  if (max_slice_chunks < 1) return false;
  int splits = (nchunks + max_slice_chunks - 1) / max_slice_chunks;
  // ... then more, while each CTA keeps >= 8 chunks, until 2 CTAs per SM are busy ...
  while (plan.row_groups * splits < 2 * sm_count && splits < kMaxCluster &&
         nchunks / (splits + 1) >= 8) {
    ++splits;
  }
  if (splits > kMaxCluster || splits > nchunks) return false;
  // ... and more while the whole plan (x, scales, zeros, weight rings) exceeds the limit.
  while (plan_for_splits<NT, RB, kStages, kScales, kZeros>(a, group_size, splits, plan) > kMaxSmemBytes &&
         splits < kMaxCluster && splits < nchunks) {
    ++splits;
  }
  return plan.smem_bytes <= kMaxSmemBytes;
}

inline int device_sm_count() {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
  return sms;
}

template <class T, Mode kMode, int NT, int RB, int kStages>
struct Gemv {
  static constexpr bool kScales = kMode != Mode::kPerColumn;
  static constexpr bool kZeros = kMode == Mode::kGroupwiseZero;
  static int group(const GemmArgs& a) { return kScales ? a.group_size : a.k; }

  static bool shape_ok(const GemmArgs& a) {
    if (a.m <= 0 || a.m > 8 * NT || a.n <= 0 || a.k <= 0) return false;
    if (a.n % 8 || a.k % kChunkK) return false;
    if (!within_index_limits(a)) return false;
    if (!a.x || !a.w || !a.scales || !a.out) return false;
    if (kMode == Mode::kGroupwiseZero && !a.zeros) return false;
    if (kMode != Mode::kPerColumn) {
      if (a.group_size <= 0 || a.k % a.group_size || a.group_size % kChunkK) return false;
    }
    auto misaligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) % 16) != 0; };
    // Scales and zeros arrive by 16-byte copies (their pitch is a multiple of 8 elements).
    const bool scales_misaligned = kMode != Mode::kPerColumn && misaligned(a.scales);
    const bool zeros_misaligned = kMode == Mode::kGroupwiseZero && misaligned(a.zeros);
    return !(misaligned(a.x) || misaligned(a.w) || misaligned(a.out) || scales_misaligned || zeros_misaligned);
  }

  static Status can_implement(const GemmArgs& a) {
    Plan plan;
    const int sms = a.sm_count > 0 ? a.sm_count : 132;
    if (!shape_ok(a) || !make_plan<NT, RB, kStages, kScales, kZeros>(a, group(a), sms, plan)) {
      return Status::kCannotImplement;
    }
    return Status::kSuccess;
  }

  static size_t workspace_size(const GemmArgs&) { return 0; }

  static Status run(const GemmArgs& a) {
    Plan plan;
    const int sms = a.sm_count > 0 ? a.sm_count : device_sm_count();
    if (!shape_ok(a) || sms <= 0 || !make_plan<NT, RB, kStages, kScales, kZeros>(a, group(a), sms, plan)) {
      return Status::kCannotImplement;
    }
    auto kernel = gemv_kernel<T, kMode, NT, RB, kStages>;
    // Function attributes belong to a device: set them once on each device this
    // kernel runs on (a process-wide once would leave a second GPU at 48 KiB).
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return launch_failed(cudaSuccess);
    {
      static std::mutex mu;
      static std::unordered_set<int> configured;
      std::lock_guard<std::mutex> lock(mu);
      if (!configured.count(dev)) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemBytes);
        if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
        if (e != cudaSuccess) return launch_failed(e);
        configured.insert(dev);
      }
    }

    Params p{a.x, static_cast<const uint8_t*>(a.w), a.scales, a.zeros, a.bias, a.out,
             a.m, a.n, a.k, group(a), a.out_pitch(), a.scale_pitch(), plan.splits, plan.xs_stride, plan.xs_bytes,
             plan.slice_groups, plan.sz_bytes, plan.xsum_bytes};
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(plan.row_groups * plan.splits, 1, 1);
    cfg.blockDim = dim3(kThreads, 1, 1);
    cfg.dynamicSmemBytes = plan.smem_bytes;
    cfg.stream = a.stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = plan.splits;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, p);
    if (err != cudaSuccess) return launch_failed(err);
    return Status::kSuccess;
  }
};

}  // namespace w4a16::gemv

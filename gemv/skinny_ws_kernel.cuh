// The skinny kernel's warp-specialized form (`mma: ws`, the `_ws` names), Hopper only:
// out[m, n] = x[m, k] . W[n, k]^T for m <= 8*NT (NT = 1, 2, 4-8 or 16: 8, 16, 32, 40, 48, 56, 64 or
// 128 tokens; the time per stage grows with the token tile, not with m, so a call takes the
// smallest tile that fits: benchmarks/NOTES.md, "Twenty-fourth session"; the 8- and 16-token tiles
// run M = 7-16 on mid-size layers: "Twenty-fifth session").
//
// A CTA owns 128 rows and one K slice (a cluster of `splits` CTAs shares a row group and sums
// its partials through distributed shared memory in a fixed order, as the other skinny forms).
// One producer warp (one elected lane issuing) fills a ring of S stages by tensor copies (TMA);
// each stage is 64 k: x for all 8*NT token rows (128-byte swizzle: the wgmma B operand, token
// rows past m arrive as zeros), the packed weight of the CTA's eight 16-row blocks (512 bytes each, the
// PackedWeightLayout's contiguous k run), and the rows' scale (and zero) of the stage's group.
// Two consumer warpgroups each take 64 rows: per stage one ldmatrix of the fragment words, the
// dequantization with the scale folded in (gemv/skinny_kernel.cuh, dequant_scaled), four
// wgmma m64 x 8*NT x k16 with the fragment as the register A operand, then the stage goes back
// to the producer. A stage's wgmma are waited for before the next stage's fragments are written:
// the overlap comes from the other warpgroup. (Waiting per 16 k instead, with three groups in
// flight in CUTLASS's mixed-input order, which ptxas accepts, was 0.84-0.98x as fast: four wgmma
// issue points per stage instead of one; benchmarks/NOTES.md, "Twenty-fourth session".)
//
// After the loop the ring holds the CTA's fp32 partials, [tokens][128 rows] with 32-byte aligned
// token rows; each CTA of the cluster sums its share of the rows over all partials, four rows
// per thread (16-byte reads of distributed shared memory) up to 12 splits.
//
// Why this form (benchmarks/NOTES.md, "Twenty-first session"): the cluster form's warps do
// copies, dequantization, mma and barriers in turn and are latency-bound from 17 tokens; here
// the consumers only wait, dequantize and issue wgmma. Measured on an H200 against the product's
// earlier choice at 17-33 tokens it is faster on most layers; from 64 tokens on large layers and
// at 127 tokens everywhere it is slower (96 was not timed against the product). Where the time
// goes (clock64 marks, "Twenty-second session"): the loop, about 530-580 cycles per stage and
// consumer warp with one CTA per SM and 700-1000 with two, of which the full-barrier waits past
// the first stage are at most ~16% and the wgmma waits ~1%: the consumers' own instruction chain
// (about 115 instructions per stage, ncu) bounds it; the reduction after the loop was 6-43% of a
// CTA's cycles (more at 64 tokens and on small layers) before its reads were made 16 bytes wide.
// Both loops carry their slot, phase and scale group as counters, with the addresses fixed before
// the loops, and the whole producer warp runs its loop with one elected lane issuing the copies
// ("Twenty-third session"; static SASS per stage, fp16 m64: consumers 110 -> 89 instructions,
// producer 75 -> 46): 1.19x faster at one split and 1.04x at the launcher's split in geomean over
// the probe's 16 layers, nearly all of it the producer's (it bounds CTAs that stream long K).
#pragma once

#include <cooperative_groups.h>
#include <cuda.h>

#include "gemv/dequant.cuh"
#include "gemv/skinny_kernel.cuh"
#include "gemv/skinny_ws_trace.cuh"
#include "gemv/wgmma.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::skinny {

namespace ws {

constexpr int kConsumerWarps = 8;                    // two warpgroups, 64 rows each
constexpr int kThreads = (kConsumerWarps + 1) * 32;  // and one producer warp
constexpr int kRows = 128;
constexpr int kBarBytes = 1024;

template <int NT>
struct Layout {
  static constexpr int kX = NT * 1024;   // 8*NT token rows of 64 k (128 bytes), 128-byte swizzle
  static constexpr int kW = 8 * 512;     // 8 row blocks x one 512-byte chunk
  static constexpr int kS = 1024;        // scale row (256 B), zero row (256 B), padded
  static constexpr int kStage = kX + kW + kS;
  static_assert(kStage % 1024 == 0, "x of every stage stays 1024-byte aligned (the swizzle atom)");
  static constexpr int kRedPitch = kRows + 8;        // floats between the partials' token rows
  static constexpr int kRed = 8 * NT * kRedPitch * 4;  // the partials, after the loop
};

template <int NT, int S>
constexpr int smem_bytes() {
  return kBarBytes + 1024 + (S * Layout<NT>::kStage > Layout<NT>::kRed ? S * Layout<NT>::kStage : Layout<NT>::kRed);
}

struct Params {
  const void* scales;  // per-column scales, read in the epilogue
  const void* bias;
  void* out;
  int m, n, k, group_size, splits;
  int64_t ld_out;
};

// True in one lane of the (fully active) warp: work one lane issues inside warp-uniform control
// flow, so that the compiler keeps its operands in uniform registers (no per-lane branch around
// each copy).
__device__ __forceinline__ bool elect_one_sync() {
  uint32_t pred = 0;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "elect.sync _|p, 0xffffffff;\n"
      "selp.u32 %0, 1, 0, p;\n"
      "}\n" : "=r"(pred));
  return pred != 0;
}
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

}  // namespace ws

// tx: x [m, k] (box 64 k x 8*NT tokens, 128-byte swizzle); tw: the packed weight as 32-bit words,
// [row blocks, 2k] (box 128 words x 8 blocks); ts / tz: scales / zeros [k / group, n] (box 128 x 1;
// unused per column). Rows, tokens and row blocks past the ends arrive as zeros.
template <class T, QuantMode kMode, int NT, int S>
__global__ void __launch_bounds__(ws::kThreads, NT <= 8 ? 2 : 1)
    skinny_ws_kernel(const __grid_constant__ CUtensorMap tx, const __grid_constant__ CUtensorMap tw,
                     const __grid_constant__ CUtensorMap ts, const __grid_constant__ CUtensorMap tz,
                     const ws::Params p) {
  using L = ws::Layout<NT>;
  using A = gemv::Act<T>;
  constexpr bool kScales = kMode != QuantMode::kPerColumn;
  constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  constexpr int kRows = ws::kRows;
  constexpr int kTx = L::kX + L::kW + (kScales ? kRows * 2 : 0) + (kZeros ? kRows * 2 : 0);
  extern __shared__ __align__(128) uint8_t smem_raw[];  // as the other skinny forms declare it
  uint64_t* full = reinterpret_cast<uint64_t*>(smem_raw);
  uint64_t* empty = full + S;
  // The stages start 1024-byte aligned (the launcher adds 1 KB to the allocation for it).
  uint8_t* stages =
      smem_raw + ws::kBarBytes + ((1024 - (gemv::smem_addr(smem_raw) + ws::kBarBytes) % 1024) % 1024);
  // The warp index through a shuffle: provably warp-uniform around wgmma (C7518).
  const int warp = __shfl_sync(0xffffffff, static_cast<int>(threadIdx.x / 32), 0), lane = threadIdx.x % 32;
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int split = static_cast<int>(cluster.block_rank());
  const int tile = blockIdx.x / p.splits;
  const int nst = p.k / kChunkK;
  const int st_begin = split * nst / p.splits;
  const int my = (split + 1) * nst / p.splits - st_begin;
  W4A16_WS_MARK(0);

  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      gemv::mbarrier_init(gemv::smem_addr(full + s), 1);
      gemv::mbarrier_init(gemv::smem_addr(empty + s), ws::kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  W4A16_WS_MARK(1);

  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.f;

  if (warp == ws::kConsumerWarps) {
    {  // the whole producer warp runs the loop on warp-uniform values; one elected lane issues
      const uint64_t policy = gemv::evict_first_policy();
      W4A16_WS_COUNTER(t_empty);
      W4A16_WS_CLOCK(t_prod);
      // Slot, phase and the scale row's group as counters (group_size is a multiple of 64): no
      // division per stage in the producer warp, and none before its first copy where the stages
      // per group are a power of two.
      const int per_group = p.group_size / kChunkK;
      int grp;
      if ((per_group & (per_group - 1)) == 0) {
        grp = st_begin >> (__ffs(per_group) - 1);
      } else {
        int d = per_group;
        asm volatile("" : "+r"(d));  // keeps the division in this branch (not computed ahead)
        grp = st_begin / d;
      }
      int slot = 0, in_grp = st_begin - grp * per_group;
      uint32_t phase = 0;
      uint32_t stages_addr = gemv::smem_addr(stages), full0 = gemv::smem_addr(full), empty0 = gemv::smem_addr(empty);
      gemv::pin(stages_addr);  // opaque: not rebuilt from the special registers every stage
      gemv::pin(full0);
      gemv::pin(empty0);
      for (int i = 0; i < my; ++i) {
        W4A16_WS_CLOCK(t0);
        if (i >= S) gemv::mbarrier_wait(empty0 + slot * 8, phase ^ 1);
        W4A16_WS_SUM(t_empty, t0);
        const uint32_t st = stages_addr + slot * L::kStage;
        const uint32_t bar = full0 + slot * 8;
        const int c = st_begin + i, k0 = c * kChunkK;
        if (ws::elect_one_sync()) {
          gemv::mbarrier_expect_tx(bar, kTx);
          ws::tma_2d_evict_first(st + L::kX, &tw, c * 128, tile * 8, bar, policy);
          ws::tma_2d(st, &tx, k0, 0, bar);
          if constexpr (kScales) ws::tma_2d(st + L::kX + L::kW, &ts, tile * kRows, grp, bar);
          if constexpr (kZeros) ws::tma_2d(st + L::kX + L::kW + kRows * 2, &tz, tile * kRows, grp, bar);
        }
        __syncwarp();
        if (++in_grp == per_group) {
          in_grp = 0;
          ++grp;
        }
        if (++slot == S) {
          slot = 0;
          phase ^= 1;
        }
      }
      W4A16_WS_PUT(ws::kConsumerWarps * 32, 11, t_empty);
      W4A16_WS_PUT(ws::kConsumerWarps * 32, 12, clock64() - t_prod);
      // The last stages' releases complete phases no refill waits for: wait for them, so that
      // no barrier phase completes unobserved (as the cluster form does).
      for (int i = my > S ? my - S : 0; i < my; ++i) {
        gemv::mbarrier_wait(gemv::smem_addr(empty + i % S), (i / S) & 1);
      }
    }
  } else {
    const int g = lane / 4;
    const uint32_t w_lane_off = (lane / 8) * 128 + (lane % 8) * 16;
    const uint32_t stages0 = gemv::smem_addr(stages);
    // Descriptors: the ring's base plus byte offsets / 16 (addresses stay below 256 KB, so the
    // 14-bit field does not carry). K-major B, 128-byte swizzle: 16 k = 32 bytes into the
    // swizzled rows, 1024 bytes between groups of 8 token rows, layout type 1 (bits 62-63).
    uint64_t desc0 = gemv::wgmma_desc(stages0, 16, 1024) | (1ull << 62);
    // Slot 0's addresses for this thread; a slot adds slot * kStage bytes (kStage / 16 to a
    // descriptor), and slot and phase are counters: no division or address rebuild per stage.
    uint32_t w_addr0 = stages0 + L::kX + warp * 512 + w_lane_off;
    uint32_t s_addr0 = stages0 + L::kX + L::kW + (warp * 16 + g) * 2;
    uint32_t full0 = gemv::smem_addr(full), empty0 = gemv::smem_addr(empty);
    // Opaque from here on: ptxas otherwise rebuilt them from the special registers every stage
    // (the loop went from about 110 to 89 instructions per stage, fp16 m64).
    gemv::pin(w_addr0);
    gemv::pin(s_addr0);
    gemv::pin(full0);
    gemv::pin(empty0);
    gemv::pin(desc0);
    W4A16_WS_COUNTER(t_full);
    W4A16_WS_COUNTER(t_mma);
    int slot = 0, prev = S - 1;
    uint32_t phase = 0;
    for (int i = 0; i < my; ++i) {
      const uint32_t off = static_cast<uint32_t>(slot * L::kStage);
      W4A16_WS_CLOCK(t0);
      gemv::mbarrier_wait(full0 + slot * 8, phase);
      W4A16_WS_SUM(t_full, t0);
      if (i == 0) W4A16_WS_MARK(2);
      uint32_t wq[4];
      gemv::ldmatrix_x4(wq, w_addr0 + off);
      uint32_t s_lo = 0, s_hi = 0, z_lo = 0, z_hi = 0;
      if constexpr (kScales) {
        const uint32_t srow = s_addr0 + off;
        s_lo = splat16(gemv::lds_u16(srow));
        s_hi = splat16(gemv::lds_u16(srow + 16));
        if constexpr (kZeros) {
          z_lo = splat16(gemv::lds_u16(srow + kRows * 2));
          z_hi = splat16(gemv::lds_u16(srow + kRows * 2 + 16));
        }
      }
      // The previous stage's wgmma are done before this stage's A registers are written
      // (C7513), and its slot goes back to the producer.
      W4A16_WS_CLOCK(t1);
      gemv::wgmma_wait<0>();
      W4A16_WS_SUM(t_mma, t1);
      if (i > 0) {
        __syncwarp();
        if (lane == 0) gemv::mbarrier_arrive(empty0 + prev * 8);
      }
      uint32_t fr[4][4];
#pragma unroll
      for (int a = 0; a < 4; ++a) dequant_scaled<T, kMode>(wq[a], s_lo, s_hi, z_lo, z_hi, fr[a]);
      const uint64_t dslot = desc0 + (off >> 4);
      uint64_t desc[4];
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        desc[a] = dslot + a * 2;
#pragma unroll
        for (int j = 0; j < 4; ++j) gemv::pin(fr[a][j]);
      }
      gemv::wgmma_fence();
#pragma unroll
      for (int a = 0; a < 4; ++a) gemv::Wgmma<T, NT>::run(acc, fr[a], desc[a]);
      gemv::wgmma_commit();
      prev = slot;
      if (++slot == S) {
        slot = 0;
        phase ^= 1;
      }
    }
    gemv::wgmma_wait<0>();
    W4A16_WS_MARK(3);
    W4A16_WS_PUT(0, 9, t_full);
    W4A16_WS_PUT(0, 10, t_mma);
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int j = 0; j < 4; ++j) gemv::pin(acc[t][j]);
    if (my > 0) {  // the last stage's release, for the producer's tail wait
      __syncwarp();
      if (lane == 0) gemv::mbarrier_arrive(gemv::smem_addr(empty + (my - 1) % S));
    }
  }
  __syncthreads();  // every stage consumed and released: the ring becomes the partials
  W4A16_WS_MARK(4);

  // [8*NT tokens][128 rows], token rows kRedPitch = 136 floats apart: each token row starts on a
  // 32-byte sector (a pitch of 132 made the reduction's reads of distributed shared memory cross
  // sectors and ran slower at 16 splits), and a warp's stores fall at most two to a bank.
  constexpr int kPitch = L::kRedPitch;
  float* red = reinterpret_cast<float*>(stages);
  if (warp < ws::kConsumerWarps) {
    const int r = warp * 16 + lane / 4;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int tok = t * 8 + 2 * (lane % 4);
      if (tok < p.m) {
        red[tok * kPitch + r] = acc[t][0];
        red[tok * kPitch + r + 8] = acc[t][2];
      }
      if (tok + 1 < p.m) {
        red[(tok + 1) * kPitch + r] = acc[t][1];
        red[(tok + 1) * kPitch + r + 8] = acc[t][3];
      }
    }
  }
  cluster.sync();
  W4A16_WS_MARK(6);
  // This CTA's share of the rows for every token, summed over the cluster's partials in rank
  // order. Up to 12 splits, four rows per thread and step (16-byte reads of distributed shared
  // memory; shares of a multiple of 4 rows: N is a multiple of 8, so four rows are all in or all
  // out); at 16 splits (shares of 8 rows), a row per thread: the 16-byte reads were slower there
  // (benchmarks/NOTES.md, "Twenty-second session").
  T* out = static_cast<T*>(p.out);
  const T* bias = static_cast<const T*>(p.bias);
  const T* scales = static_cast<const T*>(p.scales);
  const int row0 = tile * kRows;
  auto put = [&](int tok, int row, float v) {
    if constexpr (kMode == QuantMode::kPerColumn) v *= A::to_float(scales[row]);
    if (bias != nullptr) v += A::to_float(bias[row]);
    out[static_cast<int64_t>(tok) * p.ld_out + row] = A::from_float(v);
  };
  if (p.splits <= 12) {
    const int per = (kRows / 4 + p.splits - 1) / p.splits * 4;
    const int r_begin = split * per, quads = max(0, min(per, kRows - r_begin)) / 4;
    for (int i = threadIdx.x; i < p.m * quads; i += ws::kThreads) {
      const int tok = i / quads, r = r_begin + (i - tok * quads) * 4, row = row0 + r;
      if (row >= p.n) continue;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
      for (int s = 0; s < p.splits; ++s) {
        const float4 q = *reinterpret_cast<const float4*>(cluster.map_shared_rank(red, s) + tok * kPitch + r);
        v.x += q.x;
        v.y += q.y;
        v.z += q.z;
        v.w += q.w;
      }
      put(tok, row, v.x);
      put(tok, row + 1, v.y);
      put(tok, row + 2, v.z);
      put(tok, row + 3, v.w);
    }
  } else {
    const int per = (kRows + p.splits - 1) / p.splits;
    const int r_begin = split * per, r_count = max(0, min(per, kRows - r_begin));
    for (int i = threadIdx.x; i < p.m * r_count; i += ws::kThreads) {
      const int tok = i / r_count, r = r_begin + (i - tok * r_count), row = row0 + r;
      if (row >= p.n) continue;
      float v = 0.f;
#pragma unroll 4
      for (int s = 0; s < p.splits; ++s) v += cluster.map_shared_rank(red, s)[tok * kPitch + r];
      put(tok, row, v);
    }
  }
  W4A16_WS_MARK(7);
  cluster.sync();  // keep this CTA's partials alive until every reader is done
  W4A16_WS_MARK(8);
}

}  // namespace w4a16::skinny

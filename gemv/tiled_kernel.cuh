// The tiled kernel: a W4A16 GEMM for any M built only from SM80 instructions
// (cp.async, ldmatrix, mma.sync m16n8k16), so that the same source serves
// Ampere and Ada GPUs (compiled for sm_80 and as compute_80 PTX) and, through
// the PTX, runs on Hopper for testing (issue 18).
//
// out[m, n] = x[m, k] . W[n, k]^T, reading the same packed weight as every
// other kernel (16-row blocks, each a contiguous stream of 8*K bytes of
// mma.m16n8k16 "A" fragments; csrc/w4a16/cutlass_gemm.cuh, PackedWeightLayout).
//
// - A CTA of 8 warps owns 16 * RB * 8 weight rows and 8 * NT tokens: the grid
//   is (row groups, token tiles). Each warp owns RB 16-row blocks and all the
//   CTA's tokens (the mma N dimension), so one dequantized weight fragment
//   serves 8 * NT tokens.
// - K runs in steps of 64 (one 512-byte chunk per row block). A step's x slice
//   (8 * NT token rows of 64 k, padded for conflict-free ldmatrix; rows past m
//   zero-filled), the CTA's weight chunks and the scale (zero) row of the
//   step's group are copied by every thread with 16-byte cp.async into one of
//   S shared-memory stages, S - 1 steps ahead (the classic multi-stage
//   pipeline: wait for the oldest group, one CTA barrier, refill the stage
//   freed one step earlier, compute).
// - Scales fold into the weight fragment as in the skinny kernel's folded route
//   (dequant_scaled): one multiply (fma with a zero point) per pair.
// - Token tiles past m in the last token tile issue no mma (by_token_tiles).
// - The epilogue writes from the accumulators (per-column scale, bias), no
//   workspace, no atomics: deterministic.
//
// Where it stands: written for correctness on SM80-class GPUs; its speed on an
// A100 or L40S has not been measured (no such card is lent); on Hopper it is a
// test path only (the CUTLASS and skinny kernels are faster there).
#pragma once

#include "gemv/skinny_kernel.cuh"

namespace w4a16::tiled {

using skinny::kChunkBytes;
using skinny::kChunkK;
using skinny::kThreads;
using skinny::kWarps;
using skinny::kXPad;
using gemv::Act;

constexpr int kXStride = kChunkK + kXPad;  // halves per token row of an x stage

// Bytes of one pipeline stage: x slice | weight chunks | scale (zero) row.
template <int NT, int RB, bool kScales, bool kZeros>
struct StageLayout {
  static constexpr int kTokens = 8 * NT;
  static constexpr int kRows = kWarps * 16 * RB;
  static constexpr int kXBytes = kTokens * kXStride * 2;
  static constexpr int kWBytes = kWarps * RB * kChunkBytes;
  static constexpr int kSzBytes = kScales ? kRows * 2 * (kZeros ? 2 : 1) : 0;
  static constexpr int kBytes = (kXBytes + kWBytes + kSzBytes + 127) / 128 * 128;
};

// The skinny kernel's arguments (its splits and x_slot_bytes unused here: 1 and 0).
using Params = skinny::Params;

template <class T, QuantMode kMode, int NT, int RB, int S>
__global__ void __launch_bounds__(kThreads, 1) tiled_kernel(const Params p) {
  using A = Act<T>;
  constexpr bool kScales = kMode != QuantMode::kPerColumn;
  constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  using L = StageLayout<NT, RB, kScales, kZeros>;
  extern __shared__ __align__(128) uint8_t smem[];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * L::kRows;
  const int tok0 = blockIdx.y * L::kTokens;
  const int tokens = min(L::kTokens, p.m - tok0);
  const int ntiles = (tokens + 7) / 8;
  const int row_blocks = (p.n + 15) / 16;
  const int steps = p.k / kChunkK;
  const T* xg = static_cast<const T*>(p.x) + static_cast<int64_t>(tok0) * p.k;
  const T* sg = static_cast<const T*>(p.scales);
  const T* zg = static_cast<const T*>(p.zeros);

  // Copies one step's x slice, weight chunks and scale (zero) row into stage `slot`.
  auto load = [&](int step, int slot) {
    const uint32_t base = gemv::smem_addr(smem + slot * L::kBytes);
    const int k0 = step * kChunkK;
    // x: kTokens rows of 8 pieces of 16 bytes.
    for (int i = threadIdx.x; i < L::kTokens * 8; i += kThreads) {
      const int tok = i / 8, piece = i % 8;
      const bool valid = tok < tokens;
      const T* src = xg + (valid ? static_cast<int64_t>(tok) * p.k + k0 + piece * 8 : 0);
      gemv::cp_async_16_zfill(base + (tok * kXStride + piece * 8) * 2, src, valid);
    }
    // Weights: each row block's chunk `step` (32 pieces); blocks past n repeat the last
    // (their rows are never written out).
    for (int i = threadIdx.x; i < kWarps * RB * 32; i += kThreads) {
      const int b = i / 32, piece = i % 32;
      const int block = min(blockIdx.x * kWarps * RB + b, row_blocks - 1);
      const uint8_t* src = p.w + static_cast<int64_t>(block) * p.k * 8 + static_cast<int64_t>(step) * kChunkBytes + piece * 16;
      gemv::cp_async_16_zfill(base + L::kXBytes + b * kChunkBytes + piece * 16, src, true);
    }
    if constexpr (kScales) {
      const int64_t goff = static_cast<int64_t>(k0 / p.group_size) * p.ld_scales;
      const uint32_t sbase = base + L::kXBytes + L::kWBytes;
      for (int i = threadIdx.x; i < L::kRows / 8; i += kThreads) {
        const bool valid = row0 + i * 8 < p.n;
        const int64_t off = goff + (valid ? row0 + i * 8 : 0);
        gemv::cp_async_16_zfill(sbase + i * 16, sg + off, valid);
        if constexpr (kZeros) gemv::cp_async_16_zfill(sbase + L::kRows * 2 + i * 16, zg + off, valid);
      }
    }
  };

#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < steps) load(s, s);
    gemv::cp_async_commit();
  }

  const int g = lane / 4;
  uint32_t x_off[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) x_off[t] = static_cast<uint32_t>(gemv::x_frag_row(lane, t, L::kTokens, kXStride) * 2);
  const uint32_t w_lane_off = (lane / 8) * 128 + (lane % 8) * 16;

  float acc[RB][NT][4];
  gemv::zero_fragments(acc);

  auto loop = [&](auto nta) {
    constexpr int NTA = decltype(nta)::value;
    for (int step = 0; step < steps; ++step) {
      gemv::cp_async_wait<S - 2>();
      __syncthreads();  // the step's copies of every thread have landed; stage (step - 1) % S is free
      if (step + S - 1 < steps) load(step + S - 1, (step + S - 1) % S);
      gemv::cp_async_commit();
      const uint32_t base = gemv::smem_addr(smem + (step % S) * L::kBytes);
      uint32_t wq[RB][4];
      uint32_t s_lo[RB], s_hi[RB], z_lo[RB], z_hi[RB];
#pragma unroll
      for (int r = 0; r < RB; ++r) {
        const int b = warp * RB + r;
        gemv::ldmatrix_x4(wq[r], base + L::kXBytes + b * kChunkBytes + w_lane_off);
        s_lo[r] = s_hi[r] = z_lo[r] = z_hi[r] = 0;
        if constexpr (kScales) {
          const uint32_t srow = base + L::kXBytes + L::kWBytes + 2 * (b * 16 + g);
          s_lo[r] = skinny::splat16(gemv::lds_u16(srow));
          s_hi[r] = skinny::splat16(gemv::lds_u16(srow + 16));
          if constexpr (kZeros) {
            z_lo[r] = skinny::splat16(gemv::lds_u16(srow + L::kRows * 2));
            z_hi[r] = skinny::splat16(gemv::lds_u16(srow + L::kRows * 2 + 16));
          }
        }
      }
      skinny::mma_chunk<T, NTA>(acc, wq, x_off, base, 0, ntiles, [&](int r, uint32_t w, uint32_t (&f)[4]) {
        skinny::dequant_scaled<T, kMode>(w, s_lo[r], s_hi[r], z_lo[r], z_hi[r], f);
      });
    }
  };
  skinny::by_token_tiles<NT>(ntiles, loop);
  gemv::cp_async_wait<0>();  // no copy may still be in flight when the CTA exits

  T* out = static_cast<T*>(p.out);
  const T* bias = static_cast<const T*>(p.bias);
#pragma unroll
  for (int r = 0; r < RB; ++r) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {  // fragment rows g and g + 8
      const int row = row0 + (warp * RB + r) * 16 + g + 8 * half;
      if (row >= p.n) continue;
      float scale = 1.f, add = 0.f;
      if constexpr (kMode == QuantMode::kPerColumn) scale = A::to_float(sg[row]);
      if (bias != nullptr) add = A::to_float(bias[row]);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {  // fragment columns 2q and 2q + 1: tokens
          const int tok = t * 8 + 2 * (lane % 4) + c;
          if (tok < tokens) {
            out[static_cast<int64_t>(tok0 + tok) * p.ld_out + row] = A::from_float(acc[r][t][2 * half + c] * scale + add);
          }
        }
      }
    }
  }
}

}  // namespace w4a16::tiled

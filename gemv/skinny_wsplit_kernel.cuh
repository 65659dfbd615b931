// The skinny kernel's warp-split form: K split between the warps of one CTA,
// no cluster. For small layers at small M, where the cluster form's fixed cost
// (a 16-CTA cluster barrier and a reduction through distributed shared memory)
// was most of the call (benchmarks/NOTES.md, "The targets measured on an H100":
// ncu on 2048x2048, M = 1, stalls led by the cluster barrier).
//
// out[m, n] = x[m, k] . W[n, k]^T for m <= 8*NT, reading the same packed weight
// as every other kernel (16-row blocks, each a contiguous stream of 8*K bytes of
// mma.m16n8k16 "A" fragments).
//
// - A CTA owns 16 * (8 / KW) output rows and the whole of K. Its 8 warps form
//   8 / KW row blocks times KW K parts: warp w streams row block w % (8/KW),
//   chunks [p * C / KW, (p + 1) * C / KW) of K with p = w / (8/KW) (C = K / 64).
// - Weights: a private ring of WST bulk-copy stages per warp, as in the
//   cluster form (one copy per stage, L2 evict-first, issued WST-1 ahead).
// - x (m rows of the whole K, rows padded for conflict-free ldmatrix) and the
//   CTA's scale (zero) rows of every group are copied once, by all threads,
//   with 16-byte cp.async behind the first weight copies; one CTA barrier. So
//   the shared memory needed grows with m * K: the launcher refuses a call whose
//   x does not fit (then the selection takes the next tactic).
// - The loop runs by weight stage with the stage's chunks unrolled (immediate
//   shared-memory offsets) and is compiled per token-tile count as in the
//   cluster form; with <= 16 tokens the launch bound asks for 4 CTAs per SM.
//   Scales as in the cluster form (ScaleAfterMma: fp32 per chunk for groupwise
//   without a zero point at <= 2 token tiles, else folded into the fragment).
// - The K parts' partial sums meet in shared memory after the loop and are
//   added in K order (deterministic, no workspace, no atomics).
// - Programmatic dependent launch as in the cluster form: nothing global is
//   read before griddepcontrol.wait.
// - kCpAsync (the `skinny80` family, issue 18): the same kernel from SM80
//   instructions only, for Ampere/Ada (sm_80 SASS) and as compute_80 PTX. The
//   weight ring is filled by every lane of the warp with 16-byte cp.async
//   (L2 evict-first) and each lane's cp.async.mbarrier.arrive.noinc completes
//   the stage (the barrier counts 32 arrivals instead of one expect_tx), the
//   wait is mbarrier.test_wait, and there is no programmatic dependent launch
//   (griddepcontrol is sm_90). Everything else is shared.
#pragma once

#include "gemv/skinny_kernel.cuh"

namespace w4a16::skinny {

constexpr int kWsplitBarBytes = 512;  // the weight rings' mbarriers: kWarps * WST <= 64

// Bytes of the CTA's scale (and zero) rows: every group of K, 16 * (8 / KW) rows each.
__host__ __device__ inline int wsplit_sz_bytes(int k, int group_size, int rows, bool scales, bool zeros) {
  if (!scales) return 0;
  const int bytes = k / group_size * rows * 2 * (zeros ? 2 : 1);
  return (bytes + 127) / 128 * 128;
}

template <class T, QuantMode kMode, int NT, int KW, int WST, bool kCpAsync = false>
__global__ void __launch_bounds__(kThreads, NT <= 2 ? 4 : MinCtas<NT, 1>::value) skinny_wsplit_kernel(const Params p) {
  using A = Act<T>;
  static_assert(kWarps % KW == 0, "K parts must divide the warps");
  constexpr int kBlocks = kWarps / KW;  // 16-row blocks per CTA
  constexpr int kRows = 16 * kBlocks;
  constexpr int kWC = WeightChunks<NT, 1>::value;
  constexpr int kStageBytes = kWC * kChunkBytes;
  constexpr bool kScales = kMode != QuantMode::kPerColumn;
  constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  extern __shared__ __align__(128) uint8_t smem_raw[];
  // [mbarriers | x (m rows of k + kXPad halves) | scales [group][row] (| zeros) | weight rings];
  // after the loop the partials reuse everything past the barriers.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int blk = warp % kBlocks, part = warp / kBlocks;
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem_raw) + warp * WST;
  uint8_t* smem = smem_raw + kWsplitBarBytes;
  const int x_stride = p.k + kXPad;  // halves per token row
  const int groups = kScales ? p.k / p.group_size : 0;
  uint8_t* sz = smem + p.x_slot_bytes;
  uint8_t* wring = sz + wsplit_sz_bytes(p.k, p.group_size, kRows, kScales, kZeros);

  const int row_blocks = (p.n + 15) / 16;
  const int block = blockIdx.x * kBlocks + blk;
  const bool active = block < row_blocks;
  const int row0 = blockIdx.x * kRows;
  const int nchunks = p.k / kChunkK;
  const int c_begin = part * nchunks / KW;
  const int my_chunks = (part + 1) * nchunks / KW - c_begin;
  const int w_stages = (my_chunks + kWC - 1) / kWC;
  const uint8_t* wsrc = p.w + static_cast<int64_t>(min(block, row_blocks - 1)) * p.k * 8 +
                        static_cast<int64_t>(c_begin) * kChunkBytes;
  uint8_t* my_ring = wring + warp * WST * kStageBytes;
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < WST; ++s) gemv::mbarrier_init(gemv::smem_addr(bars + s), kCpAsync ? 32 : 1);
    if constexpr (!kCpAsync) asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncwarp();  // the ring is this warp's alone
  // Everything above touched no global memory; from here on inputs are read.
  if constexpr (!kCpAsync) grid_dependency_wait();

  // Weight stage ws into its slot: one bulk copy by lane 0, or (kCpAsync) 16-byte copies by
  // every lane, each lane arriving on the slot's barrier once its copies have landed.
  const bool issuer = kCpAsync || lane == 0;
  auto issue = [&](int ws) {
    const int slot = ws % WST;
    const uint32_t bar = gemv::smem_addr(bars + slot);
    const int bytes = min(kWC, my_chunks - ws * kWC) * kChunkBytes;
    const uint8_t* src = wsrc + static_cast<int64_t>(ws) * kWC * kChunkBytes;
    const uint32_t dst = gemv::smem_addr(my_ring + slot * kStageBytes);
    if constexpr (kCpAsync) {
      const uint64_t policy = gemv::evict_first_policy();
      for (int i = lane; i < bytes / 16; i += 32) gemv::cp_async_16_evict_first(dst + i * 16, src + i * 16, policy);
      gemv::cp_async_mbarrier_arrive(bar);
    } else {
      gemv::mbarrier_expect_tx(bar, bytes);
      gemv::bulk_copy_evict_first(dst, src, bytes, bar);
    }
  };
  auto wait = [&](int ws) {
    if constexpr (kCpAsync) {
      gemv::mbarrier_wait_sm80(gemv::smem_addr(bars + ws % WST), (ws / WST) & 1);
    } else {
      gemv::mbarrier_wait(gemv::smem_addr(bars + ws % WST), (ws / WST) & 1);
    }
  };
  if (issuer && active) {
#pragma unroll
    for (int ws = 0; ws < WST - 1; ++ws) {
      if (ws < w_stages) issue(ws);
    }
  }

  // x and the scale (zero) rows, once, by every thread.
  {
    const T* xg = static_cast<const T*>(p.x);
    const uint32_t xs = gemv::smem_addr(smem);
    const int vecs = p.k / 8;  // 16-byte pieces per token row
    for (int tok = 0; tok < p.m; ++tok) {
      for (int v = threadIdx.x; v < vecs; v += kThreads) {
        gemv::cp_async_16_zfill(xs + (tok * x_stride + v * 8) * 2, xg + static_cast<int64_t>(tok) * p.k + v * 8, true);
      }
    }
    if constexpr (kScales) {
      const uint32_t ss = gemv::smem_addr(sz);
      constexpr int kPieces = kRows / 8;
      for (int i = threadIdx.x; i < groups * kPieces; i += kThreads) {
        const int gi = i / kPieces, piece = i % kPieces;
        const bool valid = row0 + piece * 8 < p.n;
        const int64_t off = static_cast<int64_t>(gi) * p.ld_scales + (valid ? row0 + piece * 8 : 0);
        gemv::cp_async_16_zfill(ss + (gi * kRows + piece * 8) * 2, static_cast<const T*>(p.scales) + off, valid);
        if constexpr (kZeros) {
          gemv::cp_async_16_zfill(ss + ((groups + gi) * kRows + piece * 8) * 2, static_cast<const T*>(p.zeros) + off,
                                  valid);
        }
      }
    }
    gemv::cp_async_commit();
    gemv::cp_async_wait<0>();
  }
  __syncthreads();  // every thread's x and scale copies have landed

  const int g = lane / 4;
  const int r_lo = blk * 16 + g;  // row within the CTA
  const int ntiles = (p.m + 7) / 8;
  // ldmatrix row offsets (bytes) into the resident x, per token tile.
  uint32_t x_off[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) x_off[t] = static_cast<uint32_t>(gemv::x_frag_row(lane, t, p.m, x_stride) * 2);
  const uint32_t w_lane_off = (lane / 8) * 128 + (lane % 8) * 16;

  float acc[1][NT][4];  // one 16-row block per warp (mma_atom_pair's RB = 1)
  gemv::zero_fragments(acc);

  const int cpg = kScales ? p.group_size / kChunkK : 1;  // chunks per scale group
  const uint32_t xs0 = gemv::smem_addr(smem) + c_begin * kChunkK * 2;
  const uint32_t ss0 = gemv::smem_addr(sz) + 2 * r_lo;
  const uint32_t ring0 = gemv::smem_addr(my_ring) + w_lane_off;
  // The loop, for NTA token tiles known at compile time (by_token_tiles), a stage's chunks
  // unrolled so that their shared-memory addresses are immediates (benchmarks/NOTES.md, attempt 14).
  auto loop = [&](auto nta) {
    constexpr int NTA = decltype(nta)::value;
    [[maybe_unused]] int grp = c_begin / cpg, cig = c_begin % cpg;
    for (int ws = 0; ws < w_stages; ++ws) {
      __syncwarp();  // every lane is done with the slot refilled next
      if (issuer && ws + WST - 1 < w_stages) issue(ws + WST - 1);
      wait(ws);
      const uint32_t wslot = ring0 + (ws % WST) * kStageBytes;
      const uint32_t xstage = xs0 + ws * (kWC * kChunkK * 2);
      const int jn = min(kWC, my_chunks - ws * kWC);
#pragma unroll
      for (int wi = 0; wi < kWC; ++wi) {
        if (wi < jn) {
          uint32_t wq[1][4];
          gemv::ldmatrix_x4(wq[0], wslot + wi * kChunkBytes);
          if constexpr (ScaleAfterMma<kMode, NTA>::value) {
            const uint32_t row = ss0 + 2 * grp * kRows;
            const float s_lo[1] = {scale_f32<T>(gemv::lds_u16(row))};
            const float s_hi[1] = {scale_f32<T>(gemv::lds_u16(row + 16))};
            if (++cig == cpg) {
              cig = 0;
              ++grp;
            }
            mma_chunk_scale_after<T, NTA>(acc, wq, s_lo, s_hi, x_off,
                                          xstage + static_cast<uint32_t>(wi * kChunkK * 2), ntiles);
            continue;
          }
          uint32_t s_lo = 0, s_hi = 0, z_lo = 0, z_hi = 0;
          if constexpr (kScales) {
            const uint32_t row = ss0 + 2 * grp * kRows;
            s_lo = splat16(gemv::lds_u16(row));
            s_hi = splat16(gemv::lds_u16(row + 16));
            if constexpr (kZeros) {
              z_lo = splat16(gemv::lds_u16(row + 2 * groups * kRows));
              z_hi = splat16(gemv::lds_u16(row + 2 * groups * kRows + 16));
            }
            if (++cig == cpg) {
              cig = 0;
              ++grp;
            }
          }
          mma_chunk<T, NTA>(acc, wq, x_off, xstage, wi * kChunkK, ntiles,
                            [&](int, uint32_t w, uint32_t (&f)[4]) {
                              dequant_scaled<T, kMode>(w, s_lo, s_hi, z_lo, z_hi, f);
                            });
        }
      }
    }
  };
  if (active) by_token_tiles<NT>(ntiles, loop);
  if constexpr (!kCpAsync) launch_dependents();

  // The K parts' partials meet in shared memory (x is no longer needed), summed in K order.
  __syncthreads();
  float* red = reinterpret_cast<float*>(smem);  // [KW][8 * ntiles][kRows]
  const int mt = ntiles * 8;
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    if (t < ntiles) {
      const int tok = t * 8 + 2 * (lane % 4);
      float* base = red + (part * mt + tok) * kRows + r_lo;
      base[0] = acc[0][t][0];
      base[kRows] = acc[0][t][1];
      base[8] = acc[0][t][2];
      base[kRows + 8] = acc[0][t][3];
    }
  }
  __syncthreads();
  T* out = static_cast<T*>(p.out);
  const T* bias = static_cast<const T*>(p.bias);
  const T* scales = static_cast<const T*>(p.scales);
  for (int i = threadIdx.x; i < p.m * kRows; i += kThreads) {
    const int tok = i / kRows, r = i % kRows;
    const int row = row0 + r;
    if (row >= p.n) continue;
    float v = 0.f;
#pragma unroll
    for (int s = 0; s < KW; ++s) v += red[(s * mt + tok) * kRows + r];
    if constexpr (kMode == QuantMode::kPerColumn) v *= A::to_float(scales[row]);
    if (bias != nullptr) v += A::to_float(bias[row]);
    out[static_cast<int64_t>(tok) * p.ld_out + row] = A::from_float(v);
  }
}

}  // namespace w4a16::skinny

// Small-batch W4A16 GEMV on Hopper: memory-bound by design.
//
// out[m, n] = x[m, k] . W[n, k]^T for m <= 8*NT (NT = 1 or 2 token tiles).
//
// The packed weight (csrc/w4a16/cutlass_gemm.cuh, PackedWeightLayout) stores
// each 16x16 atom as the register fragment of an mma.m16n8k16 "A" operand:
// word t of the atom is what lane t holds. So a warp streams its 16-row block
// of the weight with bulk copies into a shared-memory ring (512 contiguous
// bytes = 4 atoms = 64 k per warp and step), ldmatrix hands each lane its 4 fragment
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

#include "gemv/dequant.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::gemv {

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

template <class T, QuantMode kMode, int NT, int RB, int kStages>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel(const Params p) {
  using A = Act<T>;
  constexpr int kTok = 8 * NT;
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  constexpr int kStageBytes = RB * kChunkBytes;   // one chunk of each of the warp's row blocks
  constexpr bool kScales = kMode != QuantMode::kPerColumn;
  constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
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
  zero_fragments(acc);

  // ldmatrix row addresses: weights (4 atoms of 8 rows x 16 bytes) and x
  // (per token tile: atoms a, a+1 x k halves 0-7, 8-15; token rows >= m
  // alias row m-1).
  const uint32_t w_lane_off = (lane / 8) * 128 + (lane % 8) * 16;
  uint32_t x_lane[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) x_lane[t] = smem_addr(xs + x_frag_row(lane, t, p.m, p.xs_stride));

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
      zero_fragments(part);
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
    if constexpr (kMode == QuantMode::kPerColumn) v *= A::to_float(scales[row]);
    if (bias != nullptr) v += A::to_float(bias[row]);
    out[static_cast<int64_t>(tok) * p.ld_out + row] = A::from_float(v);
  }
  cluster.sync();  // keep this CTA's partials alive until every reader is done
}

}  // namespace w4a16::gemv

// Small-batch W4A16 on Hopper for M = 1..128 tokens: "skinny" tensor-core GEMM.
//
// out[m, n] = x[m, k] . W[n, k]^T for m <= 8*NT.
//
// It reads the one packed weight (csrc/w4a16/cutlass_gemm.cuh,
// PackedWeightLayout): each 16x16 atom is the register fragment of an
// mma.m16n8k16 "A" operand, 16 rows form one contiguous stream of 8*K bytes.
//
// What differs from the GEMV (gemv/kernel.cuh), which keeps a CTA's whole K
// slice of x resident and so cannot take more than 16 tokens:
//
// - x streams too. The CTA's K slice is cut into x stages of XK = 64*XC k; a
//   4-slot ring holds them (the m token rows, padded so that ldmatrix is
//   conflict-free), with the scale (and zero) rows of the groups the stage
//   touches riding along. Every thread of the warps that own rows copies its
//   share with 16-byte cp.async and arrives on the slot's "full" mbarrier when
//   its copies land; each warp arrives on the slot's "empty" mbarrier when it
//   is done with it; a slot is refilled two stages later. No CTA-wide barrier
//   in the loop.
// - Weights keep a private stream per warp: a ring of WST stages of 1-2 KB
//   (WeightChunks: 4 or 2 chunks per 16-row block, fewer with RB = 2), one
//   bulk copy (TMA engine, L2 evict-first) per row block and stage, several
//   512-byte chunks at once (the number of copies, not their bytes, bounded
//   the first version), issued WST-1 stages ahead by lane 0; each weight byte
//   is read once per call.
// - Scales: codes -> 16-bit values (exact, one lop3 per pair). With a zero
//   point, or from 3 token tiles on, or in the warpgroup form, one multiply (or
//   fma with the zero point) per pair by the row's scale folds it into the
//   fragment, and the mma accumulates scaled products straight into the fp32
//   accumulators: the fragment serves all NT token tiles. Groupwise without a
//   zero point at <= 2 token tiles (ScaleAfterMma): the codes' products go to
//   fresh fp32 sums per 64-k chunk, scaled by one fma each (fewer instructions
//   where few tokens leave the loop issue-bound; benchmarks/NOTES.md, attempt 16).
// - One kernel serves every m up to its maximum: its loop is compiled for 1,
//   2, up to 4 and all NT token tiles of 8 and picked from m at run time, so no
//   mma of an empty tile is issued (tiles past m inside the last two are
//   skipped, warp-uniform).
// - Split K over a thread-block cluster, summed in a fixed order through
//   distributed shared memory (deterministic, no workspace), as the GEMV does;
//   the launcher sizes the split with the occupancy calculator's cluster count.
// - Programmatic dependent launch: the prologue (barrier set-up, addresses)
//   runs before griddepcontrol.wait, and the next kernel in the stream may
//   start its own prologue while this one reduces and writes.
//
// The warpgroup form (WG = true, the `_wg` kernels; one 16-row block per warp):
// the four warps of a warpgroup multiply their 64 rows by all 8*NT token rows
// at once with wgmma, the scaled fragment as the register A operand and the x
// slot as B through a shared-memory descriptor (x stored in 8x16-byte core
// matrices; token rows past m stay zero). A chunk's four wgmma are committed
// as one group and waited for before the next chunk's fragments are written:
// ptxas serializes every wgmma when A registers are written while one is in
// flight (C7513), so the overlap comes from the SM's other warpgroups.
//
// Where it stands (benchmarks/NOTES.md): the mma.sync form is the fastest of
// the product's kernels at M <= 16 on layers up to ~12M weights; the
// warpgroup form at M = 17-32 on layers with N <= 3584 up to ~26M weights;
// from M = 33 the CUTLASS kernels are faster on all but the narrowest layers
// (latency-bound: 1-2 CTAs of 8 warps per SM, ncu "wait" and long-scoreboard
// stalls lead, DRAM under 10% busy at M = 64 on 8192x8192).
#pragma once

#include <cooperative_groups.h>

#include <type_traits>

#include "gemv/dequant.cuh"
#include "gemv/wgmma.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::skinny {

using gemv::Act;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kChunkK = 64;        // k per weight step: 4 atoms, 512 bytes per 16-row block
constexpr int kChunkBytes = 512;
constexpr int kXPad = 8;           // halves of padding per x row: conflict-free ldmatrix
constexpr int kXSlots = 4;         // x ring depth
constexpr int kMaxCluster = 16;
constexpr int kMaxSmemBytes = 220 * 1024;
constexpr int kBarBytes = 1152;    // mbarriers: weight rings (kWarps * WST <= 128), x full/empty (2 * kXSlots)

// k per x stage: long stages for few tokens (fewer barriers), short for many (smaller ring).
template <int NT>
struct XChunks {
  static constexpr int value = NT <= 4 ? 4 : 2;
};
// Chunks per weight copy (per row block): 2 KB per warp and stage for few
// tokens (fewer, larger bulk copies: the copy count bounds the stream), 1 KB
// for many (a smaller ring, so that two CTAs share an SM).
template <int NT, int RB>
struct WeightChunks {
  static constexpr int value = (NT <= 2 ? 4 : 2) / RB > 0 ? (NT <= 2 ? 4 : 2) / RB : 1;
};
// Two CTAs per SM where the accumulators leave room (<= 128 registers).
template <int NT, int RB>
struct MinCtas {
  static constexpr int value = NT * RB <= 8 ? 2 : 1;
};

struct Params {
  const void* x;
  const uint8_t* w;
  const void* scales;
  const void* zeros;
  const void* bias;
  void* out;
  int m, n, k, group_size;
  int64_t ld_out;     // elements between token rows of out
  int64_t ld_scales;  // elements between scale (and zero) groups
  int splits;         // CTAs per cluster sharing one row group (split K)
  int x_slot_bytes;   // bytes of one x slot (m rows; 8 * NT in the warpgroup form), 128-aligned
};

__device__ __forceinline__ void grid_dependency_wait() {
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
}
__device__ __forceinline__ void launch_dependents() {
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// Dequantize one fragment word with its rows' scale pairs folded in.
// s_lo/s_hi (and z_lo/z_hi): the scale (zero) of rows g and g+8 in both halves.
// Fragment registers 0 and 2 hold row g, 1 and 3 row g+8 (m16n8k16 A layout),
// and codes_to_pairs leaves pair p in register p, so register r takes the
// scale of row g + 8*(r % 2).
template <class T, QuantMode kMode>
__device__ __forceinline__ void dequant_scaled(uint32_t w, uint32_t s_lo, uint32_t s_hi, uint32_t z_lo,
                                               uint32_t z_hi, uint32_t (&f)[4]) {
  using A = Act<T>;
  gemv::codes_to_pairs<T>(w, f);
  if constexpr (kMode == QuantMode::kGroupwise) {
    f[0] = A::mul(f[0], s_lo);
    f[1] = A::mul(f[1], s_hi);
    f[2] = A::mul(f[2], s_lo);
    f[3] = A::mul(f[3], s_hi);
  } else if constexpr (kMode == QuantMode::kGroupwiseZero) {
    f[0] = A::fma(f[0], s_lo, z_lo);
    f[1] = A::fma(f[1], s_hi, z_hi);
    f[2] = A::fma(f[2], s_lo, z_lo);
    f[3] = A::fma(f[3], s_hi, z_hi);
  }
}

__device__ __forceinline__ uint32_t splat16(uint32_t v) { return v | (v << 16); }

// The mma.sync of one atom pair (k 32*a2 .. 32*a2+31) for NTA token tiles (those
// below ntiles where NTA > 2, see by_token_tiles): each tile's x fragments by
// ldmatrix at x_base + x_off[t], against the RB row blocks' dequantized fragments.
template <class T, int NTA, int NT, int RB>
__device__ __forceinline__ void mma_atom_pair(float (&acc)[RB][NT][4], const uint32_t (&frag)[RB][2][4],
                                              const uint32_t (&x_off)[NT], uint32_t x_base, int ntiles) {
#pragma unroll
  for (int t = 0; t < NTA; ++t) {
    if (NTA <= 2 || t < ntiles) {
      uint32_t xb[4];
      gemv::ldmatrix_x4(xb, x_base + x_off[t]);
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int r = 0; r < RB; ++r) Act<T>::mma(acc[r][t], frag[r][h], xb[2 * h], xb[2 * h + 1]);
    }
  }
}

// One 64-k chunk: its two atom pairs, each made into fragments from the RB row
// blocks' fragment words wq by make(r, word, frag[4]) (the scaled or the exact
// dequantization) and multiplied by x for NTA tiles; the chunk's x starts k0
// elements past x_base.
template <class T, int NTA, int NT, int RB, class Make>
__device__ __forceinline__ void mma_chunk(float (&acc)[RB][NT][4], const uint32_t (&wq)[RB][4],
                                          const uint32_t (&x_off)[NT], uint32_t x_base, int k0, int ntiles,
                                          Make make) {
#pragma unroll
  for (int a2 = 0; a2 < 2; ++a2) {  // atom pairs (2*a2, 2*a2+1): k 32*a2 .. 32*a2+31
    uint32_t frag[RB][2][4];
#pragma unroll
    for (int r = 0; r < RB; ++r)
#pragma unroll
      for (int h = 0; h < 2; ++h) make(r, wq[r][2 * a2 + h], frag[r][h]);
    mma_atom_pair<T, NTA>(acc, frag, x_off, x_base + static_cast<uint32_t>((k0 + a2 * 32) * 2), ntiles);
  }
}

// The row's scale as fp32, from its 16-bit pattern in shared memory.
template <class T>
__device__ __forceinline__ float scale_f32(uint32_t bits) {
  if constexpr (std::is_same<T, __half>::value) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
  } else {
    return __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(bits)));
  }
}

// Groupwise scales without a zero point take the fp32 route at <= 2 token tiles
// (benchmarks/NOTES.md, attempt 16): the chunk's exact codes times x into fresh
// fp32 sums, then one fma per sum by the row's scale, in place of a 16-bit
// multiply per fragment register. Per chunk that is 4 fmas per token tile for
// 16 multiplies: fewer instructions where the loop is issue-bound (few tokens);
// at 4 tiles, the next count the loops are compiled for, as many (and a fresh
// set of sums to hold). It is also more exact (the scaled weight is not rounded
// to 16 bits), so results differ in the last bits from the folded route's.
template <QuantMode kMode, int NTA>
struct ScaleAfterMma {
  static constexpr bool value = kMode == QuantMode::kGroupwise && NTA <= 2;
};

// One 64-k chunk the fp32 route: wq the RB row blocks' fragment words, s_lo/s_hi
// the scales of rows g and g+8 of each block, x_chunk the chunk's x operand.
template <class T, int NTA, int NT, int RB>
__device__ __forceinline__ void mma_chunk_scale_after(float (&acc)[RB][NT][4], const uint32_t (&wq)[RB][4],
                                                      const float (&s_lo)[RB], const float (&s_hi)[RB],
                                                      const uint32_t (&x_off)[NT], uint32_t x_chunk, int ntiles) {
  float sum[RB][NT][4];
  gemv::zero_fragments(sum);
  mma_chunk<T, NTA>(sum, wq, x_off, x_chunk, 0, ntiles,
                    [](int, uint32_t w, uint32_t (&f)[4]) { gemv::codes_to_pairs<T>(w, f); });
  // Accumulator registers 0, 1 hold row g, 2, 3 row g+8 (m16n8k16 C layout).
#pragma unroll
  for (int r = 0; r < RB; ++r)
#pragma unroll
    for (int t = 0; t < NTA; ++t) {
      acc[r][t][0] = fmaf(s_lo[r], sum[r][t][0], acc[r][t][0]);
      acc[r][t][1] = fmaf(s_lo[r], sum[r][t][1], acc[r][t][1]);
      acc[r][t][2] = fmaf(s_hi[r], sum[r][t][2], acc[r][t][2]);
      acc[r][t][3] = fmaf(s_hi[r], sum[r][t][3], acc[r][t][3]);
    }
}

// Runs loop(std::integral_constant<int, NTA>{}) with the token-tile count the
// loop is compiled for: exactly 1 or 2 tiles, else up to 4 or all NT (the loop
// skips tiles past ntiles there), so that few tokens issue no mma of an empty
// tile (benchmarks/NOTES.md, attempt 14).
// The launcher takes m <= 8 * NT (ntiles <= NT), so a count above NT is never
// compiled: each tile count has one loop.
template <int NT, class Loop>
__device__ __forceinline__ void by_token_tiles(int ntiles, Loop&& loop) {
  if (ntiles == 1) {
    loop(std::integral_constant<int, 1>{});
  } else if constexpr (NT <= 2) {
    loop(std::integral_constant<int, NT>{});
  } else if (ntiles == 2) {
    loop(std::integral_constant<int, 2>{});
  } else if constexpr (NT <= 4) {
    loop(std::integral_constant<int, NT>{});
  } else if (ntiles <= 4) {
    loop(std::integral_constant<int, 4>{});
  } else {
    loop(std::integral_constant<int, NT>{});
  }
}

// x slot layouts. mma.sync form: m token rows of XK k, padded for ldmatrix.
// Warpgroup form: 8*NT token rows (rows past m stay zero) in 8x16-byte core
// matrices, k-block major: byte (k/8 * NT + tok/8) * 128 + tok%8 * 16 + k%8 * 2,
// the wgmma B operand without swizzle (lbo = NT * 128 along K, sbo = 128 along N).
template <int NT>
__device__ __forceinline__ uint32_t wg_x_offset(int tok, int kb) {
  return static_cast<uint32_t>((kb * NT + tok / 8) * 128 + (tok % 8) * 16);
}

template <class T, QuantMode kMode, int NT, int RB, int WST, bool WG>
__global__ void __launch_bounds__(kThreads, MinCtas<NT, RB>::value) skinny_kernel(const Params p) {
  static_assert(!WG || RB == 1, "the warpgroup form takes one 16-row block per warp");
  using A = Act<T>;
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  constexpr int kWC = WeightChunks<NT, RB>::value;  // chunks per weight copy
  constexpr int kStageBytes = RB * kWC * kChunkBytes;
  constexpr int XC = XChunks<NT>::value;
  constexpr int XK = XC * kChunkK;
  constexpr int kXStride = XK + kXPad;            // halves per token row of an x slot
  constexpr bool kScales = kMode != QuantMode::kPerColumn;
  constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  // Scale (zero) rows of one x slot: a stage of XC chunks touches at most XC groups.
  constexpr int kSzBytes = kScales ? XC * kRowsPerCta * 2 * (kZeros ? 2 : 1) : 0;
  extern __shared__ __align__(128) uint8_t smem_raw[];
  // [mbarriers (kBarBytes) | x slots (m rows each, 8 * NT in the warpgroup form) | scale slots | weight rings];
  // after the main loop the partials reuse everything past the barriers.
  // The warp index through a shuffle: provably warp-uniform to the compiler, so
  // that branches on it do not count as divergent around wgmma (C7518).
  const int warp = __shfl_sync(0xffffffff, static_cast<int>(threadIdx.x / 32), 0), lane = threadIdx.x % 32;
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem_raw) + warp * WST;  // this warp's weight ring
  uint64_t* x_full = reinterpret_cast<uint64_t*>(smem_raw) + kWarps * WST;
  uint64_t* x_empty = x_full + kXSlots;
  uint8_t* smem = smem_raw + kBarBytes;
  const int x_slot = p.x_slot_bytes;
  uint8_t* sz_base = smem + kXSlots * x_slot;
  uint8_t* wring = sz_base + kXSlots * kSzBytes;

  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int split = static_cast<int>(cluster.block_rank());
  const int row_group = blockIdx.x / p.splits;

  const int nchunks = p.k / kChunkK;
  const int c_begin = split * nchunks / p.splits;
  const int c_end = (split + 1) * nchunks / p.splits;
  const int my_chunks = c_end - c_begin;
  const int k_begin = c_begin * kChunkK;
  const int n_stages = (my_chunks + XC - 1) / XC;
  const int row_blocks = (p.n + 15) / 16;
  const int first_block = (row_group * kWarps + warp) * RB;
  // Warps with a row block (warp 0 always has one): they consume x stages. In
  // the warpgroup form every warp of a warpgroup with a row block takes part
  // (wgmma is collective); a warp past the last block streams the last block
  // again and its rows are never written out.
  const int cta_blocks = row_blocks - row_group * kWarps * RB;
  const int active_warps = WG ? min(kWarps, (cta_blocks + 3) / 4 * 4) : min(kWarps, (cta_blocks + RB - 1) / RB);
  const bool active = warp < active_warps;
  const int row0 = row_group * kRowsPerCta;
  const int cpg = kScales ? p.group_size / kChunkK : 1;  // chunks per scale group

  const uint8_t* wsrc[RB];
#pragma unroll
  for (int r = 0; r < RB; ++r) {
    wsrc[r] = p.w + static_cast<int64_t>(min(first_block + r, row_blocks - 1)) * p.k * 8 +
              static_cast<int64_t>(c_begin) * kChunkBytes;
  }
  uint8_t* my_ring = wring + warp * WST * kStageBytes;
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < WST; ++s) gemv::mbarrier_init(gemv::smem_addr(bars + s), 1);
    if (warp == 0) {
      for (int s = 0; s < kXSlots; ++s) {
        gemv::mbarrier_init(gemv::smem_addr(x_full + s), active_warps * 32);
        gemv::mbarrier_init(gemv::smem_addr(x_empty + s), active_warps);
      }
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if constexpr (WG) {
    // Token rows m .. 8*NT-1 of every x slot are zero (no stage writes them).
    constexpr int kVecs = XK / 8;
    for (int i = threadIdx.x; i < kXSlots * (8 * NT - p.m) * kVecs; i += kThreads) {
      const int slot = i / ((8 * NT - p.m) * kVecs), rest = i % ((8 * NT - p.m) * kVecs);
      const int tok = p.m + rest / kVecs, kb = rest % kVecs;
      *reinterpret_cast<uint4*>(smem + slot * p.x_slot_bytes + wg_x_offset<NT>(tok, kb)) = make_uint4(0, 0, 0, 0);
    }
    gemv::fence_proxy_async_smem();
  }
  __syncthreads();                      // x barriers are initialized before any warp waits on them
  // Everything above touched no global memory; from here on inputs are read.
  grid_dependency_wait();

  // Weight stage ws: chunks ws*kWC .. of each of the warp's row blocks, one
  // bulk copy per row block (contiguous in k), fewer chunks at the slice's end.
  const int w_stages = (my_chunks + kWC - 1) / kWC;
  auto issue = [&](int ws) {
    const int slot = ws % WST;
    const uint32_t bar = gemv::smem_addr(bars + slot);
    const int bytes = min(kWC, my_chunks - ws * kWC) * kChunkBytes;
    gemv::mbarrier_expect_tx(bar, RB * bytes);
#pragma unroll
    for (int r = 0; r < RB; ++r) {
      gemv::bulk_copy_evict_first(gemv::smem_addr(my_ring + slot * kStageBytes + r * kWC * kChunkBytes),
                                  wsrc[r] + static_cast<int64_t>(ws) * kWC * kChunkBytes, bytes, bar);
    }
  };
  if (lane == 0 && active) {
#pragma unroll
    for (int ws = 0; ws < WST - 1; ++ws) {
      if (ws < w_stages) issue(ws);
    }
  }

  // x stage st -> its slot by 16-byte cp.async from every thread of the
  // active warps, each arriving on the slot's barrier when its copies land:
  // m token rows of XK k (fewer in the slice's last stage), and the scale
  // (zero) rows of the groups the stage touches (rows past n read as 0).
  const T* xg = static_cast<const T*>(p.x);
  const int producers = active_warps * 32;
  auto load_stage = [&](int st) {  // active warps only
    const int slot = st % kXSlots;
    const uint32_t xs = gemv::smem_addr(smem + slot * x_slot);
    const int ch0 = st * XC;
    const int chn = min(XC, my_chunks - ch0);
    const int kk0 = k_begin + ch0 * kChunkK;
    auto copy_x = [&](int vecs) {  // vecs: 16-byte pieces per token row
      if constexpr (WG) {
        // A thread takes one (token row mod 8, 16-byte piece) pair and walks the
        // token groups; eight consecutive threads fill one core-matrix row
        // block (conflict-free), and the loop is two adds per copy.
        for (int i = threadIdx.x; i < 8 * vecs; i += producers) {
          const int r = i % 8, v = i / 8;
          uint32_t dst = xs + wg_x_offset<NT>(r, v);
          const T* src = xg + static_cast<int64_t>(r) * p.k + kk0 + v * 8;
          for (int tok = r; tok < p.m; tok += 8, dst += 128, src += 8 * static_cast<int64_t>(p.k)) {
            gemv::cp_async_16_zfill(dst, src, true);
          }
        }
      } else {
        for (int i = threadIdx.x; i < p.m * vecs; i += producers) {
          const int tok = i / vecs, v = i - tok * vecs;
          gemv::cp_async_16_zfill(xs + (tok * kXStride + v * 8) * 2, xg + static_cast<int64_t>(tok) * p.k + kk0 + v * 8,
                                  true);
        }
      }
    };
    if (chn == XC) {
      copy_x(XC * kChunkK / 8);  // a constant divisor: no integer division in the loop
    } else {
      copy_x(chn * kChunkK / 8);
    }
    if constexpr (kScales) {
      const int g0 = (c_begin + ch0) / cpg;
      const int ng = (c_begin + ch0 + chn - 1) / cpg - g0 + 1;
      const uint32_t ss = gemv::smem_addr(sz_base + slot * kSzBytes);
      constexpr int kPieces = kRowsPerCta / 8;
      for (int i = threadIdx.x; i < ng * kPieces; i += producers) {
        const int gl = i / kPieces, piece = i % kPieces;
        const bool valid = row0 + piece * 8 < p.n;
        const int64_t off = static_cast<int64_t>(g0 + gl) * p.ld_scales + (valid ? row0 + piece * 8 : 0);
        gemv::cp_async_16_zfill(ss + (gl * kRowsPerCta + piece * 8) * 2, static_cast<const T*>(p.scales) + off, valid);
        if constexpr (kZeros) {
          gemv::cp_async_16_zfill(ss + ((XC + gl) * kRowsPerCta + piece * 8) * 2, static_cast<const T*>(p.zeros) + off,
                                  valid);
        }
      }
    }
    gemv::cp_async_mbarrier_arrive(gemv::smem_addr(x_full + slot));
  };
  constexpr int kXAhead = kXSlots - 2;  // stages in flight ahead of the one being consumed
  if (active) {
    for (int st = 0; st < kXAhead && st < n_stages; ++st) load_stage(st);
  }

  const int g = lane / 4;
  const int r_lo = warp * 16 * RB + g;          // row within the CTA, block 0
  const int ntiles = (p.m + 7) / 8;             // token tiles with a real token
  // ldmatrix row offsets (bytes) into an x slot, per token tile (mma.sync form).
  uint32_t x_off[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) x_off[t] = static_cast<uint32_t>(gemv::x_frag_row(lane, t, p.m, kXStride) * 2);
  const uint32_t w_lane_off = (lane / 8) * 128 + (lane % 8) * 16;

  float acc[RB][NT][4];
  gemv::zero_fragments(acc);

  const uint32_t smem0 = gemv::smem_addr(smem);
  // The loop, for NTA token tiles known at compile time in the mma.sync form (by_token_tiles); the
  // warpgroup form multiplies all 8*NT rows at once.
  auto loop = [&](auto nta) {
    [[maybe_unused]] constexpr int NTA = decltype(nta)::value;
    uint32_t j = 0;  // this warp's chunk counter
    // The scale group of the warp's current chunk, and the chunk's place in it.
    int grp = c_begin / cpg, cig = c_begin % cpg;
    for (int st = 0; active && st < n_stages; ++st) {
      const int slot = st % kXSlots;
      if (st + kXAhead < n_stages) {
        // Refill the slot stage st - 2 used, once every consumer is done with it.
        const int fill = st + kXAhead;
        if (fill >= kXSlots) {
          gemv::mbarrier_wait(gemv::smem_addr(x_empty + fill % kXSlots), ((fill / kXSlots) - 1) & 1);
        }
        load_stage(fill);
      }
      gemv::mbarrier_wait(gemv::smem_addr(x_full + slot), (st / kXSlots) & 1);
      if constexpr (WG) gemv::fence_proxy_async_smem();  // the stage's cp.async writes, for wgmma's reads
      const uint32_t xs_addr = smem0 + slot * x_slot;
      const uint32_t ss_addr = gemv::smem_addr(sz_base + slot * kSzBytes);
      const int g0 = grp;                 // the stage's first group
      const int chn = min(XC, my_chunks - st * XC);
  #pragma unroll
      for (int c = 0; c < XC; ++c) {
        if (c >= chn) break;
        const uint32_t ws = j / kWC, wi = j % kWC;
        if (wi == 0) {
          __syncwarp();                   // every lane is done with the weight slot refilled next
          if (lane == 0 && ws + WST - 1 < static_cast<uint32_t>(w_stages)) issue(ws + WST - 1);
          gemv::mbarrier_wait(gemv::smem_addr(bars + ws % WST), (ws / WST) & 1);
        }
        const uint32_t wslot = gemv::smem_addr(my_ring + (ws % WST) * kStageBytes) + wi * kChunkBytes;
        [[maybe_unused]] const int gl = grp - g0;
        if (++cig == cpg) {
          cig = 0;
          ++grp;
        }
        uint32_t wq[RB][4];
  #pragma unroll
        for (int r = 0; r < RB; ++r) gemv::ldmatrix_x4(wq[r], wslot + r * kWC * kChunkBytes + w_lane_off);
        ++j;

        if constexpr (!WG && ScaleAfterMma<kMode, NTA>::value) {
          float sf_lo[RB], sf_hi[RB];
  #pragma unroll
          for (int r = 0; r < RB; ++r) {
            const uint32_t row = ss_addr + 2 * (gl * kRowsPerCta + r_lo + 16 * r);
            sf_lo[r] = scale_f32<T>(gemv::lds_u16(row));
            sf_hi[r] = scale_f32<T>(gemv::lds_u16(row + 16));
          }
          mma_chunk_scale_after<T, NTA>(acc, wq, sf_lo, sf_hi, x_off, xs_addr + static_cast<uint32_t>(c * kChunkK * 2),
                                        ntiles);
          continue;
        }
        uint32_t s_lo[RB], s_hi[RB], z_lo[RB], z_hi[RB];
        if constexpr (kScales) {
  #pragma unroll
          for (int r = 0; r < RB; ++r) {
            const uint32_t row = ss_addr + 2 * (gl * kRowsPerCta + r_lo + 16 * r);
            s_lo[r] = splat16(gemv::lds_u16(row));
            s_hi[r] = splat16(gemv::lds_u16(row + 16));
            if constexpr (kZeros) {
              z_lo[r] = splat16(gemv::lds_u16(row + 2 * XC * kRowsPerCta));
              z_hi[r] = splat16(gemv::lds_u16(row + 2 * XC * kRowsPerCta + 16));
            } else {
              z_lo[r] = z_hi[r] = 0;
            }
          }
        } else {
  #pragma unroll
          for (int r = 0; r < RB; ++r) s_lo[r] = s_hi[r] = z_lo[r] = z_hi[r] = 0;
        }
        if constexpr (WG) {
          // The warpgroup's 64 rows x 64 k against all 8*NT tokens: four wgmma,
          // A from registers. The previous chunk's wgmma must be done before its
          // A registers are written again: ptxas serializes every wgmma (C7513)
          // when A registers are written while any wgmma is pending, even other
          // registers (measured: two register sets, or two accumulator sets,
          // still serialize). The overlap comes from the other warpgroups of the SM.
          gemv::wgmma_wait<0>();
          uint32_t fr[4][4];
  #pragma unroll
          for (int a = 0; a < 4; ++a) dequant_scaled<T, kMode>(wq[0][a], s_lo[0], s_hi[0], z_lo[0], z_hi[0], fr[a]);
          uint64_t desc[4];
  #pragma unroll
          for (int a = 0; a < 4; ++a) {
            desc[a] = gemv::wgmma_desc(xs_addr + wg_x_offset<NT>(0, (c * kChunkK + a * 16) / 8), NT * 128, 128);
            gemv::pin(desc[a]);
  #pragma unroll
            for (int i = 0; i < 4; ++i) gemv::pin(fr[a][i]);
          }
          gemv::wgmma_fence();
  #pragma unroll
          for (int a = 0; a < 4; ++a) gemv::Wgmma<T, NT>::run(acc[0], fr[a], desc[a]);
          gemv::wgmma_commit();
        } else {
          mma_chunk<T, NTA>(acc, wq, x_off, xs_addr, c * kChunkK, ntiles,
                            [&](int r, uint32_t w, uint32_t (&f)[4]) {
                              dequant_scaled<T, kMode>(w, s_lo[r], s_hi[r], z_lo[r], z_hi[r], f);
                            });
        }
      }
      if constexpr (WG) {
        // wgmma reads x asynchronously: stage st-1's slot is free once every
        // group but this stage's last is done (already so, by the wait at each
        // chunk's start; kept so that the release does not depend on it).
        gemv::wgmma_wait<1>();
        if (st > 0 && lane == 0) gemv::mbarrier_arrive(gemv::smem_addr(x_empty + (st - 1) % kXSlots));
      } else {
        __syncwarp();                     // every lane is done with this x slot
        if (lane == 0) gemv::mbarrier_arrive(gemv::smem_addr(x_empty + slot));
      }
    }
  };
  if constexpr (WG) {
    loop(std::integral_constant<int, NT>{});
  } else {
    by_token_tiles<NT>(ntiles, loop);
  }
  if (active) {
    // The x ring's last releases (the last kXSlots stages; the warpgroup form never releases its
    // last stage) complete phases of x_empty that no refill waits for. Wait for them, as a
    // pipeline's producer tail does, so that no barrier phase completes unobserved (synccheck
    // reported these as "Missing wait"; benchmarks/NOTES.md, "Left open").
    const int released = WG ? n_stages - 1 : n_stages;
    for (int st = max(0, n_stages - kXSlots); st < released; ++st) {
      gemv::mbarrier_wait(gemv::smem_addr(x_empty + st % kXSlots), (st / kXSlots) & 1);
    }
  }
  if constexpr (WG) {
    gemv::wgmma_wait<0>();  // the accumulators are final (nothing pending in an idle warp)
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) gemv::pin(acc[0][t][i]);
  }
  launch_dependents();

  // Partials -> own shared memory (rings no longer needed), then the cluster
  // sums them in split order through distributed shared memory.
  __syncthreads();
  float* red = reinterpret_cast<float*>(smem);   // [8 * ntiles][kRowsPerCta]
#pragma unroll
  for (int rb = 0; rb < RB; ++rb) {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t < ntiles) {
        const int r = r_lo + 16 * rb, tok = t * 8 + 2 * (lane % 4);
        red[tok * kRowsPerCta + r] = acc[rb][t][0];
        red[(tok + 1) * kRowsPerCta + r] = acc[rb][t][1];
        red[tok * kRowsPerCta + r + 8] = acc[rb][t][2];
        red[(tok + 1) * kRowsPerCta + r + 8] = acc[rb][t][3];
      }
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
    const int row = row0 + r;
    if (row >= p.n) continue;
    float v = 0.f;
#pragma unroll 4
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

}  // namespace w4a16::skinny

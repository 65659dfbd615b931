// The dequantize kernel of the `dequant` family: the packed 4-bit weight (packing.py's layout)
// to a dense row-major [n, k] weight of the activation type, which gemm() then multiplies with
// torch's matmul (cuBLAS). One warp per 512 packed bytes: four consecutive 16x16 atoms of one
// atom row (k is a multiple of 64, so they never straddle a row), one lane per 16 bytes. A lane
// holds row m0 of an atom's upper half and m0 + 8 of its lower half, 16 k each (four fragment
// words, word k1 holding k 2k1, 2k1 + 1, 2k1 + 8, 2k1 + 9 of both rows). The warp stages its 16
// rows x 64 k through shared memory so that each store instruction writes four whole 128-byte
// rows: stored straight from the lanes, each instruction wrote halves of 32 sectors and the kernel
// ran at about half the copy bandwidth (benchmarks/NOTES.md, eighteenth session). A value is
// code * scale (+ zero) rounded once to 16 bits, the same arithmetic the fused kernels use before
// their mma.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gemv/dequant.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::dense {

constexpr int kDequantWarps = 8;  // warps per CTA

template <class T, QuantMode kMode>
__global__ void __launch_bounds__(kDequantWarps * 32) dequant_kernel(const uint4* __restrict__ w,
                                                                    const T* __restrict__ scales,
                                                                    const T* __restrict__ zeros,
                                                                    T* __restrict__ out, int n, int k, int group,
                                                                    int64_t ld_scales, int64_t tiles) {
  using A = gemv::Act<T>;
  // Per warp: 16 rows of 8 16-byte runs, padded to 9 so that the eight lanes of one store phase
  // (rows m0 = 0-7 of one atom) fall in distinct banks.
  __shared__ uint4 stage[kDequantWarps][16][9];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  const int64_t tile = int64_t(blockIdx.x) * kDequantWarps + wid;  // 4 atoms, K-fastest
  if (tile >= tiles) return;                                        // warp-uniform
  const int m0 = lane & 7, a = lane >> 3;
  const int atoms_k = k >> 4;
  const int64_t r = tile * 4 / atoms_k;  // the atom row
  const int c0 = int(tile * 4 - r * atoms_k);
  const int c = c0 + a;
  const int64_t row0 = r * 16 + m0, row1 = row0 + 8;
  // n is a multiple of 8, so row0 < n always; where n % 16 == 8 the last atom row's lower half
  // (row1) is padding.
  const bool has1 = row1 < n;
  const uint4 v = __ldcs(w + tile * 32 + lane);  // read once: streamed past L1
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
  int64_t g = 0;
  if constexpr (kMode != QuantMode::kPerColumn) g = int64_t(c) * 16 / group * ld_scales;
  const uint32_t s0 = A::splat(scales[g + row0]);
  const uint32_t s1 = has1 ? A::splat(scales[g + row1]) : 0u;
  uint32_t z0 = 0u, z1 = 0u;
  if constexpr (kMode == QuantMode::kGroupwiseZero) {
    z0 = A::splat(zeros[g + row0]);
    z1 = has1 ? A::splat(zeros[g + row1]) : 0u;
  }
  // o[i][k1]: run i (row0 k 0-7, row0 k 8-15, row1 k 0-7, row1 k 8-15), its pair k1.
  uint32_t o[4][4];
#pragma unroll
  for (int k1 = 0; k1 < 4; ++k1) {
    uint32_t f[4];  // pairs: (row0, 2k1), (row1, 2k1), (row0, 2k1 + 8), (row1, 2k1 + 8)
    gemv::codes_to_pairs<T>(words[k1], f);
    if constexpr (kMode == QuantMode::kGroupwiseZero) {
      o[0][k1] = A::fma(f[0], s0, z0);
      o[1][k1] = A::fma(f[2], s0, z0);
      o[2][k1] = A::fma(f[1], s1, z1);
      o[3][k1] = A::fma(f[3], s1, z1);
    } else {
      o[0][k1] = A::mul(f[0], s0);
      o[1][k1] = A::mul(f[2], s0);
      o[2][k1] = A::mul(f[1], s1);
      o[3][k1] = A::mul(f[3], s1);
    }
  }
  uint4(&st)[16][9] = stage[wid];
  st[m0][2 * a] = make_uint4(o[0][0], o[0][1], o[0][2], o[0][3]);
  st[m0][2 * a + 1] = make_uint4(o[1][0], o[1][1], o[1][2], o[1][3]);
  st[m0 + 8][2 * a] = make_uint4(o[2][0], o[2][1], o[2][2], o[2][3]);
  st[m0 + 8][2 * a + 1] = make_uint4(o[3][0], o[3][1], o[3][2], o[3][3]);
  __syncwarp();
  // Store j: rows 4j-4j+3 of the atom row, eight lanes per row, 16 bytes each.
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int rho = 4 * j + (lane >> 3);
    const int64_t row = r * 16 + rho;
    if (row < n) reinterpret_cast<uint4*>(out + row * k + c0 * 16)[lane & 7] = st[rho][lane & 7];
  }
}

}  // namespace w4a16::dense

// The dequantize kernel of the `dequant` family: the packed 4-bit weight (packing.py's layout)
// to a dense row-major [n, k] weight of the activation type, which gemm() then multiplies with
// torch's matmul (cuBLAS). One thread per 16 packed bytes: the 8 rows m0 of an atom's upper half
// and m0 + 8 of its lower half, 16 k each (four fragment words, word k1 holding k 2k1, 2k1 + 1,
// 2k1 + 8, 2k1 + 9 of both rows), so consecutive threads read consecutive 16 bytes and each
// writes four 16-byte runs of output. A value is code * scale (+ zero) rounded once to 16 bits,
// the same arithmetic the fused kernels use before their mma.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gemv/dequant.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::dense_old {

template <class T, QuantMode kMode>
__global__ void __launch_bounds__(256) dequant_kernel(const uint4* __restrict__ w, const T* __restrict__ scales,
                                                      const T* __restrict__ zeros, T* __restrict__ out, int n,
                                                      int k, int group, int64_t ld_scales, int64_t units) {
  using A = gemv::Act<T>;
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= units) return;
  const int64_t atom = t >> 3;          // 16x16 atoms, K-fastest (128 bytes each)
  const int m0 = int(t & 7);
  const int atoms_k = k >> 4;
  const int64_t r = atom / atoms_k;
  const int c = int(atom - r * atoms_k);
  const int64_t row0 = r * 16 + m0, row1 = row0 + 8;
  // n is a multiple of 8, so row0 < n always; where n % 16 == 8 the last atom row's lower half
  // (row1) is padding.
  const bool has1 = row1 < n;
  const uint4 v = w[t];
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
  T* p0 = out + row0 * k + c * 16;
  reinterpret_cast<uint4*>(p0)[0] = make_uint4(o[0][0], o[0][1], o[0][2], o[0][3]);
  reinterpret_cast<uint4*>(p0)[1] = make_uint4(o[1][0], o[1][1], o[1][2], o[1][3]);
  if (has1) {
    T* p1 = out + row1 * k + c * 16;
    reinterpret_cast<uint4*>(p1)[0] = make_uint4(o[2][0], o[2][1], o[2][2], o[2][3]);
    reinterpret_cast<uint4*>(p1)[1] = make_uint4(o[3][0], o[3][1], o[3][2], o[3][3]);
  }
}

}  // namespace w4a16::dense

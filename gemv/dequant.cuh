// 16-bit activation types for the GEMV: arithmetic on register pairs, the
// mma.m16n8k16 of each type, and the exact nibble -> value conversion of one
// packed fragment word.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "gemv/ptx.cuh"

namespace w4a16::gemv {

template <class T>
struct Act;
template <>
struct Act<__half> {
  static __device__ __forceinline__ uint32_t sub(uint32_t a, uint32_t b) {
    __half2 r = __hsub2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t fma(uint32_t a, uint32_t b, uint32_t c) {
    __half2 r = __hfma2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b),
                        *reinterpret_cast<__half2*>(&c));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t mul(uint32_t a, uint32_t b) {
    __half2 r = __hmul2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t splat(__half v) {
    const uint32_t b = __half_as_ushort(v);
    return b | (b << 16);
  }
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm(  // not volatile: a pure register op the compiler may schedule between others
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <>
struct Act<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t sub(uint32_t a, uint32_t b) {
    __nv_bfloat162 r = __hsub2(*reinterpret_cast<__nv_bfloat162*>(&a),
                               *reinterpret_cast<__nv_bfloat162*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t fma(uint32_t a, uint32_t b, uint32_t c) {
    __nv_bfloat162 r = __hfma2(*reinterpret_cast<__nv_bfloat162*>(&a), *reinterpret_cast<__nv_bfloat162*>(&b),
                               *reinterpret_cast<__nv_bfloat162*>(&c));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t mul(uint32_t a, uint32_t b) {
    __nv_bfloat162 r = __hmul2(*reinterpret_cast<__nv_bfloat162*>(&a), *reinterpret_cast<__nv_bfloat162*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
  static __device__ __forceinline__ uint32_t splat(__nv_bfloat16 v) {
    const uint32_t b = __bfloat16_as_ushort(v);
    return b | (b << 16);
  }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm(  // not volatile: a pure register op the compiler may schedule between others
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

// Sets an accumulator array [RB][NT][4] (mma.m16n8k16 C fragments) to zero.
template <int RB, int NT>
__device__ __forceinline__ void zero_fragments(float (&a)[RB][NT][4]) {
#pragma unroll
  for (int r = 0; r < RB; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) a[r][t][i] = 0.f;
}

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

// The ldmatrix.x4 row this lane addresses for token tile t of an x operand
// stored as token rows of `stride` halves: the tile's token (row m-1 stands in
// for rows >= m, whose results are never written out) and, by lane / 8, the k
// halves 0-7 / 8-15 of atoms a, a+1 (the m16n8k16 B fragments of two atoms).
// In halves from the operand's start.
__device__ __forceinline__ int x_frag_row(int lane, int t, int m, int stride) {
  const int q = lane / 8;
  return min(t * 8 + lane % 8, m - 1) * stride + 16 * (q / 2) + 8 * (q % 2);
}

}  // namespace w4a16::gemv

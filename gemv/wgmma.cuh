// wgmma wrappers for the skinny kernel's warpgroup form (gemv/skinny_kernel.cuh,
// WG = true): A (the dequantized weight, 64 rows = 4 warps x 16) from registers,
// B (x, tokens as the mma N dimension) from shared memory through a matrix
// descriptor, fp32 accumulators. Per warp, the A registers and the accumulators
// have the mma.m16n8k16 fragment layouts (rows 16*warp + g, g + 8; accumulator
// [t][i] = token tile t), so the mma.sync form's dequantization and epilogue
// serve both forms.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace w4a16::gemv {

// Shared-memory matrix descriptor, no swizzle: 8x16-byte core matrices,
// lbo = bytes between core matrices along K, sbo = along N (PTX ISA,
// "Matrix Descriptor Format"). Addresses and offsets in units of 16 bytes.
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory");
}
// Shared-memory writes of the generic proxy (st.shared, cp.async) made visible
// to the async proxy that wgmma reads through.
__device__ __forceinline__ void fence_proxy_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Pins a register's value at this point of the instruction stream (an empty
// volatile asm that reads and writes it): values a wgmma reads are computed
// before wgmma.fence, and accumulators are read only after wgmma.wait_group.
__device__ __forceinline__ void pin(uint32_t& r) { asm volatile("" : "+r"(r)::"memory"); }
__device__ __forceinline__ void pin(float& r) { asm volatile("" : "+f"(r)::"memory"); }
__device__ __forceinline__ void pin(uint64_t& r) { asm volatile("" : "+l"(r)::"memory"); }

// D[64 x 8*NT] += A[64 x 16] (registers) * B[16 x 8*NT] (descriptor), B K-major.
template <class T, int NT>
struct Wgmma;

// The specializations differ only in the shape and the type string; the
// operand lists are spelled once here (the accumulator list last: it holds
// commas). Accumulator operands %0 .. %(4*NT-1),
// then the four A registers, the descriptor and the constant 1 that sets the
// scale-d predicate (accumulate).
#define W4A16_D4(t) "+f"(d[t][0]), "+f"(d[t][1]), "+f"(d[t][2]), "+f"(d[t][3])
#define W4A16_D_1 W4A16_D4(0)
#define W4A16_D_2 W4A16_D4(0), W4A16_D4(1)
#define W4A16_D_3 W4A16_D_2, W4A16_D4(2)
#define W4A16_D_4 W4A16_D_2, W4A16_D4(2), W4A16_D4(3)
#define W4A16_D_5 W4A16_D_4, W4A16_D4(4)
#define W4A16_D_6 W4A16_D_5, W4A16_D4(5)
#define W4A16_D_7 W4A16_D_6, W4A16_D4(6)
#define W4A16_D_8 W4A16_D_4, W4A16_D4(4), W4A16_D4(5), W4A16_D4(6), W4A16_D4(7)
#define W4A16_D_16 W4A16_D_8, W4A16_D4(8), W4A16_D4(9), W4A16_D4(10), W4A16_D4(11), W4A16_D4(12), W4A16_D4(13), \
                   W4A16_D4(14), W4A16_D4(15)
#define W4A16_R_1 "%0,%1,%2,%3"
#define W4A16_R_2 W4A16_R_1 ",%4,%5,%6,%7"
#define W4A16_R_3 W4A16_R_2 ",%8,%9,%10,%11"
#define W4A16_R_4 W4A16_R_2 ",%8,%9,%10,%11,%12,%13,%14,%15"
#define W4A16_R_5 W4A16_R_4 ",%16,%17,%18,%19"
#define W4A16_R_6 W4A16_R_5 ",%20,%21,%22,%23"
#define W4A16_R_7 W4A16_R_6 ",%24,%25,%26,%27"
#define W4A16_R_8 W4A16_R_4 ",%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define W4A16_R_16 W4A16_R_8 ",%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47" \
                   ",%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define W4A16_WGMMA(T, PTX, NT, N, DREGS, AREGS, DESC, ONE, ...)                                         \
  template <>                                                                                            \
  struct Wgmma<T, NT> {                                                                                  \
    static __device__ __forceinline__ void run(float (&d)[NT][4], const uint32_t (&a)[4], uint64_t desc) { \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " ONE ", 0;\n"                                      \
                   "wgmma.mma_async.sync.aligned.m64n" N "k16.f32." PTX "." PTX " "                        \
                   "{" DREGS "}, {" AREGS "}, " DESC ", p, 1, 1, 0;\n}\n"                                 \
                   : __VA_ARGS__                                                                         \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1));                     \
    }                                                                                                    \
  };
#define W4A16_WGMMA_BOTH(NT, N, DREGS, AREGS, DESC, ONE, ...)              \
  W4A16_WGMMA(__half, "f16", NT, N, DREGS, AREGS, DESC, ONE, __VA_ARGS__)  \
  W4A16_WGMMA(__nv_bfloat16, "bf16", NT, N, DREGS, AREGS, DESC, ONE, __VA_ARGS__)

W4A16_WGMMA_BOTH(1, "8", W4A16_R_1, "%4,%5,%6,%7", "%8", "%9", W4A16_D_1)
W4A16_WGMMA_BOTH(2, "16", W4A16_R_2, "%8,%9,%10,%11", "%12", "%13", W4A16_D_2)
W4A16_WGMMA_BOTH(3, "24", W4A16_R_3, "%12,%13,%14,%15", "%16", "%17", W4A16_D_3)
W4A16_WGMMA_BOTH(4, "32", W4A16_R_4, "%16,%17,%18,%19", "%20", "%21", W4A16_D_4)
W4A16_WGMMA_BOTH(5, "40", W4A16_R_5, "%20,%21,%22,%23", "%24", "%25", W4A16_D_5)
W4A16_WGMMA_BOTH(6, "48", W4A16_R_6, "%24,%25,%26,%27", "%28", "%29", W4A16_D_6)
W4A16_WGMMA_BOTH(7, "56", W4A16_R_7, "%28,%29,%30,%31", "%32", "%33", W4A16_D_7)
W4A16_WGMMA_BOTH(8, "64", W4A16_R_8, "%32,%33,%34,%35", "%36", "%37", W4A16_D_8)
W4A16_WGMMA_BOTH(16, "128", W4A16_R_16, "%64,%65,%66,%67", "%68", "%69", W4A16_D_16)

#undef W4A16_WGMMA_BOTH
#undef W4A16_WGMMA
#undef W4A16_R_16
#undef W4A16_R_8
#undef W4A16_R_7
#undef W4A16_R_6
#undef W4A16_R_5
#undef W4A16_R_4
#undef W4A16_R_3
#undef W4A16_R_2
#undef W4A16_R_1
#undef W4A16_D_16
#undef W4A16_D_8
#undef W4A16_D_7
#undef W4A16_D_6
#undef W4A16_D_5
#undef W4A16_D_4
#undef W4A16_D_3
#undef W4A16_D_2
#undef W4A16_D_1
#undef W4A16_D4

}  // namespace w4a16::gemv

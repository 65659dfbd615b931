// Development timing of the skinny kernel's warp-specialized form (gemv/skinny_ws_kernel.cuh):
// with -DW4A16_WS_TRACE (benchmarks/ws_probe.cu builds it so; the product never does), thread 0
// of each CTA writes clock64 at fixed points of the kernel, and named threads write sums of
// cycles, to ws_trace[block * 16 + slot] when the probe has set ws_trace. Without the define
// every macro is empty.
//
// Slots: 0 entry, 1 barriers set up, 2 first stage arrived, 3 loop done, 4 all warps joined,
// 6 partials visible to the cluster, 7 reduction done, 8 exit; 9 / 10 consumer warp 0's cycles
// in full-barrier / wgmma waits; 11 / 12 the producer's cycles in empty-barrier waits / its loop.
#pragma once

namespace w4a16::skinny::ws {

#ifdef W4A16_WS_TRACE
__device__ unsigned long long* ws_trace;
#define W4A16_WS_MARK(slot)                                                      \
  do {                                                                           \
    if (::w4a16::skinny::ws::ws_trace != nullptr && threadIdx.x == 0)            \
      ::w4a16::skinny::ws::ws_trace[blockIdx.x * 16 + (slot)] = clock64();       \
  } while (0)
#define W4A16_WS_COUNTER(var) long long var = 0
#define W4A16_WS_CLOCK(var) const long long var = clock64()
#define W4A16_WS_SUM(acc, since) acc += clock64() - (since)
#define W4A16_WS_PUT(tid, slot, value)                                          \
  do {                                                                          \
    if (::w4a16::skinny::ws::ws_trace != nullptr && threadIdx.x == (tid))       \
      ::w4a16::skinny::ws::ws_trace[blockIdx.x * 16 + (slot)] = (value);        \
  } while (0)
#else
#define W4A16_WS_MARK(slot) \
  do {                      \
  } while (0)
#define W4A16_WS_COUNTER(var)
#define W4A16_WS_CLOCK(var)
#define W4A16_WS_SUM(acc, since)
#define W4A16_WS_PUT(tid, slot, value)
#endif

}  // namespace w4a16::skinny::ws

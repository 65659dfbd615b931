// What read bandwidth a weight stream can reach on this card, with no GEMV work in the way: the
// ceiling the M = 1 target of issue 15 (>= 85% of the copy bandwidth on layers >= 32 MB) is
// measured against (benchmarks/NOTES.md).
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I. benchmarks/stream_probe.cu -o stream_probe
//   ./stream_probe MB [MB ...]      bytes streamed per call, e.g. 34 117
//
// Two kinds of stream, each timed as the skinny harness times kernels (back-to-back calls in one
// CUDA graph over rotating buffers of >= 300 MB, so L2 is cold; best of three replays):
// - ldg: every thread loads 16-byte pieces (ld.global.nc, U in flight per thread), grid-stride.
// - bulk: the skinny kernels' pattern. Each warp streams its own contiguous range of `len` bytes
//   through a ring of `wst` shared-memory slots of `stage` bytes, one bulk copy (L2 evict-first) per
//   stage issued wst-1 stages ahead by lane 0, each stage read back by every lane (ldmatrix-sized
//   loads) before its slot is refilled; `spin` iterations of dependent arithmetic per 512 bytes
//   stand in for the dequantization and mma. `ctas` per SM is set through the dynamic shared memory.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "gemv/ptx.cuh"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e_), __LINE__); exit(1);} } while (0)

using namespace w4a16;

template <int U>
__global__ void ldg_probe(const uint4* __restrict__ src, long n16, uint32_t* sink) {
  uint32_t acc = 0;
  const long stride = static_cast<long>(gridDim.x) * blockDim.x;
  long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + (U - 1) * stride < n16; i += U * stride) {
    uint4 v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w) : "l"(src + i + u * stride));
    }
#pragma unroll
    for (int u = 0; u < U; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n16; i += stride) acc ^= src[i].x;
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

constexpr int kProbeWarps = 8;

__global__ void bulk_probe(const uint8_t* src, long total, int len, int stage, int wst, int spin, uint32_t* sink) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem) + warp * 8;
  uint8_t* ring = smem + 1024 + warp * wst * stage;
  const long base = (static_cast<long>(blockIdx.x) * kProbeWarps + warp) * len;
  if (lane == 0) {
    for (int s = 0; s < wst; ++s) gemv::mbarrier_init(gemv::smem_addr(bars + s), 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncwarp();
  if (base >= total) return;
  const int mine = static_cast<int>(min(static_cast<long>(len), total - base));
  const int stages = (mine + stage - 1) / stage;
  auto issue = [&](int ws) {
    const int slot = ws % wst;
    const uint32_t bar = gemv::smem_addr(bars + slot);
    const int bytes = min(stage, mine - ws * stage);
    gemv::mbarrier_expect_tx(bar, bytes);
    gemv::bulk_copy_evict_first(gemv::smem_addr(ring + slot * stage), src + base + static_cast<long>(ws) * stage, bytes,
                                bar);
  };
  if (lane == 0)
    for (int ws = 0; ws < wst - 1 && ws < stages; ++ws) issue(ws);
  uint32_t acc = lane;
  for (int ws = 0; ws < stages; ++ws) {
    __syncwarp();
    if (lane == 0 && ws + wst - 1 < stages) issue(ws + wst - 1);
    gemv::mbarrier_wait(gemv::smem_addr(bars + ws % wst), (ws / wst) & 1);
    const uint8_t* slot = ring + (ws % wst) * stage;
    const int bytes = min(stage, mine - ws * stage);
    for (int off = 0; off < bytes; off += 512) {
      const uint4 v = *reinterpret_cast<const uint4*>(slot + off + lane * 16);
      acc ^= v.x ^ v.y ^ v.z ^ v.w;
      for (int s = 0; s < spin; ++s) acc = acc * 1664525u + 1013904223u;
    }
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

static float time_graph(cudaStream_t stream, int copies, const std::function<void(int)>& launch) {
  const int reps = 4 * copies;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  for (int r = 0; r < reps; ++r) launch(r % copies);
  CK(cudaStreamEndCapture(stream, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  CK(cudaGraphLaunch(exec, stream));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  float best = 1e9f;
  for (int rep = 0; rep < 3; ++rep) {
    cudaEventRecord(e0, stream);
    CK(cudaGraphLaunch(exec, stream));
    cudaEventRecord(e1, stream);
    CK(cudaEventSynchronize(e1));
    float t;
    cudaEventElapsedTime(&t, e0, e1);
    best = std::min(best, t);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return best * 1000.f / reps;  // µs per call
}

int main(int argc, char** argv) {
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CK(cudaFuncSetAttribute(bulk_probe, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
  uint32_t* sink;
  CK(cudaMalloc(&sink, 4));
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  {
    const long bytes = 512L << 20;
    void *a, *b;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    CK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    cudaEventRecord(e0);
    for (int i = 0; i < 5; ++i) CK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    printf("d2d copy: %.0f GB/s (read+write), %d SMs\n", 2.0 * bytes * 5 / ms / 1e6, sms);
    CK(cudaFree(a));
    CK(cudaFree(b));
  }
  for (int i = 1; i < argc; ++i) {
    const long total = static_cast<long>(atof(argv[i]) * 1e6) / 4096 * 4096;
    const int copies = static_cast<int>(std::max(2L, (300L << 20) / total + 1));
    std::vector<uint8_t*> bufs(copies);
    for (auto& b : bufs) {
      CK(cudaMalloc(&b, total));
      CK(cudaMemset(b, 1, total));
    }
    printf("== %.1f MB, %d copies\n", total / 1e6, copies);
    for (int blocks_per_sm : {4, 8}) {
      const int grid = sms * blocks_per_sm;
      float t4 = time_graph(stream, copies, [&](int c) {
        ldg_probe<4><<<grid, 256, 0, stream>>>(reinterpret_cast<const uint4*>(bufs[c]), total / 16, sink);
      });
      float t8 = time_graph(stream, copies, [&](int c) {
        ldg_probe<8><<<grid, 256, 0, stream>>>(reinterpret_cast<const uint4*>(bufs[c]), total / 16, sink);
      });
      printf("ldg %d CTAs/SM: U=4 %.2f us %.0f GB/s | U=8 %.2f us %.0f GB/s\n", blocks_per_sm, t4, total / t4 / 1e3, t8,
             total / t8 / 1e3);
    }
    const char* env = getenv("PROBE_SPIN");
    const int spins[] = {0, env ? atoi(env) : 24};
    for (int spin : spins) {
      for (int ctas : {2, 3, 4}) {
        for (int stage : {2048, 4096, 8192}) {
          for (int wst : {2, 3, 4}) {
            const int smem_need = 1024 + kProbeWarps * wst * stage;
            const int smem = std::max(smem_need, 227 * 1024 / ctas - 1024);
            if (smem_need > 227 * 1024 / ctas - 1024) continue;
            printf("spin %2d ctas %d stage %5d wst %d:", spin, ctas, stage, wst);
            for (long len : {8192L, 32768L, -1L}) {
              const long l = len > 0 ? len : (total + static_cast<long>(sms) * ctas * kProbeWarps - 1) /
                                                   (static_cast<long>(sms) * ctas * kProbeWarps) / 512 * 512 + 512;
              const int grid = static_cast<int>((total + kProbeWarps * l - 1) / (kProbeWarps * l));
              float t = time_graph(stream, copies, [&](int c) {
                bulk_probe<<<grid, kProbeWarps * 32, smem, stream>>>(bufs[c], total, static_cast<int>(l), stage, wst,
                                                                     spin, sink);
              });
              printf("  len %s %.2f us %.0f GB/s", len > 0 ? (len == 8192 ? "8K" : "32K") : "persist", t,
                     total / t / 1e3);
            }
            printf("\n");
          }
        }
      }
    }
    for (auto& b : bufs) CK(cudaFree(b));
  }
  return 0;
}

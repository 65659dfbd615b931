// Standalone timing of dequantize-kernel variants (old product kernel vs staged stores).
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <string>
#include <algorithm>
#include "dense/dequant_kernel.cuh"
#include "old_kernel.cuh"

using namespace w4a16;
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)

template <class T, QuantMode kMode, int kU, bool kStage>
__global__ void __launch_bounds__(256) dq2(const uint4* __restrict__ w, const T* __restrict__ scales,
    const T* __restrict__ zeros, T* __restrict__ out, int n, int k, int group, int64_t ld_scales, int64_t tiles) {
  using A = gemv::Act<T>;
  __shared__ uint4 stage[8][16][9];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  const int64_t warps = int64_t(gridDim.x) * 8;
  const int atoms_k = k >> 4;
  const int m0 = lane & 7, a = lane >> 3;
  for (int64_t base = (int64_t(blockIdx.x) * 8 + wid) * kU; base < tiles; base += warps * kU) {
    uint4 v[kU];
    uint32_t s0[kU], s1[kU], z0[kU], z1[kU];
    int64_t rr[kU]; int cc[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t tile = base + u;
      if (tile < tiles) {
        v[u] = __ldcs(w + tile * 32 + lane);
        const int64_t atom = tile * 4 + a;
        const int64_t r = atom / atoms_k;
        const int c = int(atom - r * atoms_k);
        rr[u] = r; cc[u] = c;
        const int64_t row0 = r * 16 + m0, row1 = row0 + 8;
        const bool has1 = row1 < n;
        int64_t g = 0;
        if constexpr (kMode != QuantMode::kPerColumn) g = int64_t(c) * 16 / group * ld_scales;
        s0[u] = A::splat(scales[g + row0]);
        s1[u] = has1 ? A::splat(scales[g + row1]) : 0u;
        z0[u] = z1[u] = 0u;
        if constexpr (kMode == QuantMode::kGroupwiseZero) {
          z0[u] = A::splat(zeros[g + row0]);
          z1[u] = has1 ? A::splat(zeros[g + row1]) : 0u;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t tile = base + u;
      if (tile >= tiles) break;
      const uint32_t words[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
      uint32_t o[4][4];
#pragma unroll
      for (int k1 = 0; k1 < 4; ++k1) {
        uint32_t f[4];
        gemv::codes_to_pairs<T>(words[k1], f);
        if constexpr (kMode == QuantMode::kGroupwiseZero) {
          o[0][k1] = A::fma(f[0], s0[u], z0[u]); o[1][k1] = A::fma(f[2], s0[u], z0[u]);
          o[2][k1] = A::fma(f[1], s1[u], z1[u]); o[3][k1] = A::fma(f[3], s1[u], z1[u]);
        } else {
          o[0][k1] = A::mul(f[0], s0[u]); o[1][k1] = A::mul(f[2], s0[u]);
          o[2][k1] = A::mul(f[1], s1[u]); o[3][k1] = A::mul(f[3], s1[u]);
        }
      }
      const int64_t r = rr[u];
      if constexpr (kStage) {
        __syncwarp();
        stage[wid][m0][2 * a] = make_uint4(o[0][0], o[0][1], o[0][2], o[0][3]);
        stage[wid][m0][2 * a + 1] = make_uint4(o[1][0], o[1][1], o[1][2], o[1][3]);
        stage[wid][m0 + 8][2 * a] = make_uint4(o[2][0], o[2][1], o[2][2], o[2][3]);
        stage[wid][m0 + 8][2 * a + 1] = make_uint4(o[3][0], o[3][1], o[3][2], o[3][3]);
        __syncwarp();
        const int c0 = int(tile * 4 - r * atoms_k);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int rho = 4 * j + (lane >> 3);
          const int64_t row = r * 16 + rho;
          if (row < n) reinterpret_cast<uint4*>(out + row * k + c0 * 16)[lane & 7] = stage[wid][rho][lane & 7];
        }
      } else {
        const int64_t row0 = r * 16 + m0, row1 = row0 + 8;
        T* p0 = out + row0 * k + cc[u] * 16;
        reinterpret_cast<uint4*>(p0)[0] = make_uint4(o[0][0], o[0][1], o[0][2], o[0][3]);
        reinterpret_cast<uint4*>(p0)[1] = make_uint4(o[1][0], o[1][1], o[1][2], o[1][3]);
        if (row1 < n) {
          T* p1 = out + row1 * k + cc[u] * 16;
          reinterpret_cast<uint4*>(p1)[0] = make_uint4(o[2][0], o[2][1], o[2][2], o[2][3]);
          reinterpret_cast<uint4*>(p1)[1] = make_uint4(o[3][0], o[3][1], o[3][2], o[3][3]);
        }
      }
    }
  }
}

struct Var { const char* name; int kU; bool stage; int cap; };  // cap: blocks per SM cap (0 = none)

template <class T, QuantMode kMode>
void launch(int vi, const Var& v, const uint4* w, const T* s, const T* z, T* o, int n, int k, int group, int sms, cudaStream_t st) {
  const int64_t units = (int64_t(n) + 15) / 16 * 16 * k / 32;
  if (vi == 0) {
    dense_old::dequant_kernel<T, kMode><<<unsigned((units + 255) / 256), 256, 0, st>>>(w, s, z, o, n, k, group, n, units);
    return;
  }
  if (vi == 1) {
    const int64_t tiles = units / 32;
    dense::dequant_kernel<T, kMode><<<unsigned((tiles + 7) / 8), 256, 0, st>>>(w, s, z, o, n, k, group, n, tiles);
    return;
  }
  const int64_t tiles = units / 32;
  int64_t blocks = (tiles + 8 * v.kU - 1) / (8 * v.kU);
  if (v.cap) blocks = std::min<int64_t>(blocks, int64_t(sms) * v.cap);
#define L(U, S) if (v.kU == U && v.stage == S) dq2<T, kMode, U, S><<<unsigned(blocks), 256, 0, st>>>(w, s, z, o, n, k, group, n, tiles)
  L(1, true); L(2, true); L(4, true); L(8, true); L(1, false); L(2, false); L(4, false);
#undef L
}

std::vector<Var> vars = {
  {"old", 0, false, 0}, {"product", 0, false, 0},
  {"u1s", 1, true, 0}, {"u2s", 2, true, 0}, {"u4s", 4, true, 0}, {"u8s", 8, true, 0},
  
  
};

template <class T, QuantMode kMode>
void run_shape(int n, int k, int group, bool timing, int sms) {
  const size_t wbytes = size_t((n + 15) / 16 * 16) * k / 2;
  const size_t sn = size_t(k / group) * n;
  const size_t obytes = size_t(n) * k * 2;
  int copies = std::max<size_t>(1, (size_t(256) << 20) / wbytes + 1);
  if (!timing) copies = 1;
  std::vector<uint8_t> hw(wbytes);
  srand(n * 7 + k);
  for (auto& b : hw) b = rand() & 0xff;
  std::vector<uint16_t> hs(sn), hz(sn);
  for (size_t i = 0; i < sn; ++i) { hs[i] = (sizeof(T) == 2 && std::is_same<T, __half>::value) ? (0x2000 + (rand() & 0x3ff)) : (0x3c00 + (rand() & 0x7f)); hz[i] = hs[i] ^ 0x8000; }
  uint8_t* dw; T *ds, *dz, *dout;
  CK(cudaMalloc(&dw, wbytes * copies)); CK(cudaMalloc(&ds, sn * 2)); CK(cudaMalloc(&dz, sn * 2)); CK(cudaMalloc(&dout, obytes));
  for (int c = 0; c < copies; ++c) CK(cudaMemcpy(dw + c * wbytes, hw.data(), wbytes, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(ds, hs.data(), sn * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(dz, hz.data(), sn * 2, cudaMemcpyHostToDevice));
  cudaStream_t st; CK(cudaStreamCreate(&st));
  std::vector<uint8_t> ref(obytes), got(obytes);
  if (!timing) {
    for (size_t vi = 0; vi < vars.size(); ++vi) {
      CK(cudaMemset(dout, 0xAB, obytes));
      launch<T, kMode>(vi, vars[vi], (const uint4*)dw, ds, dz, dout, n, k, group, sms, st);
      CK(cudaStreamSynchronize(st)); CK(cudaGetLastError());
      CK(cudaMemcpy(vi == 0 ? ref.data() : got.data(), dout, obytes, cudaMemcpyDeviceToHost));
      if (vi && memcmp(ref.data(), got.data(), obytes)) printf("MISMATCH %s n=%d k=%d g=%d mode=%d\n", vars[vi].name, n, k, group, int(kMode));
    }
    printf("checked n=%d k=%d g=%d mode=%d bf16=%d\n", n, k, group, int(kMode), int(!std::is_same<T, __half>::value));
  } else {
    printf("K=%d N=%d (%.1f MB out):", k, n, obytes / 1e6);
    const double bytes = wbytes + sn * 2 + obytes;
    std::vector<float> best(vars.size(), 1e30f);
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    std::vector<cudaGraphExec_t> ex(vars.size());
    for (size_t vi = 0; vi < vars.size(); ++vi) {
      cudaGraph_t g;
      CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
      for (int c = 0; c < copies; ++c) launch<T, kMode>(vi, vars[vi], (const uint4*)(dw + c * wbytes), ds, dz, dout, n, k, group, sms, st);
      CK(cudaStreamEndCapture(st, &g)); CK(cudaGraphInstantiate(&ex[vi], g, 0));
      CK(cudaGraphLaunch(ex[vi], st));
    }
    for (int round = 0; round < 5; ++round)
      for (size_t vi = 0; vi < vars.size(); ++vi) {
        CK(cudaEventRecord(e0, st)); CK(cudaGraphLaunch(ex[vi], st)); CK(cudaEventRecord(e1, st)); CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
        best[vi] = std::min(best[vi], ms * 1000.f / copies);
      }
    for (size_t vi = 0; vi < vars.size(); ++vi) printf(" %s %.1fus %.2fTB/s |", vars[vi].name, best[vi], bytes / best[vi] / 1e6);
    printf("\n");
  }
  cudaFree(dw); cudaFree(ds); cudaFree(dz); cudaFree(dout); cudaStreamDestroy(st);
}

int main(int argc, char** argv) {
  int sms; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  // ceilings
  {
    size_t B = size_t(1) << 30; void *a, *b; CK(cudaMalloc(&a, B)); CK(cudaMalloc(&b, B));
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    float bc = 1e9, bm = 1e9;
    for (int i = 0; i < 5; ++i) {
      float ms; CK(cudaEventRecord(e0)); CK(cudaMemcpyAsync(b, a, B, cudaMemcpyDeviceToDevice)); CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1));
      CK(cudaEventElapsedTime(&ms, e0, e1)); bc = std::min(bc, ms);
      CK(cudaEventRecord(e0)); CK(cudaMemsetAsync(b, 1, B)); CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1));
      CK(cudaEventElapsedTime(&ms, e0, e1)); bm = std::min(bm, ms);
    }
    printf("copy 1GiB: %.2f TB/s (read+write); memset: %.2f TB/s\n", 2 * B / bc / 1e9, B / bm / 1e9);
    cudaFree(a); cudaFree(b);
  }
  run_shape<__half, QuantMode::kGroupwise>(4104, 512, 128, false, sms);
  run_shape<__half, QuantMode::kGroupwise>(1032, 2048, 64, false, sms);
  run_shape<__half, QuantMode::kGroupwiseZero>(4104, 1024, 128, false, sms);
  run_shape<__half, QuantMode::kPerColumn>(2056, 1024, 1024, false, sms);
  run_shape<__nv_bfloat16, QuantMode::kGroupwise>(4104, 512, 128, false, sms);
  run_shape<__nv_bfloat16, QuantMode::kGroupwiseZero>(1032, 2048, 64, false, sms);
  if (argc > 1) {  // "KxN;KxN": old vs product only
    vars.resize(2);
    std::string spec = argv[1];
    size_t pos = 0;
    while (pos < spec.size()) {
      size_t e = spec.find(';', pos); if (e == std::string::npos) e = spec.size();
      std::string one = spec.substr(pos, e - pos); size_t x = one.find('x');
      int k = atoi(one.substr(0, x).c_str()), n = atoi(one.substr(x + 1).c_str());
      run_shape<__half, QuantMode::kGroupwise>(n, k, 128, true, sms);
      pos = e + 1;
    }
    return 0;
  }
  int shapes[][2] = {{1536, 1536}, {2048, 2048}, {2816, 2048}, {3584, 3584}, {4608, 3584}, {4096, 4096}, {6144, 2048},
                     {4104, 4096}, {8192, 8192}, {28672, 4096}, {8192, 28672}, {128256, 2048}};
  for (auto& s : shapes) run_shape<__half, QuantMode::kGroupwise>(s[0], s[1], 128, true, sms);
  run_shape<__nv_bfloat16, QuantMode::kGroupwiseZero>(4096, 4096, 128, true, sms);
  return 0;
}

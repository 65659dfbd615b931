// Kernel-level check and timing of the skinny kernels (gemv/skinny_*.cuh) beside the GEMV,
// without the Python package: the development loop of issue 15 (benchmarks/NOTES.md).
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I. -Icsrc \
//        benchmarks/skinny_harness.cu csrc/status.cpp -o skinny_harness      (from the repo root)
//   ./skinny_harness check                 every variant below against an fp32 reference, odd M and shapes
//   ./skinny_harness bench NxK [NxK ...]   fp16 groupwise g128: µs and weight GB/s per M, CUDA graphs
//                                          over rotating weight copies (>= 300 MB: cold L2);
//                                          HARNESS_M=1,16 sets the M list, HARNESS_ONLY=kw8,r32
//                                          the variants (parts of their names)
//   ./skinny_harness one VARIANT NxK M     one warm-up and one call (for ncu)
//
// The product's own benchmark (python -m w4a16_build.bench) is what the targets are judged by;
// this one has no cuBLAS baseline and times fp16 groupwise only.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <functional>
#include <cmath>
#include "gemv/launch.cuh"
#include "gemv/skinny_launch.cuh"
#include "gemv/skinny_wsplit_launch.cuh"

using namespace w4a16;
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e_), __LINE__); exit(1);} } while (0)

template <class T> __device__ float tf(T v);
template <> __device__ float tf<__half>(__half v) { return __half2float(v); }
template <> __device__ float tf<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

// Reference: fp32, weight dequantized as the kernels' contract says (c*s (+z)), rounded to T like the folded
// route's fragment (the skinny kernels' fp32 scale route at <= 16 tokens does not round it: within the tolerance).
template <class T>
__global__ void ref_kernel(const T* x, const uint8_t* w, const T* s, const T* z, const T* bias, float* out, int m, int n, int k, int g, int mode, int sp) {
  int row = blockIdx.x * blockDim.y + threadIdx.y;
  int tok = blockIdx.y;
  if (row >= n) return;
  float acc = 0.f;
  for (int kk = threadIdx.x; kk < k; kk += 32) {
    int r = row / 16, c = kk / 16, m0 = row % 8, m1 = (row % 16) / 8, kl = kk % 16;
    int k0 = kl % 2, k1 = (kl / 2) % 4, k2 = kl / 8;
    long nib = 256L * (c + (long)r * (k / 16)) + 32 * m0 + 8 * k1 + 4 * k0 + 2 * k2 + m1;
    int b = w[nib / 2];
    int q = (nib & 1) ? (b >> 4) : (b & 15);
    int code = q >= 8 ? q - 16 : q;
    float wv;
    if (mode == 0) wv = code;
    else {
      float sv = tf(s[(long)(kk / g) * sp + row]);
      wv = code * sv;
      if (mode == 2) wv += tf(z[(long)(kk / g) * sp + row]);
      wv = tf(T(wv));
    }
    acc += wv * tf(x[(long)tok * k + kk]);
  }
  for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffff, acc, o);
  if (threadIdx.x == 0) {
    if (mode == 0) acc *= tf(s[row]);
    if (bias) acc += tf(bias[row]);
    out[(long)tok * n + row] = acc;
  }
}

template <class T> __global__ void tofloat(const T* a, float* b, long n, int cols, int ld) {  // rows of cols, pitch ld
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x; if (i < n) b[i] = tf(a[(i / cols) * ld + i % cols]);
}
__global__ void fill_rand(uint8_t* p, long n, uint32_t seed) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) { uint32_t h = (uint32_t)i * 2654435761u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15; p[i] = h & 0xff; }
}
template <class T> __global__ void fill_val(T* p, long n, uint32_t seed, float lo, float hi) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) { uint32_t h = (uint32_t)i * 2246822519u ^ seed; h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15; p[i] = T(lo + (hi - lo) * (h & 0xffff) / 65535.f); }
}

using Fn = std::function<Status(const GemmArgs&)>;
struct Variant { std::string name; int max_m; Fn run; int dtype; int mode; };

template <class T, QuantMode M, int NT, int RB, int WST>
Variant sk(const char* nm) { return {nm, 8 * NT, [](const GemmArgs& a) { return skinny::Skinny<T, M, NT, RB, WST>::run(a); }, std::is_same<T, __half>::value ? 0 : 1, (int)M}; }
template <class T, QuantMode M, int NT, int WST>
Variant wg(const char* nm) { return {nm, 8 * NT, [](const GemmArgs& a) { return skinny::Skinny<T, M, NT, 1, WST, true>::run(a); }, std::is_same<T, __half>::value ? 0 : 1, (int)M}; }
template <class T, QuantMode M, int NT, int KW, int WST>
Variant sw(const char* nm) { return {nm, 8 * NT, [](const GemmArgs& a) { return skinny::SkinnyWsplit<T, M, NT, KW, WST>::run(a); }, std::is_same<T, __half>::value ? 0 : 1, (int)M}; }
template <class T, QuantMode M, int NT, int RB, int S>
Variant gv(const char* nm) { return {nm, 8 * NT, [](const GemmArgs& a) { return gemv::Gemv<T, M, NT, RB, S>::run(a); }, std::is_same<T, __half>::value ? 0 : 1, (int)M}; }

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "check";
  using H = __half; using B = __nv_bfloat16;
  constexpr auto G = QuantMode::kGroupwise; constexpr auto Z = QuantMode::kGroupwiseZero; constexpr auto C = QuantMode::kPerColumn;
  std::vector<Variant> vs = {
    sk<H, G, 2, 1, 4>("sk_fp16_g_m16_r16_s4"), sk<H, G, 2, 1, 8>("sk_fp16_g_m16_r16_s8"), sk<H, G, 4, 1, 4>("sk_fp16_g_m32_r16_s4"),
    sk<H, G, 8, 1, 4>("sk_fp16_g_m64_r16_s4"), sk<H, G, 8, 2, 4>("sk_fp16_g_m64_r32_s4"), sk<H, G, 16, 2, 4>("sk_fp16_g_m128_r32_s4"),
    sk<H, G, 2, 2, 4>("sk_fp16_g_m16_r32_s4"),
    sk<H, Z, 4, 1, 4>("sk_fp16_z_m32_r16_s4"), sk<H, C, 4, 1, 4>("sk_fp16_c_m32_r16_s4"),
    sk<B, G, 4, 1, 4>("sk_bf16_g_m32_r16_s4"), sk<B, Z, 8, 2, 4>("sk_bf16_z_m64_r32_s4"), sk<B, C, 4, 1, 4>("sk_bf16_c_m32_r16_s4"),
    sw<H, G, 2, 8, 4>("sk_fp16_g_m16_s4_kw8"), sw<H, G, 2, 4, 4>("sk_fp16_g_m16_s4_kw4"), sw<H, G, 2, 2, 4>("sk_fp16_g_m16_s4_kw2"),
    sw<H, G, 2, 8, 2>("sk_fp16_g_m16_s2_kw8"), sw<H, G, 4, 8, 4>("sk_fp16_g_m32_s4_kw8"), sw<H, G, 8, 4, 4>("sk_fp16_g_m64_s4_kw4"),
    sw<H, Z, 2, 8, 4>("sk_fp16_z_m16_s4_kw8"), sw<H, C, 2, 4, 4>("sk_fp16_c_m16_s4_kw4"), sw<B, G, 2, 8, 4>("sk_bf16_g_m16_s4_kw8"),
    sw<B, Z, 4, 4, 4>("sk_bf16_z_m32_s4_kw4"), sw<B, C, 16, 2, 4>("sk_bf16_c_m128_s4_kw2"),
    wg<H, G, 2, 4>("sk_fp16_g_m16_r16_s4_wg"), wg<H, G, 4, 4>("sk_fp16_g_m32_r16_s4_wg"), wg<H, G, 8, 4>("sk_fp16_g_m64_r16_s4_wg"),
    wg<H, G, 16, 4>("sk_fp16_g_m128_r16_s4_wg"), wg<H, Z, 8, 4>("sk_fp16_z_m64_r16_s4_wg"), wg<H, C, 4, 4>("sk_fp16_c_m32_r16_s4_wg"),
    wg<B, G, 8, 4>("sk_bf16_g_m64_r16_s4_wg"), wg<B, Z, 16, 4>("sk_bf16_z_m128_r16_s4_wg"), wg<B, C, 2, 4>("sk_bf16_c_m16_r16_s4_wg"),
    gv<H, G, 2, 1, 4>("gemv_fp16_g_m16_r16_s4"), gv<H, G, 1, 2, 8>("gemv_fp16_g_m8_r32_s8"),
  };
  int sms = 0; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (what == "check") {
    int shapes[][3] = {{896, 896, 64}, {4096, 4096, 128}, {1000, 1472, 64}, {8, 128, 128}, {24, 4096, 4096}, {5120, 13824, 128}, {136, 192, 64}, {16392, 256, 64}, {12296, 640, 128}};
    int ms[] = {1, 3, 8, 9, 16, 17, 31, 33, 64, 65, 127, 128};
    int bad = 0, runs = 0;
    int shape_i = 0;
    for (auto& sh : shapes) {
      int n = sh[0], k = sh[1], g = sh[2];
      const int ld = n + 8 * (shape_i++ % 2);  // every other shape: out and scale rows with a pitch past N
      long wbytes = (long)(n + 15) / 16 * 16 * k / 2;
      uint8_t* w; CK(cudaMalloc(&w, wbytes)); fill_rand<<<(wbytes + 255) / 256, 256>>>(w, wbytes, n * 7 + k);
      for (int dt = 0; dt < 2; ++dt) {
        size_t es = 2; long ns = (long)k / g * ld;
        void *x, *s, *z, *bias, *out; float *ref, *got;
        CK(cudaMalloc(&x, 128L * k * es)); CK(cudaMalloc(&s, ns * es)); CK(cudaMalloc(&z, ns * es)); CK(cudaMalloc(&bias, n * es));
        CK(cudaMalloc(&out, 128L * ld * es)); CK(cudaMalloc(&ref, 128L * n * 4)); CK(cudaMalloc(&got, 128L * n * 4));
        auto fill = [&](void* p, long cnt, uint32_t seed, float lo, float hi) {
          if (dt == 0) fill_val<<<(cnt + 255) / 256, 256>>>((H*)p, cnt, seed, lo, hi); else fill_val<<<(cnt + 255) / 256, 256>>>((B*)p, cnt, seed, lo, hi); };
        fill(x, 128L * k, 1, -1, 1); fill(s, ns, 2, 0.001f, 0.02f); fill(z, ns, 3, -0.05f, 0.05f); fill(bias, n, 4, -1, 1);
        for (auto& v : vs) {
          if (v.dtype != dt) continue;
          for (int m : ms) {
            if (m > v.max_m) continue;
            GemmArgs a; a.m = m; a.n = n; a.k = k; a.group_size = v.mode == 0 ? k : g; a.x = x; a.w = w; a.ld_out = ld; a.ld_scales = ld;
            a.scales = s; a.zeros = v.mode == 2 ? z : nullptr; a.bias = (m % 2) ? bias : nullptr; a.out = out;
            CK(cudaMemset(out, 0xff, 128L * ld * es));
            Status st = v.run(a);
            if (st != Status::kSuccess) { printf("%s n=%d k=%d m=%d: status %d %s\n", v.name.c_str(), n, k, m, (int)st, last_launch_error()); continue; }
            ++runs;
            dim3 grid((n + 7) / 8, m);
            if (dt == 0) ref_kernel<H><<<grid, dim3(32, 8)>>>((H*)x, w, (H*)s, (H*)z, (m % 2) ? (H*)bias : nullptr, ref, m, n, k, a.group_size, v.mode, ld);
            else ref_kernel<B><<<grid, dim3(32, 8)>>>((B*)x, w, (B*)s, (B*)z, (m % 2) ? (B*)bias : nullptr, ref, m, n, k, a.group_size, v.mode, ld);
            if (dt == 0) tofloat<<<(m * n + 255) / 256, 256>>>((H*)out, got, (long)m * n, n, ld); else tofloat<<<(m * n + 255) / 256, 256>>>((B*)out, got, (long)m * n, n, ld);
            CK(cudaDeviceSynchronize());
            std::vector<float> r(m * n), o(m * n); CK(cudaMemcpy(r.data(), ref, m * n * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(o.data(), got, m * n * 4, cudaMemcpyDeviceToHost));
            double maxref = 0, maxerr = 0; for (int i = 0; i < m * n; ++i) { maxref = fmax(maxref, fabs(r[i])); double e = fabs(r[i] - o[i]); if (!(e <= maxerr)) maxerr = std::isnan(e) ? 1e30 : e; }
            double tol = (dt == 0 ? 2e-3 : 1.6e-2) * maxref + 1e-3;
            if (!(maxerr <= tol)) { ++bad; printf("BAD %s n=%d k=%d g=%d m=%d maxerr=%g maxref=%g\n", v.name.c_str(), n, k, g, m, maxerr, maxref); }
          }
        }
        cudaFree(x); cudaFree(s); cudaFree(z); cudaFree(bias); cudaFree(out); cudaFree(ref); cudaFree(got);
      }
      cudaFree(w);
    }
    printf("check: %d runs, %d bad\n", runs, bad);
    return bad != 0;
  }
  if (what == "one") {  // one <variant> NxK m: a warm-up and one run (for ncu)
    int n, k; sscanf(argv[3], "%dx%d", &n, &k); int m = atoi(argv[4]); const int g = 128;
    long wbytes = (long)(n + 15) / 16 * 16 * k / 2; uint8_t* w; void *x, *s, *out;
    CK(cudaMalloc(&w, wbytes)); CK(cudaMalloc(&s, (long)k / g * n * 2)); CK(cudaMalloc(&x, 128L * k * 2)); CK(cudaMalloc(&out, 128L * n * 2));
    fill_rand<<<(wbytes + 255) / 256, 256>>>(w, wbytes, 1); fill_val<<<((long)k / g * n + 255) / 256, 256>>>((H*)s, (long)k / g * n, 9, 0.001f, 0.01f);
    for (auto& v : vs) if (v.name == argv[2]) {
      GemmArgs a; a.m = m; a.n = n; a.k = k; a.group_size = g; a.x = x; a.w = w; a.scales = s; a.out = out;
      for (int i = 0; i < 2; ++i) if (v.run(a) != Status::kSuccess) printf("refused\n");
      CK(cudaDeviceSynchronize()); printf("ran %s\n", v.name.c_str());
    }
    return 0;
  }
  // bench: shapes n,k from argv[2..] as NxK; m list fixed; fp16 groupwise g128.
  std::vector<std::pair<int, int>> shapes;
  for (int i = 2; i < argc; ++i) { int n, k; sscanf(argv[i], "%dx%d", &n, &k); shapes.push_back({n, k}); }
  std::vector<int> ms = {1, 15, 16, 31, 32, 63, 64, 127, 128};
  if (const char* e = std::getenv("HARNESS_M")) {  // e.g. HARNESS_M=1,16
    ms.clear();
    for (const char* q = e; *q;) { ms.push_back(atoi(q)); while (*q && *q != ',') ++q; if (*q) ++q; }
  }
  // copy bandwidth
  {
    long bytes = 512L << 20; void *a, *b; CK(cudaMalloc(&a, bytes)); CK(cudaMalloc(&b, bytes));
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    CK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice)); cudaEventRecord(e0);
    for (int i = 0; i < 5; ++i) CK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    cudaEventRecord(e1); cudaEventSynchronize(e1); float ms_; cudaEventElapsedTime(&ms_, e0, e1);
    printf("d2d copy: %.0f GB/s (read+write)\n", 2.0 * bytes * 5 / ms_ / 1e6); cudaFree(a); cudaFree(b);
  }
  // HARNESS_ONLY=kw8,m16_r16: only the variants whose names hold one of these parts.
  auto wanted = [](const std::string& name) {
    const char* e = std::getenv("HARNESS_ONLY");
    if (e == nullptr || *e == 0) return true;
    std::string list(e);
    for (size_t a = 0; a <= list.size();) {
      size_t b = list.find(',', a);
      if (b == std::string::npos) b = list.size();
      if (b > a && name.find(list.substr(a, b - a)) != std::string::npos) return true;
      a = b + 1;
    }
    return false;
  };
  cudaStream_t stream; CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (auto [n, k] : shapes) {
    const int g = 128; long wbytes = (long)(n + 15) / 16 * 16 * k / 2;
    int copies = (int)std::max(2L, (300L << 20) / wbytes + 1);
    std::vector<uint8_t*> ws(copies); std::vector<void*> ss(copies);
    for (int c = 0; c < copies; ++c) { CK(cudaMalloc(&ws[c], wbytes)); fill_rand<<<(wbytes + 255) / 256, 256>>>(ws[c], wbytes, c);
      CK(cudaMalloc(&ss[c], (long)k / g * n * 2)); fill_val<<<((long)k / g * n + 255) / 256, 256>>>((H*)ss[c], (long)k / g * n, 9, 0.001f, 0.01f); }
    void *x, *out; CK(cudaMalloc(&x, 128L * k * 2)); CK(cudaMalloc(&out, 128L * n * 2)); fill_val<<<(128 * k + 255) / 256, 256>>>((H*)x, 128L * k, 1, -1, 1);
    CK(cudaDeviceSynchronize());
    printf("== %dx%d (%.1f MB int4, %d copies)\n", n, k, wbytes / 1e6, copies);
    for (int m : ms) {
      printf("m=%3d", m);
      for (auto& v : vs) {
        if (v.dtype != 0 || v.mode != 1 || m > v.max_m || !wanted(v.name)) continue;
        GemmArgs a; a.m = m; a.n = n; a.k = k; a.group_size = g; a.x = x; a.out = out; a.stream = stream; a.sm_count = sms;
        const int reps = 4 * copies;
        cudaGraph_t graph; cudaGraphExec_t exec;
        CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        bool ok = true;
        for (int r = 0; r < reps; ++r) { a.w = ws[r % copies]; a.scales = ss[r % copies]; if (v.run(a) != Status::kSuccess) ok = false; }
        CK(cudaStreamEndCapture(stream, &graph));
        if (!ok) { cudaGraphDestroy(graph); printf("  %s:refused", v.name.c_str() + 3); continue; }
        CK(cudaGraphInstantiate(&exec, graph, 0));
        CK(cudaGraphLaunch(exec, stream));
        cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
        float best = 1e9;
        for (int rep = 0; rep < 3; ++rep) {
          cudaEventRecord(e0, stream); CK(cudaGraphLaunch(exec, stream)); cudaEventRecord(e1, stream); CK(cudaEventSynchronize(e1));
          float t; cudaEventElapsedTime(&t, e0, e1); best = std::min(best, t);
        }
        float us = best * 1000 / reps;
        printf("  %s %.2fus %.0fGB/s", v.name.c_str(), us, wbytes / us / 1e3);
        cudaGraphExecDestroy(exec); cudaGraphDestroy(graph);
      }
      printf("\n");
    }
    for (int c = 0; c < copies; ++c) { cudaFree(ws[c]); cudaFree(ss[c]); }
    cudaFree(x); cudaFree(out);
  }
  return 0;
}

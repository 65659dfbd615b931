// Host side of the tiled kernel (gemv/tiled_kernel.cuh): grid (row groups,
// token tiles), S stages of shared memory, checked against the device's limit
// (an Ada GPU has 99 KB per CTA, an A100 163 KB, Hopper 227 KB).
#pragma once

#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "gemv/skinny_launch.cuh"
#include "gemv/tiled_kernel.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::tiled {

template <class T, QuantMode kMode, int NT, int RB, int S>
struct Tiled {
  static_assert(S >= 2, "at least two pipeline stages");
  static constexpr bool kScales = kMode != QuantMode::kPerColumn;
  static constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  using L = StageLayout<NT, RB, kScales, kZeros>;
  static constexpr int kSmemBytes = S * L::kBytes;
  // grid.y: M above 65535 token tiles is refused (with no other family on an SM80 GPU, gemm()
  // then fails); reachable only with K < 512, since kernels.pieces() keeps m * k below 2^31.
  static constexpr int kMaxTokenTiles = 65535;

  static bool shape_ok(const GemmArgs& a) {
    if (a.m <= 0 || (a.m + 8 * NT - 1) / (8 * NT) > kMaxTokenTiles) return false;
    return gemv::inputs_ok<kScales, kZeros, kChunkK>(a);
  }

  // Fits the current device: an SM80-class GPU or newer with room for the stages. Without a
  // device (a machine with no GPU: no call can launch there) only the shape decides, as for the
  // other families; run() refuses then.
  static bool device_ok(bool no_device_ok) {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) {
      cudaGetLastError();  // not left behind for an unrelated call to report
      return no_device_ok;
    }
    const gemv::DeviceLimits info = gemv::device_limits(dev);
    return info.error == cudaSuccess && info.major >= 8 && kSmemBytes <= info.smem_optin;
  }

  static Status can_implement(const GemmArgs& a) {
    return shape_ok(a) && device_ok(true) ? Status::kSuccess : Status::kCannotImplement;
  }

  static size_t workspace_size(const GemmArgs&) { return 0; }

  static Status run(const GemmArgs& a) {
    auto kernel = tiled_kernel<T, kMode, NT, RB, S>;
    if (!shape_ok(a) || !device_ok(false)) return Status::kCannotImplement;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return launch_failed(cudaSuccess);
    {
      // Function attributes belong to a device: set them once on each device this kernel runs on.
      static std::mutex mu;
      static std::unordered_map<int, bool> configured;
      std::lock_guard<std::mutex> lock(mu);
      if (!configured.count(dev)) {
        const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
        if (e != cudaSuccess) return launch_failed(e);
        configured[dev] = true;
      }
    }
    Params p{a.x, static_cast<const uint8_t*>(a.w), a.scales, a.zeros, a.bias, a.out,
             a.m, a.n, a.k, kScales ? a.group_size : a.k, a.out_pitch(), a.scale_pitch(), 1, 0};
    const dim3 grid((a.n + L::kRows - 1) / L::kRows, (a.m + L::kTokens - 1) / L::kTokens, 1);
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = dim3(kThreads, 1, 1);
    cfg.dynamicSmemBytes = kSmemBytes;
    cfg.stream = a.stream;
    const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, p);
    if (err != cudaSuccess) return launch_failed(err);
    return Status::kSuccess;
  }
};

}  // namespace w4a16::tiled

// Host side of the `dequant` family: can_implement, the workspace (the dense weight, n x k
// values of the activation type) and run(), which writes the dense weight into the workspace.
// The matmul that completes the call is torch's (cuBLAS), launched by gemm() in Python on the
// same stream right after (python/w4a16_build/kernels.py `launch`): run() alone does not write
// `out`. Any GPU of SM80 or newer.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "dense/dequant_kernel.cuh"
#include "gemv/launch_common.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::dense {

template <class T, QuantMode kMode>
struct Dequant {
  static constexpr bool kScales = kMode != QuantMode::kPerColumn;
  static constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;

  static bool shape_ok(const GemmArgs& a) {
    return a.m > 0 && gemv::inputs_ok<kScales, kZeros, 64>(a);
  }

  static Status can_implement(const GemmArgs& a) {
    return shape_ok(a) ? Status::kSuccess : Status::kCannotImplement;
  }

  static size_t workspace_size(const GemmArgs& a) {
    return shape_ok(a) ? size_t(a.n) * size_t(a.k) * sizeof(T) : 0;
  }

  static Status run(const GemmArgs& a) {
    if (!shape_ok(a)) return Status::kCannotImplement;
    if (a.workspace == nullptr || a.workspace_bytes < workspace_size(a)) return Status::kWorkspaceTooSmall;
    if (reinterpret_cast<uintptr_t>(a.workspace) % 16) return Status::kCannotImplement;
    // A warp's tile: 4 atoms (512 packed bytes); k % 64 == 0, so the atoms of a row divide evenly.
    const int64_t tiles = (int64_t(a.n) + 15) / 16 * (a.k / 64);
    const int64_t blocks = (tiles + kDequantWarps - 1) / kDequantWarps;
    dequant_kernel<T, kMode><<<dim3(unsigned(blocks)), kDequantWarps * 32, 0, a.stream>>>(
        static_cast<const uint4*>(a.w), static_cast<const T*>(a.scales), static_cast<const T*>(a.zeros),
        static_cast<T*>(a.workspace), a.n, a.k, kScales ? a.group_size : a.k, a.scale_pitch(), tiles);
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? Status::kSuccess : launch_failed(err);
  }
};

}  // namespace w4a16::dense

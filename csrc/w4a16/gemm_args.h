// The call ABI every generated kernel implements: problem arguments and status.
// Plain C++ only (no CUTLASS, no CUDA headers beyond the runtime types).
// Kept apart from registry.h so that registry changes recompile no kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace w4a16 {

// Problem: out[m, n] = x[m, k] . W[n, k]^T (+ bias[n]), computed on the GPU as
// the transposed GEMM out^T = W . x^T so that the 4-bit weight is CUTLASS's
// "A" operand (the one that goes through registers).
struct GemmArgs {
  int m = 0;               // tokens (rows of x and out)
  int n = 0;               // output features (rows of W)
  int k = 0;               // input features
  int group_size = 0;      // K elements per scale; == k for per_column
  const void* x = nullptr;        // [m, k] activation dtype, row-major
  const void* w = nullptr;        // packed 4-bit weight, logical [n, k]
  const void* scales = nullptr;   // groupwise: [k/group, n]; per_column: [n]
  const void* zeros = nullptr;    // groupwise_zero only: [k/group, n], pre-multiplied
  const void* bias = nullptr;     // [n] or null
  void* out = nullptr;            // [m, n] activation dtype, row-major
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  cudaStream_t stream = nullptr;
  int sm_count = 0;               // 0: query the current device
};

enum class Status : int {
  kSuccess = 0,
  kCannotImplement = 1,    // shape/alignment/group size not supported by this kernel
  kWorkspaceTooSmall = 2,
  kInternalError = 3,      // CUTLASS initialize or launch failed
};

const char* status_string(Status s);

}  // namespace w4a16

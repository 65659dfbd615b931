// The call ABI every generated kernel implements: problem arguments and status.
// Plain C++ only (no CUTLASS, no CUDA headers beyond the runtime types).
// Kept apart from registry.h so that registry changes recompile no kernel.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace w4a16 {

// How the weight's scales (and zero points) apply; shared by every kernel family.
// generator/model.py QuantMode spells these members (its `cpp` property).
enum class QuantMode { kPerColumn, kGroupwise, kGroupwiseZero };

// Problem: out[m, n] = x[m, k] . W[n, k]^T (+ bias[n]), computed on the GPU as
// the transposed GEMM out^T = W . x^T so that the 4-bit weight is CUTLASS's
// "A" operand (the one that goes through registers).
//
// A problem may be a piece of a larger one (kernels.pieces() splits layers whose
// indices would pass 2^31): then `w`, `scales`, `zeros`, `bias` and `out`
// point at the piece's first row, and out / scales / zeros keep the full
// layer's row pitch in `ld_out` / `ld_scales`.
struct GemmArgs {
  int m = 0;               // tokens (rows of x and out)
  int n = 0;               // output features (rows of W)
  int k = 0;               // input features
  int group_size = 0;      // K elements per scale; == k for per_column
  const void* x = nullptr;        // [m, k] activation dtype, row-major
  const void* w = nullptr;        // packed 4-bit weight, logical [n, k]
  const void* scales = nullptr;   // groupwise: [k/group, ld_scales]; per_column: [n]
  const void* zeros = nullptr;    // groupwise_zero only: like scales, pre-multiplied
  const void* bias = nullptr;     // [n] or null
  void* out = nullptr;            // [m, ld_out] activation dtype, row-major
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  cudaStream_t stream = nullptr;
  int sm_count = 0;               // 0: query the current device
  int64_t ld_out = 0;             // elements between rows of out; 0 = n
  int64_t ld_scales = 0;          // elements between groups of scales/zeros; 0 = n

  int64_t out_pitch() const { return ld_out > 0 ? ld_out : n; }
  int64_t scale_pitch() const { return ld_scales > 0 ? ld_scales : n; }
};

// Every kernel indexes the weight (in 4-bit elements, padded to whole 16-row
// atoms), x and out with 32-bit integers in places (CuTe shapes, TMA boxes):
// a problem must stay below 2^31 in each. Measured on an H100: N = 524272,
// K = 4096 (2^31 - 65536 nibbles) runs; N = 524280 (padded to 2^31) crashed.
constexpr int64_t kIndexLimit = int64_t(1) << 31;

inline bool within_index_limits(const GemmArgs& a) {
  const int64_t padded_n = (int64_t(a.n) + 15) / 16 * 16;
  return padded_n * a.k < kIndexLimit && int64_t(a.m) * a.k < kIndexLimit &&
         int64_t(a.m) * a.out_pitch() < kIndexLimit && a.out_pitch() >= a.n &&
         a.scale_pitch() >= a.n && a.out_pitch() % 8 == 0 && a.scale_pitch() % 8 == 0;
}

enum class Status : int {
  kSuccess = 0,
  kCannotImplement = 1,    // shape/alignment/group size not supported by this kernel
  kWorkspaceTooSmall = 2,
  kInternalError = 3,      // CUTLASS initialize failed
  kLaunchFailed = 4,       // the CUDA launch was refused (last_launch_error() says why)
};

const char* status_string(Status s);

// The CUDA error of this thread's last refused launch ("" if none); the
// error is also cleared from CUDA's per-thread state, so that it is not
// reported later against an unrelated call.
const char* last_launch_error();
Status launch_failed(cudaError_t err);

}  // namespace w4a16

// The C ABI between generated kernels, the registry and the Python binding.
// Plain C++ only (no CUTLASS, no CUDA headers beyond the runtime types), so
// the registry and the binding compile quickly with the host compiler.
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
  kNotCompiledForArch = 4, // binary has no code for this architecture
};

const char* status_string(Status s);

// Compile-time configuration of a generated kernel, mirrored from the Python
// model (generator/model.py); strings are the model's short names.
struct KernelConfig {
  const char* family;      // "cutlass"
  const char* dtype;       // "fp16" | "bf16"
  const char* mode;        // "per_column" | "groupwise" | "groupwise_zero"
  int tile_rows, tile_tokens, tile_k;
  int cluster_m, cluster_n;
  const char* schedule;    // "coop" | "pingpong"
  const char* scheduler;   // "persistent" | "streamk"
};

struct KernelEntry {
  const char* name;
  KernelConfig config;
  Status (*can_implement)(const GemmArgs&);
  size_t (*workspace_size)(const GemmArgs&);
  Status (*run)(const GemmArgs&);   // initialize + launch on args.stream
};

// Defined by the generated registry.
const KernelEntry* registry_begin();
const KernelEntry* registry_end();
const char* manifest_name();
const char* manifest_sha256();

}  // namespace w4a16

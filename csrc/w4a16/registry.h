// The registry of generated kernels: what the binding lists and dispatches to.
// Only registry.cpp (generated) and the binding include this, so it may grow
// without recompiling any kernel.
#pragma once

#include "w4a16/gemm_args.h"

namespace w4a16 {

// Compile-time configuration of a generated kernel, mirrored from the Python
// model (generator/model.py); strings are the model's short names.
struct KernelConfig {
  const char* family;      // "cutlass" | "gemv"
  const char* dtype;       // "fp16" | "bf16"
  const char* mode;        // "per_column" | "groupwise" | "groupwise_zero"
  int tile_rows, tile_tokens, tile_k;
  int cluster_m, cluster_n; // gemv: cluster_m 0 = chosen per problem (split K)
  const char* schedule;    // "coop" | "pingpong" | "gemv"
  const char* scheduler;   // "persistent" | "streamk" | "cluster_splitk"
  int max_m;               // largest M the kernel accepts; 0 = any
  int stages;              // gemv: weight chunks in flight per warp; cutlass: 0 (builder's choice)
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

// The registry of generated kernels: what the binding lists and dispatches to.
// Only registry.cpp (generated) and the binding include this, so it may grow
// without recompiling any kernel.
//
// An entry holds a kernel's name and its three functions, nothing else: the
// name is the kernel's identity and parses back into its whole configuration
// with the generator's model (generator/model.py, `parse_name`), which Python
// does; no configuration is kept here in parallel.
#pragma once

#include "w4a16/gemm_args.h"

namespace w4a16 {

struct KernelEntry {
  const char* name;
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

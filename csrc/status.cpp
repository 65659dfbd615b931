#include "w4a16/gemm_args.h"

#include <cuda_runtime_api.h>

namespace w4a16 {

namespace {
thread_local const char* g_last_launch_error = "";
}

const char* status_string(Status s) {
  switch (s) {
    case Status::kSuccess: return "success";
    case Status::kCannotImplement: return "the kernel cannot implement this problem";
    case Status::kWorkspaceTooSmall: return "workspace too small";
    case Status::kInternalError: return "CUTLASS initialize failed";
    case Status::kLaunchFailed: return "the kernel launch was refused";
  }
  return "unknown status";
}

const char* last_launch_error() { return g_last_launch_error; }

Status launch_failed(cudaError_t err) {
  // A refused launch (too much shared memory, an unschedulable cluster) leaves a
  // non-sticky error behind: take it, so the next library to check sees none.
  cudaError_t pending = cudaGetLastError();
  if (err == cudaSuccess) err = pending;
  // CUTLASS takes the error itself before it returns its status.
  g_last_launch_error = err == cudaSuccess ? "refused inside CUTLASS (CUTLASS_DEBUG_TRACE_LEVEL=1 says why)"
                                           : cudaGetErrorString(err);
  return Status::kLaunchFailed;
}

}  // namespace w4a16

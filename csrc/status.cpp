#include "w4a16/gemm_args.h"

namespace w4a16 {

const char* status_string(Status s) {
  switch (s) {
    case Status::kSuccess: return "success";
    case Status::kCannotImplement: return "the kernel cannot implement this problem";
    case Status::kWorkspaceTooSmall: return "workspace too small";
    case Status::kInternalError: return "CUTLASS initialize or launch failed";
  }
  return "unknown status";
}

}  // namespace w4a16

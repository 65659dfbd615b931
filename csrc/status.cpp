#include "w4a16/kernel_api.h"

namespace w4a16 {

const char* status_string(Status s) {
  switch (s) {
    case Status::kSuccess: return "success";
    case Status::kCannotImplement: return "the kernel cannot implement this problem";
    case Status::kWorkspaceTooSmall: return "workspace too small";
    case Status::kInternalError: return "CUTLASS initialize or launch failed";
    case Status::kNotCompiledForArch: return "no code for this GPU architecture";
  }
  return "unknown status";
}

}  // namespace w4a16

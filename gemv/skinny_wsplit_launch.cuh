// Host side of the skinny kernel's warp-split form (gemv/skinny_wsplit_kernel.cuh):
// shared memory by m and K, one CTA per 16 * (8 / KW) rows, no cluster. kCpAsync:
// the SM80 form (`skinny80`), whose shared memory is the device's (an A100 gives a
// CTA 163 KB, an Ada GPU 99 KB) and which is launched without PDL.
#pragma once

#include <cstdlib>
#include <mutex>
#include <unordered_set>

#include "gemv/skinny_launch.cuh"
#include "gemv/skinny_wsplit_kernel.cuh"

namespace w4a16::skinny {

template <class T, QuantMode kMode, int NT, int KW, int WST, bool kCpAsync = false>
struct SkinnyWsplit {
  static_assert(WST >= 2 && kWarps * WST * 8 <= kWsplitBarBytes, "weight ring depth out of range");
  static constexpr bool kScales = kMode != QuantMode::kPerColumn;
  static constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  static constexpr int kRows = 16 * (kWarps / KW);
  // The argument checks are the cluster form's (same inputs, same copies).
  using Shape = Skinny<T, kMode, NT, 1, WST>;

  // The SM80 form's shared memory per CTA on the current device (opt-in, at most kMaxSmemBytes),
  // once per device; 0 where the device is older than SM80 or cannot be queried. No device at
  // all (a machine without a GPU, where nothing launches): kMaxSmemBytes, so that can_implement
  // answers for the shape as the other families do; run() refuses then.
  static int smem_limit(bool no_device_ok) {
    if constexpr (!kCpAsync) {
      return kMaxSmemBytes;
    } else {
      int dev = 0;
      if (cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();  // not left behind for an unrelated call to report
        return no_device_ok ? kMaxSmemBytes : 0;
      }
      const gemv::DeviceLimits info = gemv::device_limits(dev);
      if (info.error != cudaSuccess || info.major < 8) return 0;
      return info.smem_optin < kMaxSmemBytes ? info.smem_optin : kMaxSmemBytes;
    }
  }

  // Shared memory for m tokens; false when it does not fit in `limit` bytes (x grows with m * K).
  static bool make(const GemmArgs& a, Plan& plan, int limit = kMaxSmemBytes) {
    const int group = kScales ? a.group_size : a.k;
    const long x_raw = static_cast<long>(a.m) * (a.k + kXPad) * 2;
    if (x_raw > limit) return false;
    const long x_bytes = align128(static_cast<int>(x_raw));
    const long loop = x_bytes + wsplit_sz_bytes(a.k, group, kRows, kScales, kZeros) +
                      static_cast<long>(kWarps) * WST * WeightChunks<NT, 1>::value * kChunkBytes;
    const long red = static_cast<long>(KW) * ((a.m + 7) / 8 * 8) * kRows * 4;
    const long total = kWsplitBarBytes + (loop > red ? loop : red);
    if (total > limit) return false;
    plan.x_slot_bytes = static_cast<int>(x_bytes);
    plan.smem_bytes = static_cast<int>(total);
    plan.row_groups = (a.n + kRows - 1) / kRows;
    plan.splits = 1;
    return true;
  }

  static Status can_implement(const GemmArgs& a) {
    Plan plan;
    if (!Shape::shape_ok(a) || !make(a, plan, smem_limit(true))) return Status::kCannotImplement;
    return Status::kSuccess;
  }

  static size_t workspace_size(const GemmArgs&) { return 0; }

  static Status run(const GemmArgs& a) {
    auto kernel = skinny_wsplit_kernel<T, kMode, NT, KW, WST, kCpAsync>;
    Plan plan;
    const int limit = smem_limit(false);
    if (!Shape::shape_ok(a) || !make(a, plan, limit)) return Status::kCannotImplement;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return launch_failed(cudaSuccess);
    {
      // Function attributes belong to a device: set them once on each device this kernel runs on.
      static std::mutex mu;
      static std::unordered_set<int> configured;
      std::lock_guard<std::mutex> lock(mu);
      if (!configured.count(dev)) {
        const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limit);
        if (e != cudaSuccess) return launch_failed(e);
        configured.insert(dev);
      }
    }
    Params p{a.x, static_cast<const uint8_t*>(a.w), a.scales, a.zeros, a.bias, a.out,
             a.m, a.n, a.k, kScales ? a.group_size : a.k, a.out_pitch(), a.scale_pitch(), 1, plan.x_slot_bytes};
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(plan.row_groups, 1, 1);
    cfg.blockDim = dim3(kThreads, 1, 1);
    cfg.dynamicSmemBytes = plan.smem_bytes;
    cfg.stream = a.stream;
    // Programmatic dependent launch as in the cluster form (W4A16_NO_PDL=1 turns it off); never
    // for the SM80 form, which does not wait on the previous kernel (griddepcontrol is sm_90).
    static const bool pdl = std::getenv("W4A16_NO_PDL") == nullptr || std::getenv("W4A16_NO_PDL")[0] != '1';
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl && !kCpAsync ? 1 : 0;
    const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, p);
    if (err != cudaSuccess) return launch_failed(err);
    return Status::kSuccess;
  }
};

}  // namespace w4a16::skinny

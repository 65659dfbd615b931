// The GEMV's host side: the planner (row groups, K splits, shared-memory
// layout within kMaxSmemBytes) and the launcher every generated GEMV kernel
// instantiates (can_implement, workspace_size, run: the registry's ABI).
#pragma once

#include <mutex>
#include <unordered_set>

#include "gemv/kernel.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::gemv {

struct Plan {
  int row_groups, splits, xs_stride, xs_bytes, slice_groups, sz_bytes, xsum_bytes, smem_bytes;
};

inline int align128(int x) { return (x + 127) / 128 * 128; }

template <int NT, int RB, int kStages, bool kScales, bool kZeros>
inline int plan_for_splits(const GemmArgs& a, int group_size, int splits, Plan& plan) {
  constexpr int kTok = 8 * NT;
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  const int nchunks = a.k / kChunkK;
  plan.splits = splits;
  const int slice_chunks = (nchunks + splits - 1) / splits;
  plan.xs_stride = slice_chunks * kChunkK + kXPad;
  plan.xs_bytes = align128(a.m * plan.xs_stride * 2);
  // A slice of c chunks starting anywhere touches at most this many groups.
  plan.slice_groups = kScales ? (slice_chunks * kChunkK + group_size - 2) / group_size + 1 : 0;
  plan.sz_bytes = align128(plan.slice_groups * kRowsPerCta * 2 * (kZeros ? 2 : 1));
  plan.xsum_bytes = kZeros ? align128(slice_chunks * kTok * 4) : 0;
  const int ring_bytes = kWarps * kStages * (RB * kChunkBytes + 8);  // + one mbarrier per stage
  const int red_bytes = kTok * kRowsPerCta * 4;  // partials, reusing the front after the loop
  const int total = plan.xs_bytes + plan.sz_bytes + plan.xsum_bytes + ring_bytes;
  plan.smem_bytes = total > red_bytes ? total : red_bytes;
  return plan.smem_bytes;
}

template <int NT, int RB, int kStages, bool kScales, bool kZeros>
inline bool make_plan(const GemmArgs& a, int group_size, int sm_count, Plan& plan) {
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  const int nchunks = a.k / kChunkK;
  plan.row_groups = (a.n + kRowsPerCta - 1) / kRowsPerCta;
  // Fewest splits whose K slice of x (m rows) fits its shared-memory budget ...
  const int max_slice_chunks = (kXSmemBytes / (a.m * 2) - kXPad) / kChunkK;
  if (max_slice_chunks < 1) return false;
  int splits = (nchunks + max_slice_chunks - 1) / max_slice_chunks;
  // ... then more, while each CTA keeps >= 8 chunks, until 2 CTAs per SM are busy ...
  while (plan.row_groups * splits < 2 * sm_count && splits < kMaxCluster &&
         nchunks / (splits + 1) >= 8) {
    ++splits;
  }
  if (splits > kMaxCluster || splits > nchunks) return false;
  // ... and more while the whole plan (x, scales, zeros, weight rings) exceeds the limit.
  while (plan_for_splits<NT, RB, kStages, kScales, kZeros>(a, group_size, splits, plan) > kMaxSmemBytes &&
         splits < kMaxCluster && splits < nchunks) {
    ++splits;
  }
  return plan.smem_bytes <= kMaxSmemBytes;
}

inline int device_sm_count() {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
  return sms;
}

template <class T, QuantMode kMode, int NT, int RB, int kStages>
struct Gemv {
  static constexpr bool kScales = kMode != QuantMode::kPerColumn;
  static constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  static int group(const GemmArgs& a) { return kScales ? a.group_size : a.k; }

  static bool shape_ok(const GemmArgs& a) {
    if (a.m <= 0 || a.m > 8 * NT || a.n <= 0 || a.k <= 0) return false;
    if (a.n % 8 || a.k % kChunkK) return false;
    if (!within_index_limits(a)) return false;
    if (!a.x || !a.w || !a.scales || !a.out) return false;
    if (kMode == QuantMode::kGroupwiseZero && !a.zeros) return false;
    if (kMode != QuantMode::kPerColumn) {
      if (a.group_size <= 0 || a.k % a.group_size || a.group_size % kChunkK) return false;
    }
    auto misaligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) % 16) != 0; };
    // Scales and zeros arrive by 16-byte copies (their pitch is a multiple of 8 elements).
    const bool scales_misaligned = kMode != QuantMode::kPerColumn && misaligned(a.scales);
    const bool zeros_misaligned = kMode == QuantMode::kGroupwiseZero && misaligned(a.zeros);
    return !(misaligned(a.x) || misaligned(a.w) || misaligned(a.out) || scales_misaligned || zeros_misaligned);
  }

  static Status can_implement(const GemmArgs& a) {
    Plan plan;
    const int sms = a.sm_count > 0 ? a.sm_count : 132;
    if (!shape_ok(a) || !make_plan<NT, RB, kStages, kScales, kZeros>(a, group(a), sms, plan)) {
      return Status::kCannotImplement;
    }
    return Status::kSuccess;
  }

  static size_t workspace_size(const GemmArgs&) { return 0; }

  static Status run(const GemmArgs& a) {
    Plan plan;
    const int sms = a.sm_count > 0 ? a.sm_count : device_sm_count();
    if (!shape_ok(a) || sms <= 0 || !make_plan<NT, RB, kStages, kScales, kZeros>(a, group(a), sms, plan)) {
      return Status::kCannotImplement;
    }
    auto kernel = gemv_kernel<T, kMode, NT, RB, kStages>;
    // Function attributes belong to a device: set them once on each device this
    // kernel runs on (a process-wide once would leave a second GPU at 48 KiB).
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return launch_failed(cudaSuccess);
    {
      static std::mutex mu;
      static std::unordered_set<int> configured;
      std::lock_guard<std::mutex> lock(mu);
      if (!configured.count(dev)) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemBytes);
        if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
        if (e != cudaSuccess) return launch_failed(e);
        configured.insert(dev);
      }
    }

    Params p{a.x, static_cast<const uint8_t*>(a.w), a.scales, a.zeros, a.bias, a.out,
             a.m, a.n, a.k, group(a), a.out_pitch(), a.scale_pitch(), plan.splits, plan.xs_stride, plan.xs_bytes,
             plan.slice_groups, plan.sz_bytes, plan.xsum_bytes};
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(plan.row_groups * plan.splits, 1, 1);
    cfg.blockDim = dim3(kThreads, 1, 1);
    cfg.dynamicSmemBytes = plan.smem_bytes;
    cfg.stream = a.stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = plan.splits;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, p);
    if (err != cudaSuccess) return launch_failed(err);
    return Status::kSuccess;
  }
};

}  // namespace w4a16::gemv

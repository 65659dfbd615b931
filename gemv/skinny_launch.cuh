// The skinny kernel's host side: the planner (row groups, K splits, shared
// memory) and the launcher the generated files instantiate (can_implement,
// workspace_size, run: the registry's ABI).
#pragma once

#include <mutex>
#include <cstdlib>
#include <map>
#include <tuple>
#include <unordered_set>

#include "gemv/launch_common.cuh"
#include "gemv/skinny_kernel.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::skinny {

struct Plan {
  int row_groups, splits, x_slot_bytes, smem_bytes;
};

inline int align128(int x) { return (x + 127) / 128 * 128; }

template <int NT, int RB, int WST, bool kScales, bool kZeros, bool WG = false>
struct Planner {
  static constexpr int kRowsPerCta = kWarps * 16 * RB;
  static constexpr int XC = XChunks<NT>::value;
  static constexpr int kXStride = XC * kChunkK + kXPad;
  static constexpr int kSzBytes = kScales ? XC * kRowsPerCta * 2 * (kZeros ? 2 : 1) : 0;

  static int smem_bytes(int m, int& x_slot_bytes) {
    // The warpgroup form's slot holds all 8*NT token rows (unpadded core matrices).
    x_slot_bytes = WG ? align128(8 * NT * XC * kChunkK * 2) : align128(m * kXStride * 2);
    const int rings = kXSlots * (x_slot_bytes + kSzBytes) + kWarps * WST * RB * WeightChunks<NT, RB>::value * kChunkBytes;
    const int red = (m + 7) / 8 * 8 * kRowsPerCta * 4;  // the partials, after the loop
    return kBarBytes + (rings > red ? rings : red);
  }

  // The shape part of the plan: shared memory and row groups (no device query).
  static bool make(const GemmArgs& a, Plan& plan) {
    plan.smem_bytes = smem_bytes(a.m, plan.x_slot_bytes);
    if (plan.smem_bytes > kMaxSmemBytes) return false;
    plan.row_groups = (a.n + kRowsPerCta - 1) / kRowsPerCta;
    plan.splits = 1;
    return true;
  }

  // K splits (the cluster size): the fewest waves times the chunks each CTA
  // streams (plus a fixed cost of kCtaCost chunks per CTA), each split >= 2
  // chunks. slots(s) is how many CTAs of this kernel run at once in clusters
  // of s (the launcher asks the occupancy calculator: clusters pack by GPC, so
  // it is not s * CTAs per SM * SMs).
  // (Measured on an H200, benchmarks/NOTES.md: 8 or 16 chunks, or a cost per split, were no
  // better: faster at M = 16 on some layers, slower at M = 1 on small ones.)
  static constexpr int kCtaCost = 4;
  template <class Slots>
  static void choose_splits(const GemmArgs& a, Plan& plan, Slots&& slots) {
    const int nchunks = a.k / kChunkK;
    int max_s = nchunks / 2 > 0 ? nchunks / 2 : 1;
    if (max_s > kMaxCluster) max_s = kMaxCluster;
    long best = -1;
    plan.splits = 1;
    for (int s = 1; s <= max_s; ++s) {
      const int cap = slots(s);
      if (cap <= 0) continue;
      const long ctas = static_cast<long>(plan.row_groups) * s;
      const long waves = (ctas + cap - 1) / cap;
      const long cost = waves * ((nchunks + s - 1) / s + kCtaCost);
      if (best < 0 || cost < best) {
        best = cost;
        plan.splits = s;
      }
    }
  }
};

// WG: the warpgroup form (wgmma; rows_per_warp 16 only), see skinny_kernel.cuh.
template <class T, QuantMode kMode, int NT, int RB, int WST, bool WG = false>
struct Skinny {
  static_assert(WST >= 2 && (WST * kWarps + 2 * kXSlots) * 8 <= kBarBytes, "weight ring depth out of range");
  static constexpr bool kScales = kMode != QuantMode::kPerColumn;
  static constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  using P = Planner<NT, RB, WST, kScales, kZeros, WG>;
  static int group(const GemmArgs& a) { return kScales ? a.group_size : a.k; }

  static bool shape_ok(const GemmArgs& a) {
    return a.m > 0 && a.m <= 8 * NT && gemv::inputs_ok<kScales, kZeros, kChunkK>(a);
  }

  static Status can_implement(const GemmArgs& a) {
    Plan plan;
    if (!shape_ok(a) || !P::make(a, plan)) return Status::kCannotImplement;
    return Status::kSuccess;
  }

  static size_t workspace_size(const GemmArgs&) { return 0; }

  static Status run(const GemmArgs& a) {
    auto kernel = skinny_kernel<T, kMode, NT, RB, WST, WG>;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return launch_failed(cudaSuccess);
    // Function attributes belong to a device: set them once on each device this kernel runs on.
    Plan plan;
    if (!shape_ok(a) || !P::make(a, plan)) return Status::kCannotImplement;
    {
      static std::mutex mu;
      static std::unordered_set<int> configured;
      // (device, shared memory, cluster size) -> CTAs that run at once.
      static std::map<std::tuple<int, int, int>, int> slots;
      std::lock_guard<std::mutex> lock(mu);
      if (!configured.count(dev)) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemBytes);
        if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
        if (e != cudaSuccess) return launch_failed(e);
        configured.insert(dev);
      }
      cudaError_t err = cudaSuccess;  // the first occupancy query that failed
      P::choose_splits(a, plan, [&](int s) {
        const auto key = std::make_tuple(dev, plan.smem_bytes, s);
        auto it = slots.find(key);
        if (it != slots.end()) return it->second;
        // A size that fails is remembered as 0; only if no size works is the launch refused,
        // with the first error.
        int clusters = 0;
        const cudaError_t e = gemv::resident_clusters(kernel, kThreads, plan.smem_bytes, s, clusters);
        if (e != cudaSuccess && err == cudaSuccess) err = e;
        slots.emplace(key, clusters * s);
        return clusters * s;
      });
      if (slots[std::make_tuple(dev, plan.smem_bytes, plan.splits)] <= 0) {
        return launch_failed(err != cudaSuccess ? err : cudaErrorInvalidConfiguration);
      }
    }

    Params p{a.x, static_cast<const uint8_t*>(a.w), a.scales, a.zeros, a.bias, a.out,
             a.m, a.n, a.k, group(a), a.out_pitch(), a.scale_pitch(), plan.splits, plan.x_slot_bytes};
    cudaLaunchAttribute attr[2];
    cudaLaunchConfig_t cfg =
        gemv::cluster_config(plan.row_groups * plan.splits, kThreads, plan.smem_bytes, plan.splits, a.stream, attr);
    // The prologue may overlap the previous kernel in the stream: the kernel
    // reads no global memory before griddepcontrol.wait. W4A16_NO_PDL=1 (read
    // once per process) launches without it, e.g. to measure what it saves.
    static const bool pdl = std::getenv("W4A16_NO_PDL") == nullptr || std::getenv("W4A16_NO_PDL")[0] != '1';
    attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.numAttrs = pdl ? 2 : 1;
    const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, p);
    if (err != cudaSuccess) return launch_failed(err);
    return Status::kSuccess;
  }
};

}  // namespace w4a16::skinny

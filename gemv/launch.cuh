// The GEMV's host side: the planner (row groups, K splits, shared-memory
// layout within kMaxSmemBytes) and the launcher every generated GEMV kernel
// instantiates (can_implement, workspace_size, run: the registry's ABI).
#pragma once

#include <map>
#include <mutex>
#include <tuple>
#include <unordered_set>

#include "gemv/kernel.cuh"
#include "gemv/launch_common.cuh"
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

// The fewest K splits whose slice of x (m rows) fits its shared-memory budget
// (kXSmemBytes); 0 where not even one chunk of x fits.
inline int min_splits(const GemmArgs& a) {
  const int max_slice_chunks = (kXSmemBytes / (a.m * 2) - kXPad) / kChunkK;
  if (max_slice_chunks < 1) return 0;
  return (a.k / kChunkK + max_slice_chunks - 1) / max_slice_chunks;
}

// The plan without device queries: whether a call fits at all (can_implement),
// and what run() launches where the occupancy queries of choose_splits fail.
template <int NT, int RB, int kStages, bool kScales, bool kZeros>
inline bool make_plan(const GemmArgs& a, int group_size, int sm_count, Plan& plan) {
  constexpr int kRowsPerCta = kWarps * 16 * RB;
  const int nchunks = a.k / kChunkK;
  plan.row_groups = (a.n + kRowsPerCta - 1) / kRowsPerCta;
  // Fewest splits whose K slice of x (m rows) fits its shared-memory budget ...
  int splits = min_splits(a);
  if (splits < 1) return false;
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

// The split count run() launches: the fewest estimated time over every split
// count from min_splits to 16 (and at most one per chunk) whose plan fits.
//
// A call is row_groups clusters of s CTAs, each streaming ceil(chunks / s)
// chunks of its rows. The GEMV is issue- and latency-bound, so its time
// follows the busiest SM: with all clusters resident, the fewest CTAs p per
// SM at which they all fit (clusters pack by GPC, so that is the occupancy
// calculator's answer with p CTAs per SM, not row_groups * s / SMs); beyond
// the resident clusters, waves at the plan's own occupancy. Estimated time:
//   waves * (ceil(chunks / s) + kCtaCostChunks) * kShareCost[p].
// kShareCost (p CTAs on one SM take this long against one) and the fixed cost
// per CTA were fitted on an H200 (fp16 groupwise g128, 4-stage variants) to
// every split count of four GEMV variants on 25 layers at M = 1-9, 12, 16, and
// checked on 19 layers of five models in none of its data (M = 2, 5, 8): within
// 0.4-2.0% of the fastest split count per variant (geomean), where the rule it
// replaces (the fewest splits that give 2 CTAs per SM) was 5-23% off. Other dtypes, modes,
// groups, 8-stage variants and cards use the same constants, untimed
// (benchmarks/NOTES.md, "Twentieth session"; benchmarks/gemv_splits_probe.cu).
constexpr int kCtaCostChunks = 4;
constexpr double kShareCost[5] = {0.0, 1.0, 1.4, 2.0, 2.4};
constexpr int kMaxSharePerSm = 4;

// What the occupancy calculator says of one split count s at its plan's shared memory.
struct SplitFit {
  int clusters = 0;  // clusters of s CTAs resident at once (0: cannot launch)
  int per_sm = 0;    // CTAs of this plan per SM
  int cap[kMaxSharePerSm + 1] = {};  // cap[p]: clusters resident at once with at most p CTAs per SM
};

// The estimated time of one split count (in chunk times of one CTA alone on an
// SM); negative where it cannot launch.
inline double split_cost(int nchunks, int row_groups, int s, const SplitFit& f) {
  if (f.clusters <= 0 || f.per_sm <= 0) return -1.0;
  const int pmax = f.per_sm < kMaxSharePerSm ? f.per_sm : kMaxSharePerSm;
  int p = pmax;
  long waves = 1;
  if (f.clusters < row_groups) {
    waves = (row_groups + f.clusters - 1) / f.clusters;
  } else {
    for (int q = 1; q <= pmax; ++q) {
      if (f.cap[q] >= row_groups) {
        p = q;
        break;
      }
    }
  }
  return static_cast<double>(waves) * ((nchunks + s - 1) / s + kCtaCostChunks) * kShareCost[p];
}

// fit(s, smem_bytes, SplitFit&) fills in the occupancy calculator's answers
// (a query that failed leaves its field 0: that split count, or that p, is
// not rated). Returns false where no split count could be rated; plan is then
// unchanged.
template <int NT, int RB, int kStages, bool kScales, bool kZeros, class Fit>
inline bool choose_splits(const GemmArgs& a, int group_size, Fit&& fit, Plan& plan) {
  const int nchunks = a.k / kChunkK;
  const int lo = min_splits(a);
  if (lo < 1) return false;
  const int hi = nchunks < kMaxCluster ? nchunks : kMaxCluster;
  double best = -1.0;
  Plan chosen = plan;
  for (int s = lo; s <= hi; ++s) {
    Plan cand = plan;
    if (plan_for_splits<NT, RB, kStages, kScales, kZeros>(a, group_size, s, cand) > kMaxSmemBytes) continue;
    SplitFit f;
    fit(s, cand.smem_bytes, f);
    const double cost = split_cost(nchunks, cand.row_groups, s, f);
    if (cost >= 0.0 && (best < 0.0 || cost < best)) {
      best = cost;
      chosen = cand;
    }
  }
  if (best < 0.0) return false;
  plan = chosen;
  return true;
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

  // The occupancy calculator's answers for split count s at smem bytes (choose_splits), cached.
  // A query that fails answers 0 (remembered, as the skinny launcher does: that size is not an
  // option on this device) and its error is cleared, so that no later call reports it.
  template <class Kernel, class Cache>
  static void fit(int dev, Kernel kernel, Cache& cache, int s, int smem, SplitFit& f) {
    auto query = [&](int bytes, int cluster, int& out) {
      const auto key = std::make_tuple(dev, bytes, cluster);
      auto it = cache.find(key);
      if (it != cache.end()) {
        out = it->second;
        return;
      }
      if (cluster != 0) {
        resident_clusters(kernel, kThreads, bytes, cluster, out);
      } else if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&out, kernel, kThreads, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        out = 0;
      }
      cache.emplace(key, out);
    };
    query(smem, s, f.clusters);
    query(smem, 0, f.per_sm);
    if (f.clusters <= 0 || f.per_sm <= 0) return;
    // cap[p]: ask with the shared memory that lets at most p CTAs share an SM (unknown: 0,
    // and split_cost then rates s at its plan's own occupancy).
    int per_sm_bytes = 0, reserved = 0;
    if (cudaDeviceGetAttribute(&per_sm_bytes, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return;
    }
    for (int p = 1; p <= kMaxSharePerSm && p <= f.per_sm; ++p) {
      int bytes = per_sm_bytes / p - reserved;
      bytes = bytes / 128 * 128;
      if (bytes > kMaxSmemBytes) bytes = kMaxSmemBytes;
      if (bytes < smem) bytes = smem;
      query(bytes, s, f.cap[p]);
    }
  }

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
      // (device, m, n, k, group) -> the split count choose_splits picked.
      static std::map<std::tuple<int, int, int, int, int>, int> chosen;
      // (device, dynamic shared memory, s) -> clusters of s resident at once; s = 0: CTAs per SM.
      static std::map<std::tuple<int, int, int>, int> occupancy;
      std::lock_guard<std::mutex> lock(mu);
      if (!configured.count(dev)) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxSmemBytes);
        if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
        if (e != cudaSuccess) return launch_failed(e);
        configured.insert(dev);
      }
      // One split count per shape and device for the life of the process (the fallback too), so
      // that a shape's results do not change between calls (the K order of the sums follows it).
      const auto key = std::make_tuple(dev, a.m, a.n, a.k, group(a));
      auto hit = chosen.find(key);
      if (hit != chosen.end()) {
        plan_for_splits<NT, RB, kStages, kScales, kZeros>(a, group(a), hit->second, plan);
      } else {
        // Where no split count could be rated (every query failed), make_plan's plan runs.
        choose_splits<NT, RB, kStages, kScales, kZeros>(
            a, group(a), [&](int s, int smem, SplitFit& f) { fit(dev, kernel, occupancy, s, smem, f); }, plan);
        chosen.emplace(key, plan.splits);
      }
    }

    Params p{a.x, static_cast<const uint8_t*>(a.w), a.scales, a.zeros, a.bias, a.out,
             a.m, a.n, a.k, group(a), a.out_pitch(), a.scale_pitch(), plan.splits, plan.xs_stride, plan.xs_bytes,
             plan.slice_groups, plan.sz_bytes, plan.xsum_bytes};
    cudaLaunchAttribute attr[2];
    const cudaLaunchConfig_t cfg =
        cluster_config(plan.row_groups * plan.splits, kThreads, plan.smem_bytes, plan.splits, a.stream, attr);
    const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, p);
    if (err != cudaSuccess) return launch_failed(err);
    return Status::kSuccess;
  }
};

}  // namespace w4a16::gemv

// Host side of the skinny kernel's warp-specialized form (gemv/skinny_ws_kernel.cuh): the
// argument checks, the tensor maps (encoded per call from the call's pointers and sizes: a map
// holds nothing else, so no stale map can outlive its tensor; the host cost of four encodes per
// call is not measured: every timing so far ran in CUDA graphs), the K split chosen with the
// occupancy calculator's cluster count, and the launch (the registry's ABI). No programmatic
// dependent launch (the kernel has no griddepcontrol).
#pragma once

#include <cuda.h>

#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "gemv/launch_common.cuh"
#include "gemv/skinny_ws_kernel.cuh"
#include "w4a16/gemm_args.h"

namespace w4a16::skinny {

namespace ws {

// cuTensorMapEncodeTiled from the driver, found once per process (no -lcuda at link time);
// null where the driver has none.
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
inline EncodeTiled encode_tiled() {
  static EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      f = nullptr;
    }
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

// A 2-D map of 16- or 32-bit elements: d0 contiguous, d1 rows stride1 bytes apart; elements past
// the ends read as zeros.
inline bool make_map(CUtensorMap& m, const void* base, bool words, uint64_t d0, uint64_t d1, uint64_t stride1,
                     uint32_t b0, uint32_t b1, bool swizzle128, bool stream) {
  const EncodeTiled encode = encode_tiled();
  if (encode == nullptr) return false;
  const cuuint64_t dims[2] = {d0, d1}, strides[1] = {stride1};
  const cuuint32_t box[2] = {b0, b1}, es[2] = {1, 1};
  return encode(&m, words ? CU_TENSOR_MAP_DATA_TYPE_UINT32 : CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, const_cast<void*>(base),
                dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                swizzle128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
                stream ? CU_TENSOR_MAP_L2_PROMOTION_L2_256B : CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The K split (cluster size s, tried 1, 2, 3, 4, 6, 8, 12, 16; each CTA keeps at least kMinStages
// stages): the least estimated time from the occupancy calculator's answers per s (Fit):
//   depth L = ceil(row groups / spread): the CTAs that share an SM when the clusters are placed
//             one CTA per SM first (spread = the clusters that fit so), at most per_sm;
//   waves W = ceil(row groups / resident) (resident = the clusters that fit at once);
//   cost    = W * (1 + kWaveCost * (W - 1)) * (stages per CTA * L^kShareExp + kCtaCost * L).
// CTAs that share an SM stream faster together than one alone (L^0.85, not L), a CTA costs a few
// stages of set-up and reduction, and a wave after the first costs more than its stages. Fitted on
// an H200 (benchmarks/ws_probe.cu, every split timed: 665 points at 8-64 tokens, M = 5-56, 106
// layers; benchmarks/NOTES.md, "Twenty-sixth session"): 1.006x the fastest split in geomean (the
// rule before it: 1.071x); on 11 layers of five models no choice saw, the device's picks at
// 8-128 tokens 1.000-1.007x (before: 1.000-1.057x), worst 1.13x.
constexpr double kShareExp = 0.85;
constexpr double kCtaCost = 4.0;
constexpr double kWaveCost = 0.25;
constexpr int kMinStages = 4;
struct Fit {
  int spread = 0;    // clusters of s that fit with at most one CTA per SM (0: unknown)
  int resident = 0;  // clusters of s that fit at once at the kernel's shared memory
};
// fit(s) -> Fit; per_sm: the kernel's CTAs per SM (0: unknown). 0 where no split fits (no resident
// answer for any s).
template <class FitOf>
int choose_splits(int row_groups, int k, int per_sm, FitOf&& fit) {
  const int nst = k / kChunkK;
  int best_s = 0;
  double best = -1;
  for (int s : {1, 2, 3, 4, 6, 8, 12, 16}) {
    if (s > 1 && nst / s < kMinStages) break;
    const Fit f = fit(s);
    if (f.resident <= 0) continue;
    const int waves = (row_groups + f.resident - 1) / f.resident;
    // Unknown answers (a failed query) leave the depth at one bound or the other, never refuse.
    int depth = f.spread > 0 ? (row_groups + f.spread - 1) / f.spread : (per_sm > 0 ? per_sm : 1);
    if (per_sm > 0 && depth > per_sm) depth = per_sm;
    const double cost = waves * (1 + kWaveCost * (waves - 1)) *
                        (static_cast<double>(nst) / s * std::pow(static_cast<double>(depth), kShareExp) + kCtaCost * depth);
    if (best < 0 || cost < best) {
      best = cost;
      best_s = s;
    }
  }
  return best_s;
}

// The dynamic shared memory at which at most one CTA fits an SM (spread in Fit); 0 if unknown.
inline int one_per_sm_bytes(int dev) {
  int per_sm = 0, reserved = 0, optin = 0;
  if (cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  const int bytes = (per_sm / 2 - reserved) / 128 * 128 + 128;
  return bytes <= optin ? bytes : 0;
}

}  // namespace ws

template <class T, QuantMode kMode, int NT, int S>
struct SkinnyWs {
  static_assert((NT >= 1 && NT <= 8) || NT == 16, "8-64 tokens in steps of 8 (the generator builds 8, 16, 32-64) or 128");
  static_assert(2 * S * 8 <= ws::kBarBytes, "ring depth out of range");
  static constexpr bool kScales = kMode != QuantMode::kPerColumn;
  static constexpr bool kZeros = kMode == QuantMode::kGroupwiseZero;
  static constexpr int kSmem = ws::smem_bytes<NT, S>();
  static_assert(kSmem <= kMaxSmemBytes, "shared memory out of range");

  // The skinny checks (sizes, group, 16-byte pointers; the pitches a multiple of 8 elements, a
  // tensor map's row stride, come with within_index_limits). A shape check only, as every
  // can_implement (no device or driver query): a driver without cuTensorMapEncodeTiled fails the
  // launch (run), and the selection then takes the next tactic.
  static bool shape_ok(const GemmArgs& a) {
    return a.m > 0 && a.m <= 8 * NT && gemv::inputs_ok<kScales, kZeros, kChunkK>(a);
  }

  static Status can_implement(const GemmArgs& a) {
    return shape_ok(a) ? Status::kSuccess : Status::kCannotImplement;
  }

  static size_t workspace_size(const GemmArgs&) { return 0; }

  static Status run(const GemmArgs& a) {
    if (!shape_ok(a)) return Status::kCannotImplement;
    if (ws::encode_tiled() == nullptr) return launch_failed(cudaErrorNotSupported);
    auto kernel = skinny_ws_kernel<T, kMode, NT, S>;
    int dev = 0;
    if (const cudaError_t e = cudaGetDevice(&dev); e != cudaSuccess) return launch_failed(e);
    const int row_groups = (a.n + ws::kRows - 1) / ws::kRows;
    int splits = 0;
    {
      static std::mutex mu;
      // (device, cluster size) -> its Fit; device -> (CTAs per SM, one-per-SM shared memory)
      static std::map<std::pair<int, int>, ws::Fit> fits;
      static std::map<int, std::pair<int, int>> per_dev;
      std::lock_guard<std::mutex> lock(mu);
      auto known = per_dev.find(dev);
      if (known == per_dev.end()) {
        // The attribute allows the one-per-SM size too, for the occupancy query only (launches
        // ask for kSmem); where that size is refused, the kernel's own, and no spread answer.
        int spread_bytes = ws::one_per_sm_bytes(dev);
        if (spread_bytes <= kSmem) spread_bytes = 0;
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             spread_bytes > 0 ? spread_bytes : kSmem);
        if (e != cudaSuccess && spread_bytes > 0) {
          (void)cudaGetLastError();
          spread_bytes = 0;
          e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
        }
        if (e == cudaSuccess) e = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
        if (e != cudaSuccess) return launch_failed(e);
        int per_sm = 0;  // 0 (unknown) where the query fails: choose_splits then leaves the depth uncapped
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, ws::kThreads, kSmem) != cudaSuccess) {
          (void)cudaGetLastError();
          per_sm = 0;
        }
        known = per_dev.emplace(dev, std::make_pair(per_sm, spread_bytes)).first;
      }
      const int per_sm = known->second.first, spread_bytes = known->second.second;
      cudaError_t err = cudaSuccess;  // the first occupancy query that failed
      splits = ws::choose_splits(row_groups, a.k, per_sm, [&](int s) {
        const auto key = std::make_pair(dev, s);
        auto it = fits.find(key);
        if (it != fits.end()) return it->second;
        // A size that fails is remembered as 0; only if no size works is the launch refused,
        // with the first error.
        ws::Fit f;
        const cudaError_t e = gemv::resident_clusters(kernel, ws::kThreads, kSmem, s, f.resident);
        if (e != cudaSuccess && err == cudaSuccess) err = e;
        if (spread_bytes > 0) (void)gemv::resident_clusters(kernel, ws::kThreads, spread_bytes, s, f.spread);
        fits.emplace(key, f);
        return f;
      });
      if (splits <= 0) return launch_failed(err != cudaSuccess ? err : cudaErrorInvalidConfiguration);
    }

    CUtensorMap tx, tw, ts, tz;
    const uint64_t k = static_cast<uint64_t>(a.k);
    bool ok = ws::make_map(tx, a.x, false, k, a.m, k * 2, 64, 8 * NT, true, false) &&
              ws::make_map(tw, a.w, true, 2 * k, (a.n + 15) / 16, 8 * k, 128, 8, false, true);
    if (ok && kScales) {
      const uint64_t groups = k / a.group_size, pitch = static_cast<uint64_t>(a.scale_pitch()) * 2;
      ok = ws::make_map(ts, a.scales, false, a.n, groups, pitch, ws::kRows, 1, false, false) &&
           (!kZeros || ws::make_map(tz, a.zeros, false, a.n, groups, pitch, ws::kRows, 1, false, false));
    }
    if (!ok) return launch_failed(cudaErrorInvalidValue);
    if (!kScales) ts = tx;
    if (!kZeros) tz = tx;

    ws::Params p{a.scales, a.bias, a.out, a.m, a.n, a.k, kScales ? a.group_size : a.k, splits, a.out_pitch()};
    cudaLaunchAttribute attr[2];
    const cudaLaunchConfig_t cfg = gemv::cluster_config(row_groups * splits, ws::kThreads, kSmem, splits, a.stream, attr);
    const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, tx, tw, ts, tz, p);
    if (err != cudaSuccess) return launch_failed(err);
    return Status::kSuccess;
  }
};

}  // namespace w4a16::skinny

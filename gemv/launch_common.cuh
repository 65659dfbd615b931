// Host-side pieces the launchers of the skinny, skinny80 and tiled kernels share: the argument
// checks every one of them makes (besides its own M limit), and the device's shared memory per
// CTA, queried once per device and process.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "w4a16/gemm_args.h"

namespace w4a16::gemv {

// N a multiple of 8, K of the 64-wide K step, the group a multiple of it dividing K, every
// pointer there and 16-byte aligned (x, scales and zeros arrive by 16-byte copies, the weight
// by bulk copies or 16-byte cp.async), the sizes within the index limit. M is the caller's.
template <bool kScales, bool kZeros, int kStepK>
inline bool inputs_ok(const GemmArgs& a) {
  if (a.n <= 0 || a.k <= 0) return false;
  if (a.n % 8 || a.k % kStepK) return false;
  if (!within_index_limits(a)) return false;
  if (!a.x || !a.w || !a.scales || !a.out) return false;
  if (kZeros && !a.zeros) return false;
  if (kScales && (a.group_size <= 0 || a.k % a.group_size || a.group_size % kStepK)) return false;
  auto misaligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) % 16) != 0; };
  if (misaligned(a.x) || misaligned(a.w) || misaligned(a.out)) return false;
  if (kScales && misaligned(a.scales)) return false;
  if (kZeros && misaligned(a.zeros)) return false;
  return true;
}

// A device's shared memory per CTA (opt-in) and compute capability major; error set where the
// query failed (then nothing is cached, and the next call asks again).
struct DeviceLimits {
  int smem_optin = 0, major = 0;
  cudaError_t error = cudaSuccess;
};

inline DeviceLimits device_limits(int dev) {
  static std::mutex mu;
  static std::unordered_map<int, DeviceLimits> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(dev);
  if (it != known.end()) return it->second;
  DeviceLimits info;
  info.error = cudaDeviceGetAttribute(&info.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (info.error == cudaSuccess) info.error = cudaDeviceGetAttribute(&info.major, cudaDevAttrComputeCapabilityMajor, dev);
  if (info.error == cudaSuccess) {
    known[dev] = info;
  } else {
    cudaGetLastError();  // not left behind for an unrelated call to report
  }
  return info;
}

// A launch of `ctas` CTAs of `threads` along x in clusters of `cluster`, with `smem` bytes of dynamic
// shared memory, on `stream`. The cluster dimension is attr[0] (cfg.attrs points at attr, which must
// outlive cfg); attr[1] is the caller's to fill, with numAttrs raised to 2.
inline cudaLaunchConfig_t cluster_config(int ctas, int threads, int smem, int cluster, cudaStream_t stream,
                                         cudaLaunchAttribute (&attr)[2]) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(ctas, 1, 1);
  cfg.blockDim = dim3(threads, 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = cluster;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cfg;
}

// Clusters of `cluster` CTAs of `kernel` that run at once (cudaOccupancyMaxActiveClusters; clusters
// pack by GPC, so this is not CTAs per SM times SMs). A query that fails answers 0 (that cluster
// size is not an option on this device) and its error is cleared, so that no later call reports
// it; the error is returned.
template <class Kernel>
inline cudaError_t resident_clusters(Kernel kernel, int threads, int smem, int cluster, int& clusters) {
  cudaLaunchAttribute attr[2];
  const cudaLaunchConfig_t cfg = cluster_config(cluster, threads, smem, cluster, nullptr, attr);
  const cudaError_t e = cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    clusters = 0;
  }
  return e;
}

}  // namespace w4a16::gemv

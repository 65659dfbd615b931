// Host-only check of the ws form's K split rule (gemv/skinny_ws_launch.cuh: ws::choose_splits)
// with an H200's occupancy answers as tables, so that it needs no GPU; built and run by
// test_ws_splits.py. Prints one "CASE splits" line per case.
#include <cstdio>

#include "gemv/skinny_ws_launch.cuh"

using namespace w4a16::skinny;

// Clusters of s CTAs resident at once, per CTAs per SM of the kernel (1 = the 128-token tile, 2 =
// 40-64 tokens, 3 = 16-32, 4 = 8), and those that fit with one CTA per SM: the occupancy
// calculator's answers on an H200 (benchmarks/results/ws_h200_s26/slots_*.txt).
static const int kSplits[8] = {1, 2, 3, 4, 6, 8, 12, 16};
static const int kResident[5][8] = {{0},
                                    {132, 66, 39, 30, 17, 15, 7, 7},
                                    {264, 132, 79, 62, 39, 30, 16, 14},
                                    {396, 198, 124, 92, 62, 45, 28, 21},
                                    {528, 264, 163, 124, 79, 62, 37, 28}};

static ws::Fit h200(int per_sm, int s, bool spread_known) {
  for (int i = 0; i < 8; ++i) {
    if (kSplits[i] != s) continue;
    ws::Fit f;
    f.resident = kResident[per_sm][i];
    f.spread = spread_known ? kResident[1][i] : 0;
    return f;
  }
  return ws::Fit{};
}

static int pick(int per_sm, int k, int n, bool spread_known = true) {
  return ws::choose_splits((n + ws::kRows - 1) / ws::kRows, k, per_sm,
                           [&](int s) { return h200(per_sm, s, spread_known); });
}

int main() {
  // The fastest split measured (every split timed: benchmarks/results/ws_h200_s26/, the 64-token
  // cases ws_h200_s24/nt_held1_fp16.txt).
  std::printf("t16_8192x8192 %d\n", pick(3, 8192, 8192));     // 2 (the rule before: 4, 1.22x)
  std::printf("t8_8192x8192 %d\n", pick(4, 8192, 8192));      // 2 (before: 6, 1.13x)
  std::printf("t16_17920x5120 %d\n", pick(3, 17920, 5120));   // 8
  std::printf("t16_14336x4096 %d\n", pick(3, 14336, 4096));   // 6 (before: 8)
  std::printf("t16_4096x28672 %d\n", pick(3, 4096, 28672));   // 1 (before: 3, 1.15x)
  std::printf("t64_3584x8192 %d\n", pick(2, 3584, 8192));     // 2 (before: 3, 1.20x)
  std::printf("t64_14336x5120 %d\n", pick(2, 14336, 5120));   // 4
  std::printf("t8_4864x896 %d\n", pick(4, 4864, 896));        // 16
  // Without the one-per-SM answer the depth is taken as the kernel's CTAs per SM.
  std::printf("nospread %d\n", pick(3, 8192, 8192, false));
  // No split fits (every query failed): 0, and the launcher refuses with the query's error.
  std::printf("none %d\n", ws::choose_splits(64, 8192, 3, [](int) { return ws::Fit{}; }));
  // The CTAs per SM unknown (its query failed): the depth is not capped, and a split is still chosen.
  std::printf("noocc %d\n", ws::choose_splits(64, 8192, 0, [&](int s) { return h200(3, s, true); }));
  // Short K: every CTA keeps at least kMinStages stages (K = 1024: 16 stages, at most 4 splits,
  // where 16 splits of one stage each would cost least).
  std::printf("shortk %d\n", pick(3, 1024, 896));
  return 0;
}

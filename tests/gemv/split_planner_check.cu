// Host-only check of the GEMV's split planner (gemv/launch.cuh: split_cost, choose_splits) with
// the occupancy answers of an H200 given as tables, so that it needs no GPU; built and run by
// test_split_planner.py. Prints one "CASE splits" line per case.
#include <cstdio>
#include <cstring>

#include "gemv/launch.cuh"

using namespace w4a16;

// Clusters of s CTAs resident at once with at most p CTAs per SM, as the occupancy calculator
// answered for the GEMV on an H200 (benchmarks/results/gemv_splits_h200_s20/: p = 2, 3, 4 measured
// with kernels of that occupancy; p = 1 as p = 2 at twice the cluster size).
static const int kCap2[17] = {0, 264, 132, 79, 62, 47, 39, 32, 30, 23, 21, 16, 16, 14, 14, 14, 14};
static const int kCap3[17] = {0, 396, 198, 124, 92, 69, 62, 47, 45, 37, 30, 28, 28, 23, 21, 21, 21};
static const int kCap4[17] = {0, 528, 264, 163, 124, 94, 79, 69, 62, 51, 44, 37, 37, 30, 30, 28, 28};

static int cap(int p, int s) {
  if (p == 1) return s <= 8 ? kCap2[2 * s] : 7;
  return p == 2 ? kCap2[s] : p == 3 ? kCap3[s] : kCap4[s];
}

// per_sm CTAs of the plan fit an SM (what the kernel's registers allow at small M).
static void h200_fit(int per_sm, int s, gemv::SplitFit& f) {
  f.per_sm = per_sm;
  f.clusters = cap(per_sm, s);
  for (int p = 1; p <= gemv::kMaxSharePerSm; ++p) f.cap[p] = p <= per_sm ? cap(p, s) : 0;
}

template <int NT, int RB>
static int choose(int m, int n, int k, int per_sm, bool fail = false) {
  GemmArgs a;
  a.m = m; a.n = n; a.k = k; a.group_size = 128; a.sm_count = 132;
  gemv::Plan plan;
  if (!gemv::make_plan<NT, RB, 4, true, false>(a, 128, 132, plan)) return 0;
  // fail: every query failed (each answer 0), as the launcher's fit leaves them.
  auto fit = [&](int s, int, gemv::SplitFit& f) { if (!fail) h200_fit(per_sm, s, f); };
  if (!gemv::choose_splits<NT, RB, 4, true, false>(a, 128, fit, plan)) return -plan.splits;  // make_plan's, unchanged
  return plan.splits;
}

int main() {
  // m8_r32_s4 (3 CTAs per SM by registers): K x N 8192 x 8192 at M = 2 ran fastest at 7 splits
  // (15.7 us; make_plan's 9: 17.5 us), 20480 x 7168 at 8 (27.3 us; 10: 32.0 us).
  printf("sq8192 %d\n", choose<1, 2>(2, 8192, 8192, 3));
  printf("k20480n7168 %d\n", choose<1, 2>(2, 7168, 20480, 3));
  // 3584 x 152064 (an LM head, 594 row groups: more than one wave at any split count).
  printf("lmhead %d\n", choose<1, 2>(2, 152064, 3584, 3));
  // Every query failed: choose_splits reports it and leaves make_plan's plan (9 splits).
  printf("failed %d\n", choose<1, 2>(2, 8192, 8192, 3, true));
  // M = 16 on K = 28672: x allows no fewer than 15 splits.
  printf("longk %d\n", choose<2, 1>(16, 4096, 28672, 3));
  // split_cost alone: one cluster of 4 on 1 SM each costs (chunks/4 + kCtaCostChunks).
  gemv::SplitFit f;
  f.clusters = 10; f.per_sm = 2; f.cap[1] = 5; f.cap[2] = 10;
  printf("cost_p1 %g\n", gemv::split_cost(64, 4, 4, f));    // 4 <= cap[1]: (16 + 4) * 1.0
  printf("cost_p2 %g\n", gemv::split_cost(64, 8, 4, f));    // cap[2] only: (16 + 4) * 1.4
  printf("cost_waves %g\n", gemv::split_cost(64, 25, 4, f));  // 3 waves at p = 2: 3 * 20 * 1.4
  f.clusters = 0;
  printf("cost_none %g\n", gemv::split_cost(64, 4, 4, f));  // cannot launch: negative
  return 0;
}

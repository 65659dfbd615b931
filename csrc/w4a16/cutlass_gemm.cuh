// One W4A16 GEMM on SM90 built from CUTLASS's mixed-input collective.
//
// The generated kernel files (templates/cutlass_kernels.cu.j2) only name a
// configuration and explicitly instantiate CutlassW4A16<...>; everything the
// configurations share lives here, once.
//
// GEMM orientation: out^T[n, m] = W[n, k] . x^T[k, m]. The 4-bit weight is
// CUTLASS's A operand (row-major, K contiguous, stored in the reordered
// layout below); x is B (K-major, i.e. CUTLASS ColumnMajor); D is
// column-major with leading dimension n, which is exactly out[m, n]
// row-major.
#pragma once

#include <type_traits>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/operations.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/dispatch_policy.hpp"
#include "cutlass/gemm/kernel/gemm_universal.hpp"
#include "cutlass/gemm/kernel/tile_scheduler.hpp"
#include "cutlass/util/packed_stride.hpp"

#include "w4a16/gemm_args.h"

namespace w4a16 {

namespace detail {

using namespace cute;

// The packed weight layout, shared by every kernel (CUTLASS and GEMV).
//
// The weight [n, k] is cut into 16x16 atoms (16 rows, 16 k). Within an atom,
// element (m, k) sits at the nibble offset that puts the 8 values a thread
// of a 16-bit wgmma "A" fragment owns (PTX ISA, wgmma register fragment for
// .f16/.bf16 A: lane = 4*(m%8) + (k%8)/2) into one 32-bit word, in the value
// order [0,2,4,6,1,3,5,7] that lets the int4 -> 16-bit lop3 conversion
// produce two values per instruction:
//   m = m0 + 8*m1,  k = k0 + 2*k1 + 8*k2
//   offset = 32*m0 + 8*k1 + 4*k0 + m1 + 2*k2          (in nibbles, < 256)
// Atoms are laid out K-fastest: atom (r, c) of the [n/16, k/16] grid starts
// at nibble 256*(c + r*k/16), so 16 rows of a weight are one contiguous
// stream of 8*k bytes. The layout does not depend on the tile shape.
// (This equals cutlass::compute_memory_reordering_atom for a 16-bit wgmma
// with a [0,2,4,6,1,3,5,7] value shuffle, tiled K-fastest.)
struct PackedWeightLayout {
  using Atom = Layout<Shape<Shape<_8, _2>, Shape<_2, _4, _2>>,
                      Stride<Stride<_32, _1>, Stride<_4, _8, _2>>>;
  using Order = Step<_2, _1, _3>;  // k-blocks fastest, then row-blocks, then batch
  using Type = decltype(tile_to_shape(Atom{}, make_shape(int{}, int{}, int{}), Order{}));

  static Type make(int n, int k) { return tile_to_shape(Atom{}, make_shape(n, k, 1), Order{}); }
};

template <QuantMode Mode, class Act>
struct MainloopElementA;
template <class Act>
struct MainloopElementA<QuantMode::kPerColumn, Act> {
  // Convert only: the per-output-channel scale is applied in the epilogue.
  using type = cutlass::int4b_t;
};
template <class Act>
struct MainloopElementA<QuantMode::kGroupwise, Act> {
  using type = cute::tuple<cutlass::int4b_t, Act>;
};
template <class Act>
struct MainloopElementA<QuantMode::kGroupwiseZero, Act> {
  using type = cute::tuple<cutlass::int4b_t, Act, Act>;
};

}  // namespace detail

template <class Act, QuantMode Mode, class TileShape, class ClusterShape, class KernelSchedule,
          class EpilogueSchedule, class TileSchedulerTag>
struct CutlassW4A16 {
  using ElementA = cutlass::int4b_t;
  using ElementB = Act;
  using ElementD = Act;
  static constexpr int kAlignA = 128 / cutlass::sizeof_bits<ElementA>::value;
  static constexpr int kAlignB = 128 / cutlass::sizeof_bits<ElementB>::value;
  static constexpr int kAlignD = 128 / cutlass::sizeof_bits<ElementD>::value;

  using WeightLayout = detail::PackedWeightLayout;
  using LayoutB = cutlass::layout::ColumnMajor;
  using LayoutD = cutlass::layout::ColumnMajor;

  // D = alpha_row * acc + bias_row; alpha_row is the per-column scale in
  // per_column mode and the scalar 1 otherwise; a null bias reads as 0.
  using Fusion = cutlass::epilogue::fusion::PerRowLinCombPerRowBiasEltAct<
      cutlass::epilogue::thread::Identity, ElementD, float, Act /*bias*/, Act /*C*/,
      Act /*scalar*/>;

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float,
      void, LayoutD, kAlignD,  // no C operand: no smem and no loads for it
      ElementD, LayoutD, kAlignD, EpilogueSchedule, Fusion>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp,
      typename detail::MainloopElementA<Mode, Act>::type, typename WeightLayout::Type, kAlignA,
      ElementB, LayoutB, kAlignB, float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      KernelSchedule>::CollectiveOp;

  using GemmKernel = cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>,
                                                          CollectiveMainloop, CollectiveEpilogue,
                                                          TileSchedulerTag>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<GemmKernel>;
  using Arguments = typename Gemm::Arguments;

  static constexpr int kStages = CollectiveMainloop::DispatchPolicy::Stages;

  static Arguments make_arguments(const GemmArgs& a) {
    using StrideB = typename GemmKernel::StrideB;
    using StrideD = typename GemmKernel::StrideD;
    auto stride_b = cutlass::make_cute_packed_stride(StrideB{}, cute::make_shape(a.m, a.k, 1));
    auto stride_d = cutlass::make_cute_packed_stride(StrideD{}, cute::make_shape(a.n, a.m, 1));
    cute::get<1>(stride_d) = a.out_pitch();  // a piece of a wider layer keeps the layer's pitch

    typename CollectiveMainloop::Arguments mainloop{};
    mainloop.ptr_A = static_cast<const ElementA*>(a.w);
    mainloop.dA = WeightLayout::make(a.n, a.k);
    mainloop.ptr_B = static_cast<const ElementB*>(a.x);
    mainloop.dB = stride_b;
    if constexpr (Mode != QuantMode::kPerColumn) {
      using StrideS = typename CollectiveMainloop::StrideScale;
      int groups = a.group_size > 0 ? (a.k + a.group_size - 1) / a.group_size : 0;
      mainloop.ptr_S = static_cast<const Act*>(a.scales);
      mainloop.dS = cutlass::make_cute_packed_stride(StrideS{}, cute::make_shape(a.n, groups, 1));
      cute::get<1>(mainloop.dS) = a.scale_pitch();
      mainloop.group_size = a.group_size;
      if constexpr (Mode == QuantMode::kGroupwiseZero) {
        mainloop.ptr_Z = static_cast<const Act*>(a.zeros);
      }
    }

    typename CollectiveEpilogue::Arguments epilogue{};
    epilogue.thread.alpha = Act(1.0f);
    if constexpr (Mode == QuantMode::kPerColumn) {
      epilogue.thread.alpha_ptr = static_cast<const Act*>(a.scales);
    }
    epilogue.thread.bias_ptr = static_cast<const Act*>(a.bias);
    epilogue.ptr_C = nullptr;
    epilogue.dC = stride_d;
    epilogue.ptr_D = static_cast<ElementD*>(a.out);
    epilogue.dD = stride_d;

    cutlass::KernelHardwareInfo hw{};
    hw.sm_count = a.sm_count > 0
                      ? a.sm_count
                      : cutlass::KernelHardwareInfo::query_device_multiprocessor_count();

    Arguments args{cutlass::gemm::GemmUniversalMode::kGemm, {a.n, a.m, a.k, 1}, mainloop, epilogue,
                   hw};
    if constexpr (std::is_same_v<TileSchedulerTag, cutlass::gemm::StreamKScheduler>) {
      // Partial tiles are summed in a fixed order: identical results run to run.
      using ReductionMode = typename GemmKernel::TileScheduler::ReductionMode;
      args.scheduler.reduction_mode = ReductionMode::Deterministic;
    }
    return args;
  }

  static bool shape_ok(const GemmArgs& a) {
    if (a.m <= 0 || a.n <= 0 || a.k <= 0) return false;
    // 16-byte TMA rows of out and scales; whole 64-k tiles; 32-bit offsets
    // (gemm_args.h: the padded weight, not n * k, is what must stay below 2^31).
    // (n need not be a multiple of the 16-row atom: the packed weight is
    // padded to whole atoms and the epilogue writes only n rows.)
    if (a.n % 8 != 0 || a.k % 64 != 0) return false;
    if (!within_index_limits(a)) return false;
    if (Mode == QuantMode::kPerColumn) return true;
    constexpr int cta_k = cute::size<2>(TileShape{});
    return a.group_size > 0 && a.k % a.group_size == 0 &&
           (a.group_size == a.k || a.group_size % cta_k == 0);
  }

  static Status can_implement(const GemmArgs& a) {
    if (!shape_ok(a)) return Status::kCannotImplement;
    if (Gemm::can_implement(make_arguments(a)) != cutlass::Status::kSuccess) {
      return Status::kCannotImplement;
    }
    return Status::kSuccess;
  }

  static size_t workspace_size(const GemmArgs& a) {
    if (!shape_ok(a)) return 0;
    return Gemm::get_workspace_size(make_arguments(a));
  }

  static Status run(const GemmArgs& a) {
    if (!shape_ok(a)) return Status::kCannotImplement;
    Arguments args = make_arguments(a);
    if (Gemm::can_implement(args) != cutlass::Status::kSuccess) return Status::kCannotImplement;
    if (Gemm::get_workspace_size(args) > a.workspace_bytes) return Status::kWorkspaceTooSmall;
    Gemm gemm;
    if (gemm.initialize(args, a.workspace, a.stream) != cutlass::Status::kSuccess) {
      return launch_failed(cudaSuccess);  // e.g. the shared-memory attribute was refused
    }
    if (gemm.run(a.stream) != cutlass::Status::kSuccess) return launch_failed(cudaSuccess);
    return Status::kSuccess;
  }
};

}  // namespace w4a16

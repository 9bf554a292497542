// Return-estimator kernels, compiled once per SIMD level (returns_per_isa.cpp) and picked at run
// time like the Bellman row kernels. Each call handles the columns [b0, b1) of a [T, B] rollout;
// the inner loops run across the contiguous columns, so they vectorise.
#pragma once
#include <cstdint>

#include "rl/returns.h"

namespace nimbleops {
namespace rl {

template <class T>
struct ReturnsKernels {
  // false when a reward of these columns is nan or inf (the outputs are then meaningless)
  bool (*forward)(Estimator kind, const ReturnsArgs<T>& args, int64_t b0, int64_t b1);
  // grad_rewards / grad_values / grad_next_values (those non-null) are overwritten
  void (*backward)(Estimator kind, const ReturnsArgs<T>& args, int64_t b0, int64_t b1);
};

template <class T>
const ReturnsKernels<T>& returns_kernels();

}  // namespace rl
}  // namespace nimbleops

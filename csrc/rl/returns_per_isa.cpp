// Compiled once per SIMD level (see CMakeLists.txt) into its own namespace; no std:: templates.
// The per-element math is rl/returns.h (internal linkage); here are the loops: forward scans run
// backwards in time, reading the next step's result from the output itself; adjoint scans run
// forwards in time with a per-column carry. The inner loops run across contiguous columns.
#include <cmath>
#include <cstdint>

#include "core/isa_unit.h"
#include "rl/returns_per_isa.h"


namespace nimbleops {
namespace rl {
namespace NIMBLEOPS_ISA_NS {
namespace {

constexpr int64_t kBlock = 256;  // columns per carry block of the adjoint scans

// The inner loops over columns carry `#pragma GCC ivdep`: columns are independent and the
// outputs never overlap the inputs (the callers allocate them), which the compiler cannot
// prove through the argument block.

// 1 where a reward of row t, columns [b0, b1), is nan or inf (r - r is 0 exactly when r is
// finite), checked right after the row's step while it is in L1: no separate pass over rewards
template <class T>
inline int nonfinite_rewards(const ReturnsArgs<T>& a, int64_t t, int64_t b0, int64_t b1) {
  const T* r = a.rewards + t * a.cols;
  int bad = 0;
  for (int64_t b = b0; b < b1; ++b) bad |= int(r[b] - r[b] != T(0));
  return bad;
}

template <Estimator estimator, bool kGA, class T>
bool forward_columns(const ReturnsArgs<T>& a, int64_t b0, int64_t b1) {
  const int64_t B = a.cols;
  int bad = 0;
  if constexpr (estimator == Estimator::n_step) {
    for (int64_t t = 0; t < a.steps; ++t) {
      #pragma GCC ivdep
      for (int64_t b = b0; b < b1; ++b) n_step_at<kGA>(a, t, b, false);
      bad |= nonfinite_rewards(a, t, b0, b1);
    }
    return bad == 0;
  }
  if (a.steps == 0) return true;
  const int64_t last = a.steps - 1;
  #pragma GCC ivdep
  for (int64_t b = b0; b < b1; ++b) forward_step<estimator, kGA>(a, last * B + b, true, T(0));
  bad |= nonfinite_rewards(a, last, b0, b1);
  for (int64_t t = last - 1; t >= 0; --t) {
    const T* next = a.out0 + (t + 1) * B;
    #pragma GCC ivdep
    for (int64_t b = b0; b < b1; ++b) forward_step<estimator, kGA>(a, t * B + b, false, next[b]);
    bad |= nonfinite_rewards(a, t, b0, b1);
  }
  if constexpr (estimator != Estimator::vtrace) return bad == 0;
  for (int64_t t = 0; t < last; ++t)
    #pragma GCC ivdep
    for (int64_t b = b0; b < b1; ++b)
      vtrace_pg_step<kGA>(a, t * B + b, false, a.out0[(t + 1) * B + b], a.values[(t + 1) * B + b]);
  #pragma GCC ivdep
  for (int64_t b = b0; b < b1; ++b) vtrace_pg_step<kGA>(a, last * B + b, true, T(0), T(0));
  for (int64_t t = 0; t < a.steps; ++t)
    #pragma GCC ivdep
    for (int64_t b = b0; b < b1; ++b) a.out0[t * B + b] += a.values[t * B + b];
  return bad == 0;
}

template <Estimator estimator, bool kGA, class T>
void backward_columns(const ReturnsArgs<T>& a, int64_t b0, int64_t b1) {
  const int64_t B = a.cols;
  if constexpr (estimator == Estimator::n_step) {
    for (int64_t t = 0; t < a.steps; ++t)
      #pragma GCC ivdep
      for (int64_t b = b0; b < b1; ++b) {
        a.grad_rewards[t * B + b] = T(0);
        a.grad_next_values[t * B + b] = T(0);
      }
    for (int64_t t = 0; t < a.steps; ++t)
      #pragma GCC ivdep
      for (int64_t b = b0; b < b1; ++b) n_step_at<kGA>(a, t, b, true);
    return;
  }
  for (int64_t c0 = b0; c0 < b1; c0 += kBlock) {
    const int64_t c1 = c0 + kBlock < b1 ? c0 + kBlock : b1;
    T carry[kBlock], pg_carry[kBlock];
    for (int64_t k = 0; k < kBlock; ++k) carry[k] = pg_carry[k] = T(0);
    for (int64_t t = 0; t < a.steps; ++t) {
      const bool last = t == a.steps - 1;
      #pragma GCC ivdep
      for (int64_t b = c0; b < c1; ++b) backward_step<estimator, kGA>(a, t * B + b, last, carry[b - c0], pg_carry[b - c0]);
    }
  }
}

template <class T>
bool forward(Estimator estimator, const ReturnsArgs<T>& a, int64_t b0, int64_t b1) {
  bool finite = true;
  with_estimator(estimator, a, [&](auto k, auto ga) {
    finite = forward_columns<decltype(k)::value, decltype(ga)::value>(a, b0, b1);
  });
  return finite;
}

template <class T>
void backward(Estimator estimator, const ReturnsArgs<T>& a, int64_t b0, int64_t b1) {
  with_estimator(estimator, a, [&](auto k, auto ga) { backward_columns<decltype(k)::value, decltype(ga)::value>(a, b0, b1); });
}

}  // namespace

extern const ReturnsKernels<float> returns_f32;
extern const ReturnsKernels<double> returns_f64;
const ReturnsKernels<float> returns_f32 = {&forward<float>, &backward<float>};
const ReturnsKernels<double> returns_f64 = {&forward<double>, &backward<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace rl
}  // namespace nimbleops

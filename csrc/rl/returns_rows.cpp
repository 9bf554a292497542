// Compiled once per SIMD level (see CMakeLists.txt) into its own namespace; no std:: templates.
// The per-element math is rl/returns.h (internal linkage); here are the loops: forward scans run
// backwards in time, reading the next step's result from the output itself; adjoint scans run
// forwards in time with a per-column carry. The inner loops run across contiguous columns.
#include <cmath>
#include <cstdint>

#include "rl/returns_rows.h"

#ifndef NIMBLEOPS_ISA
#error "NIMBLEOPS_ISA must name the SIMD level this unit is compiled for"
#endif
#define NIMBLEOPS_CAT2(a, b) a##b
#define NIMBLEOPS_CAT(a, b) NIMBLEOPS_CAT2(a, b)
#define NIMBLEOPS_ISA_NS NIMBLEOPS_CAT(isa_, NIMBLEOPS_ISA)

namespace nimbleops {
namespace rl {
namespace NIMBLEOPS_ISA_NS {
namespace {

constexpr int64_t kBlock = 256;  // columns per carry block of the adjoint scans

template <class T>
void forward(Estimator kind, const ReturnsArgs<T>& a, int64_t b0, int64_t b1) {
  const int64_t B = a.cols;
  if (kind == Estimator::n_step) {
    for (int64_t t = 0; t < a.steps; ++t)
      for (int64_t b = b0; b < b1; ++b) n_step_at(a, t, b, false);
    return;
  }
  for (int64_t t = a.steps - 1; t >= 0; --t) {
    const bool last = t == a.steps - 1;
    const T* next = a.out0 + (last ? t : t + 1) * B;  // not used at the last step
    for (int64_t b = b0; b < b1; ++b) forward_step(kind, a, t * B + b, last, next[b]);
  }
  if (kind != Estimator::vtrace) return;
  for (int64_t t = 0; t < a.steps; ++t) {
    const bool last = t == a.steps - 1;
    const int64_t tn = last ? t : t + 1;
    for (int64_t b = b0; b < b1; ++b) vtrace_pg_step(a, t * B + b, last, a.out0[tn * B + b], a.values[tn * B + b]);
  }
  for (int64_t t = 0; t < a.steps; ++t)
    for (int64_t b = b0; b < b1; ++b) a.out0[t * B + b] += a.values[t * B + b];
}

template <class T>
void backward(Estimator kind, const ReturnsArgs<T>& a, int64_t b0, int64_t b1) {
  const int64_t B = a.cols;
  if (kind == Estimator::n_step) {
    for (int64_t t = 0; t < a.steps; ++t)
      for (int64_t b = b0; b < b1; ++b) {
        a.grad_rewards[t * B + b] = T(0);
        a.grad_next_values[t * B + b] = T(0);
      }
    for (int64_t t = 0; t < a.steps; ++t)
      for (int64_t b = b0; b < b1; ++b) n_step_at(a, t, b, true);
    return;
  }
  for (int64_t c0 = b0; c0 < b1; c0 += kBlock) {
    const int64_t c1 = c0 + kBlock < b1 ? c0 + kBlock : b1;
    T carry[kBlock], pg_carry[kBlock];
    for (int64_t k = 0; k < kBlock; ++k) carry[k] = pg_carry[k] = T(0);
    for (int64_t t = 0; t < a.steps; ++t) {
      const bool last = t == a.steps - 1;
      for (int64_t b = c0; b < c1; ++b) backward_step(kind, a, t * B + b, last, carry[b - c0], pg_carry[b - c0]);
    }
  }
}

}  // namespace

extern const ReturnsKernels<float> returns_f32;
extern const ReturnsKernels<double> returns_f64;
const ReturnsKernels<float> returns_f32 = {&forward<float>, &backward<float>};
const ReturnsKernels<double> returns_f64 = {&forward<double>, &backward<double>};

}  // namespace NIMBLEOPS_ISA_NS
}  // namespace rl
}  // namespace nimbleops

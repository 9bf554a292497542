// Compiled once per SIMD level with that level's flags (see CMakeLists.txt), into its own
// namespace, so no inline function built for a wider ISA can leak into another level.
// Keep this file free of std:: templates for the same reason.
#include <cstdint>

#include "core/simd.h"
#include "rl/bellman_rows.h"

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

template <class T> struct Lanes;
template <> struct Lanes<float> { static constexpr int value = 32; };
template <> struct Lanes<double> { static constexpr int value = 16; };

template <class T>
inline T dot_fixed(const T* __restrict p, const T* __restrict v, int64_t n) {
  constexpr int L = Lanes<T>::value;
  T acc[L];
  for (int j = 0; j < L; ++j) acc[j] = T(0);
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) acc[j] += p[i + j] * v[i + j];
  T tail = T(0);
  for (; i < n; ++i) tail += p[i] * v[i];
  for (int w = L / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0] + tail;
}

template <class T>
void q_state(const T* P_s, const T* R_s, const T* V, T gamma, int64_t S_next, int64_t A, T* q) {
  for (int64_t a = 0; a < A; ++a) q[a] = R_s[a] + gamma * dot_fixed<T>(P_s + a * S_next, V, S_next);
}

template <class T>
T dot(const T* p, const T* v, int64_t n) {
  return dot_fixed<T>(p, v, n);
}

}  // namespace

extern const DenseRowKernels<float> dense_rows_f32;
extern const DenseRowKernels<double> dense_rows_f64;
const DenseRowKernels<float> dense_rows_f32 = {&q_state<float>, &dot<float>};
const DenseRowKernels<double> dense_rows_f64 = {&q_state<double>, &dot<double>};

}  // namespace NIMBLEOPS_ISA_NS

}  // namespace rl
}  // namespace nimbleops

// Dense row kernels, compiled once per SIMD level (bellman_rows.cpp) and picked at run time.
// dense_q_state computes q(s, a) for all A actions of one state from P_s [A, S'] and R_s [A].
// The dot product uses a fixed lane layout (32 float / 16 double partial sums, combined by a
// fixed tree), so every SIMD level returns the same bits.
#pragma once
#include <cstdint>

namespace nimbleops {
namespace rl {

template <class T>
struct DenseRowKernels {
  // q[a] = R_s[a] + gamma * dot(P_s[a, :], V) for a in [0, A)
  void (*q_state)(const T* P_s, const T* R_s, const T* V, T gamma, int64_t S_next, int64_t A, T* q);
  // dot(p, v) over n elements
  T (*dot)(const T* p, const T* v, int64_t n);
};

// The table for the active SIMD level (core/simd.h).
template <class T>
const DenseRowKernels<T>& dense_row_kernels();

}  // namespace rl
}  // namespace nimbleops

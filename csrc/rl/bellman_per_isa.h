// Dense row kernels, compiled once per SIMD level (bellman_per_isa.cpp) and picked at run time.
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
  // One MDP's optimality sweep over states [s0, s1): P [S, A, S], R [S, A], V [S] -> V_out [S],
  // policy [S] (nullable); *dmax / *dmin (in: running values) take max / min of V_out - V.
  void (*optimality_range)(const T* P, const T* R, const T* V, T gamma, int64_t S, int64_t A, int64_t s0, int64_t s1,
                           T* V_out, int64_t* policy, T* dmax, T* dmin);
  // optimality_range with the probability check of each row it reads (values in [0, 1], sum at
  // most max_sum) in the same pass: whether all passed. A false is confirmed by probability_rows,
  // which names the rows; it passes a range whose only "defect" is a -0, which the fast test
  // counts as outside.
  bool (*optimality_range_checked)(const T* P, const T* R, const T* V, T gamma, int64_t S, int64_t A, int64_t s0,
                                   int64_t s1, T* V_out, int64_t* policy, T* dmax, T* dmin, double max_sum);
  // The same for a deterministic policy [S] (actions in range): V_out[s] = q(s, policy[s]).
  void (*expectation_range)(const T* P, const T* R, const T* V, T gamma, int64_t S, int64_t A, int64_t s0,
                            int64_t s1, const int64_t* policy, T* V_out, T* dmax, T* dmin);
  // Whether any of x[0..n) is nan or +-inf (the reward check's fast path).
  bool (*any_non_finite)(const T* x, int64_t n);
  // Rows [r0, r1) of n probabilities: the first row with a value outside [0, 1] (nan included)
  // and the first whose sum exceeds max_sum (and that sum); r1 where none.
  void (*probability_rows)(const T* p, int64_t n, int64_t r0, int64_t r1, double max_sum, int64_t* bad_value,
                           int64_t* bad_sum, double* worst_sum);
  // How many of p[0..n) lie outside [0, hi) (index checks).
  int64_t (*count_out_of_range)(const int64_t* p, int64_t n, int64_t hi);
};

// The table for the active SIMD level (core/simd.h).
template <class T>
const DenseRowKernels<T>& dense_row_kernels();

}  // namespace rl
}  // namespace nimbleops

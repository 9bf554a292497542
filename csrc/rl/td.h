// The per-transition math of the tabular TD updates (rl/td_api.h), shared by the CPU and CUDA
// kernels: one batch of transitions for the rule R (a template parameter: no per-transition
// dispatch).
#pragma once
#include <cstdint>

#include "core/check.h"
#include "rl/td_api.h"

#include "core/hd.h"

namespace nimbleops {
namespace rl {

// max of row[0..A): four independent chains (max is exact, so the order cannot change the result)
template <class T>
NIMBLEOPS_HD T row_max(const T* row, int64_t A) {
  T m[4] = {row[0], row[0], row[0], row[0]};
  int64_t k = 1;
  for (; k + 4 <= A; k += 4)
    for (int j = 0; j < 4; ++j) m[j] = row[k + j] > m[j] ? row[k + j] : m[j];
  for (; k < A; ++k) m[0] = row[k] > m[0] ? row[k] : m[0];
  const T a = m[0] > m[1] ? m[0] : m[1], b = m[2] > m[3] ? m[2] : m[3];
  return a > b ? a : b;
}

// The row max of Td's bootstraps: the scalar chains above (CUDA and the default); the CPU kernel
// passes its own, vectorised one (rl/td_cpu.cpp).
struct ScalarRowMax {
  template <class T>
  NIMBLEOPS_HD static T max(const T* row, int64_t A) {
    return row_max(row, A);
  }
};

template <TdRule R>
struct RuleTag {
  static constexpr TdRule value = R;
};

// One batch of transitions for the rule R (a template parameter: no per-transition dispatch);
// RowMax::max(row, A) is the max of a row.
template <class T, TdRule R, class RowMax = ScalarRowMax>
struct Td {
  int64_t S, A, N;
  T* Q1;
  T* Q2;
  const int64_t *s, *sn, *a, *an;
  const T* r;
  const uint8_t* term;
  const T *alpha, *gamma, *probs;
  const uint8_t* first;
  T alpha_scalar, gamma_scalar, epsilon;

  NIMBLEOPS_HD T alpha_at(int64_t i) const { return alpha ? alpha[i] : alpha_scalar; }
  NIMBLEOPS_HD T gamma_at(int64_t i) const { return gamma ? gamma[i] : gamma_scalar; }
  // the table transition i updates, and the other one (double Q)
  NIMBLEOPS_HD T* table(int64_t i) const { return (R == TdRule::double_q && !first[i]) ? Q2 : Q1; }
  NIMBLEOPS_HD const T* other(int64_t i) const { return (R == TdRule::double_q && !first[i]) ? Q1 : Q2; }

  // the bootstrap value of transition i from the tables as they are now
  NIMBLEOPS_HD T boot(int64_t i) const {
    const T* X = table(i);
    const T* row = X + sn[i] * A;
    switch (R) {
      case TdRule::td0: return row[0];
      case TdRule::sarsa: return row[an[i]];
      case TdRule::q_learning:
        return RowMax::max(row, A);
      case TdRule::expected_sarsa: {
        T sum = T(0);
        if (probs) {
          const T* p = probs + i * A;
          for (int64_t k = 0; k < A; ++k) sum += p[k] * row[k];
          return sum;
        }
        for (int64_t k = 0; k < A; ++k) sum += row[k];
        return (T(1) - epsilon) * RowMax::max(row, A) + epsilon * (sum / T(A));
      }
      case TdRule::double_q: {
        int64_t best = 0;
        for (int64_t k = 1; k < A; ++k)
          if (row[k] > row[best]) best = k;
        return other(i)[sn[i] * A + best];
      }
    }
    return T(0);
  }

  NIMBLEOPS_HD int64_t action(int64_t i) const { return R == TdRule::td0 ? 0 : a[i]; }
  // the cell transition i updates: X[s, a]
  NIMBLEOPS_HD T& cell(int64_t i) const { return table(i)[s[i] * A + action(i)]; }

  NIMBLEOPS_HD T delta(int64_t i) const {
    const T target = r[i] + gamma_at(i) * (T(1) - T(term[i])) * boot(i);
    return target - cell(i);
  }
};


// run(RuleTag<R>{}) for the rule of the call (the rule becomes a template parameter)
template <class F>
void with_rule(TdRule rule, F&& run) {
  switch (rule) {
    case TdRule::td0: return run(RuleTag<TdRule::td0>{});
    case TdRule::sarsa: return run(RuleTag<TdRule::sarsa>{});
    case TdRule::q_learning: return run(RuleTag<TdRule::q_learning>{});
    case TdRule::expected_sarsa: return run(RuleTag<TdRule::expected_sarsa>{});
    case TdRule::double_q: return run(RuleTag<TdRule::double_q>{});
  }
}

// Shapes, dtypes and devices of one call, every array on Q's device; returns N. Index ranges and
// finite rewards are checked by the caller (the CPU kernel itself; for CUDA the Python wrapper,
// on the host).
inline int64_t validate_td(const TdViews& v, const View& td_errors) {
  NIMBLEOPS_CHECK(v.Q.ndim() == 2, "internal: Q must arrive as [S, A]");
  check_contiguous(v.Q, "Q");
  const int dev = v.Q.device;
  const int64_t S = v.Q.shape[0], A = v.Q.shape[1], N = v.s.numel();
  NIMBLEOPS_CHECK(S >= 1 && A >= 1, "Q: expected a non-empty table, got shape ", shape_str(v.Q));
  const DType dt = v.Q.dtype;
  check_device_array(v.s, DType::int64, N, "s", dev);
  check_device_array(v.s_next, DType::int64, N, "s_next", dev);
  if (v.rule != TdRule::td0) {
    NIMBLEOPS_CHECK(v.a.has_value(), "a: required");
    check_device_array(*v.a, DType::int64, N, "a", dev);
  }
  if (v.rule == TdRule::sarsa) {
    NIMBLEOPS_CHECK(v.a_next.has_value(), "a_next: required by sarsa");
    check_device_array(*v.a_next, DType::int64, N, "a_next", dev);
  }
  check_device_array(v.rewards, dt, N, "r", dev);
  check_device_array(v.terminated, DType::boolean, N, "terminated", dev);
  check_device_array(td_errors, dt, N, "td_errors", dev);
  if (v.alpha) check_device_array(*v.alpha, dt, N, "alpha", dev);
  if (v.gamma) check_device_array(*v.gamma, dt, N, "gamma", dev);
  if (v.probs) check_device_array(*v.probs, dt, N * A, "probs", dev);
  if (v.rule == TdRule::double_q) {
    NIMBLEOPS_CHECK(v.Q2 && v.update_first, "Q2, update_first: required by double Q-learning");
    check_contiguous(*v.Q2, "Q2");
    check_dtype(*v.Q2, dt, "Q2");
    NIMBLEOPS_CHECK(v.Q2->shape == v.Q.shape, "Q2: expected the shape of Q1 ", shape_str(v.Q), ", got ",
                    shape_str(*v.Q2));
    check_device_array(*v.Q2, dt, S * A, "Q2", dev);
    NIMBLEOPS_CHECK(v.Q2->data != v.Q.data, "Q2: must be another table than Q1");
    check_device_array(*v.update_first, DType::boolean, N, "update_first", dev);
  }
  return N;
}

// The kernel's view of a validated call
template <class T, TdRule R, class RowMax = ScalarRowMax>
Td<T, R, RowMax> td_args(const TdViews& v) {
  return Td<T, R, RowMax>{v.Q.shape[0], v.Q.shape[1], v.s.numel(), v.Q.ptr<T>(), v.Q2 ? v.Q2->ptr<T>() : nullptr,
                          v.s.ptr<int64_t>(), v.s_next.ptr<int64_t>(), v.a ? v.a->ptr<int64_t>() : nullptr,
                          v.a_next ? v.a_next->ptr<int64_t>() : nullptr, v.rewards.ptr<T>(),
                          v.terminated.ptr<uint8_t>(), v.alpha ? v.alpha->ptr<T>() : nullptr,
                          v.gamma ? v.gamma->ptr<T>() : nullptr, v.probs ? v.probs->ptr<T>() : nullptr,
                          v.update_first ? v.update_first->ptr<uint8_t>() : nullptr, T(v.alpha_scalar),
                          T(v.gamma_scalar), T(v.epsilon)};
}

}  // namespace rl
}  // namespace nimbleops

// The per-transition math of the tabular TD updates (rl/td_api.h), shared by the CPU and CUDA
// kernels: one batch of transitions for the rule R (a template parameter: no per-transition
// dispatch).
#pragma once
#include <cstdint>

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

template <TdRule R>
struct RuleTag {
  static constexpr TdRule value = R;
};

// One batch of transitions for the rule R (a template parameter: no per-transition dispatch).
template <class T, TdRule R>
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
        return row_max(row, A);
      case TdRule::expected_sarsa: {
        T sum = T(0);
        if (probs) {
          const T* p = probs + i * A;
          for (int64_t k = 0; k < A; ++k) sum += p[k] * row[k];
          return sum;
        }
        for (int64_t k = 0; k < A; ++k) sum += row[k];
        return (T(1) - epsilon) * row_max(row, A) + epsilon * (sum / T(A));
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

  NIMBLEOPS_HD T delta(int64_t i) const {
    const T target = r[i] + gamma_at(i) * (T(1) - T(term[i])) * boot(i);
    return target - table(i)[s[i] * A + action(i)];
  }
};


}  // namespace rl
}  // namespace nimbleops

// CPU tabular TD updates (rl/td_api.h). Accumulate mode: the TD errors in parallel over
// transitions (the tables are only read), then the increments in transition order, so every
// cell sums them in that order (deterministic, bit-equal to numpy.add.at). Sequential mode is the online algorithm: a chain of dependencies, run in order
// on one thread.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "rl/bellman_api.h"  // all_finite, check_index_range
#include "rl/td.h"
#include "rl/td_api.h"

namespace nimbleops {
namespace rl {
namespace cpu {

namespace {

template <class T>
struct Vec16 {  // 16 bytes of T as one GCC vector
  typedef T type __attribute__((vector_size(16)));
};
// The row max of the bootstraps in 16-byte vectors (the baseline ISA's width; exact, so the lanes'
// order cannot change the result), the last vector overlapping the one before where A is not a
// multiple of its lanes. Rows shorter than one vector: the scalar chains.
struct VectorRowMax {
  template <class T>
  static T max(const T* row, int64_t A) {
    constexpr int L = 16 / sizeof(T);
    using V = typename Vec16<T>::type;
    if (A < L) return row_max(row, A);
    auto load = [row](int64_t k) {
      V x;
      std::memcpy(&x, row + k, sizeof(V));
      return x;
    };
    V m = load(0);
    int64_t k = L;
    for (; k + L <= A; k += L) {
      const V x = load(k);
      m = x > m ? x : m;
    }
    if (k < A) {
      const V x = load(A - L);
      m = x > m ? x : m;
    }
    T best = m[0];
    for (int j = 1; j < L; ++j) best = m[j] > best ? m[j] : best;
    return best;
  }
};

// One pass over transitions [i0, i1): the TD errors into out and, with Apply, each increment at
// once (sequential mode). td is taken by value so that its fields live in registers (captured
// by reference, GCC reloaded them from memory in every iteration). The rows are random: they are
// fetched early. A row need not start on a cache line (numpy's large arrays start 16 bytes past
// one), so both ends of the bootstrap row are fetched, and the updated cell itself: fetching only
// the row starts left half the rows' second lines to demand misses (about 2x slower on a
// 100,000 x 8 float32 table, in a standalone test). (always_inline: GCC 12 deems a lambda
// holding only prefetches free of side effects and deletes its calls before inlining them.)
template <bool Apply, class T, TdRule R, class M>
void td_pass(const Td<T, R, M> td, T* out, int64_t i0, int64_t i1) {
  const int64_t A = td.A;
  constexpr int64_t ahead = 16;
  auto prefetch = [&](int64_t i) __attribute__((always_inline)) {
    const T* next_row = td.table(i) + td.sn[i] * A;
    __builtin_prefetch(next_row);
    __builtin_prefetch(next_row + (A - 1));
    __builtin_prefetch(&td.cell(i));
  };
  for (int64_t i = i0; i < i1; ++i) {
    if (i + ahead < i1) prefetch(i + ahead);
    const T d = td.delta(i);
    out[i] = d;
    if (Apply) td.cell(i) += td.alpha_at(i) * d;
  }
}

// The increments of the TD errors delta, in transition order: every cell sums them in that order.
// The cells are random too (and, after a parallel TD pass, partly in the other cores' caches):
// fetched for writing some transitions ahead.
template <class T, TdRule R, class M>
void apply_increments(const Td<T, R, M> td, const T* delta) {
  constexpr int64_t ahead = 16;
  for (int64_t i = 0; i < td.N; ++i) {
    if (i + ahead < td.N) __builtin_prefetch(&td.cell(i + ahead), 1);
    td.cell(i) += td.alpha_at(i) * delta[i];
  }
}

}  // namespace

void td_update(const TdViews& v, const View& td_errors) {
  NIMBLEOPS_CHECK(v.Q.device < 0, "Q: the tabular TD updates run on the CPU; got a CUDA tensor");
  const int64_t N = validate_td(v, td_errors);
  const int64_t S = v.Q.shape[0], A = v.Q.shape[1];
  const DType dt = v.Q.dtype;
  check_index_range(v.s, S, "s", N);
  check_index_range(v.s_next, S, "s_next", N);
  if (v.rule != TdRule::td0) check_index_range(*v.a, A, "a", N);
  if (v.rule == TdRule::sarsa) check_index_range(*v.a_next, A, "a_next", N);
  NIMBLEOPS_DISPATCH_FLOATING(dt, "Q", [&] {
    using T = scalar_t;
    const T* r = v.rewards.ptr<T>();
    if (!all_finite(v.rewards))
      for (int64_t i = 0; i < N; ++i)
        NIMBLEOPS_CHECK(std::isfinite(r[i]), "r: expected finite rewards, found ", r[i], " at position ", i);
    auto run = [&](auto rule) {
      constexpr TdRule R = decltype(rule)::value;
      const auto td = td_args<T, R, VectorRowMax>(v);
      T* out = td_errors.ptr<T>();
      if (v.sequential) return td_pass<true>(td, out, 0, N);
      parallel_for(N, 4096, [&](int64_t i0, int64_t i1) { td_pass<false>(td, out, i0, i1); });
      // One pass, serial: a parallel version needs a stable counting sort of the transitions by
      // row first, a pass as long as the additions it would split.
      apply_increments(td, out);
    };
    with_rule(v.rule, run);
  });
}

}  // namespace cpu
}  // namespace rl
}  // namespace nimbleops

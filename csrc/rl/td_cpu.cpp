// CPU tabular TD updates (rl/td_api.h). Accumulate mode: the TD errors in parallel over
// transitions (the tables are only read), then the increments in transition order, so every
// cell sums them in that order (deterministic, bit-equal to numpy.add.at). Sequential mode is the online algorithm: a chain of dependencies, run in order
// on one thread.
#include <algorithm>
#include <cmath>
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
      const Td<T, R> td = td_args<T, R>(v);
      T* out = td_errors.ptr<T>();
      // The rows are random: fetch them early. A row need not start on a cache line (numpy's
      // large arrays start 16 bytes past one), so both ends of the bootstrap row are fetched, and
      // the updated cell itself: fetching only the row starts left half the rows' second lines
      // to demand misses (about 2x slower on a 100,000 x 8 float32 table, in a standalone test).
      // (always_inline: GCC 12 deems a lambda holding only prefetches free of side effects and
      // deletes its calls before inlining them.)
      constexpr int64_t ahead = 16;
      auto prefetch = [&](int64_t i) __attribute__((always_inline)) {
        const T* next_row = td.Q1 + td.sn[i] * A;
        __builtin_prefetch(next_row);
        __builtin_prefetch(next_row + (A - 1));
        __builtin_prefetch(td.Q1 + td.s[i] * A + td.action(i));
      };
      if (v.sequential) {
        for (int64_t i = 0; i < N; ++i) {
          if (i + ahead < N) prefetch(i + ahead);
          const T d = td.delta(i);
          out[i] = d;
          td.table(i)[td.s[i] * A + td.action(i)] += td.alpha_at(i) * d;
        }
        return;
      }
      parallel_for(N, 4096, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          if (i + ahead < i1) prefetch(i + ahead);
          out[i] = td.delta(i);
        }
      });
      // The increments, in transition order: every cell sums them in that order. One pass: a
      // parallel version (rows split among threads by a stable counting sort of the transitions)
      // measured slower on this 2-core machine.
      for (int64_t i = 0; i < N; ++i) td.table(i)[td.s[i] * A + td.action(i)] += td.alpha_at(i) * out[i];
    };
    with_rule(v.rule, run);
  });
}

}  // namespace cpu
}  // namespace rl
}  // namespace nimbleops

// CPU Bellman kernels: OpenMP over states (or over MDPs for Gauss-Seidel), SIMD dense rows from
// bellman_per_isa.cpp. Each state's value is computed by one thread in a fixed order, and the
// per-MDP reductions are max/min/count, so results are identical for any thread count.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <type_traits>
#include <vector>

#include "core/dispatch.h"
#include "core/parallel.h"
#include "core/simd.h"
#include "rl/bellman_entry.h"
#include "rl/bellman_per_isa.h"

namespace nimbleops {
namespace rl {

NIMBLEOPS_ISA_KERNEL_TABLES(DenseRowKernels, dense_row_kernels, dense_rows)

namespace cpu {
namespace {

// Row access for the two models, with the same interface.
template <class T>
struct DenseRows {
  DenseMdp<T> m;
  const DenseRowKernels<T>& k = dense_row_kernels<T>();
  int64_t cost_per_state() const { return m.A * m.S; }
  void q_state(int64_t b, int64_t s, const T* Vb, T gamma, T* q) const {
    k.q_state(m.row(b, s, 0), m.R + (b * m.S + s) * m.A, Vb, gamma, m.S, m.A, q);
  }
  T q_action(int64_t b, int64_t s, int64_t a, const T* Vb, T gamma) const {
    return q_from(m.reward(b, s, a), gamma, k.dot(m.row(b, s, a), Vb, m.S));
  }
};

template <class T, class I>
struct SparseRows {
  SparseMdp<T, I> m;
  int64_t cost_per_state() const {
    const int64_t rows = m.S * m.A;
    return std::max<int64_t>(m.A, m.A * (m.indptr[rows] / std::max<int64_t>(rows, 1)));
  }
  void q_state(int64_t b, int64_t s, const T* Vb, T gamma, T* q) const {
    for (int64_t a = 0; a < m.A; ++a) q[a] = q_from(m.reward(b, s, a), gamma, m.row_dot(s, a, Vb));
  }
  T q_action(int64_t b, int64_t s, int64_t a, const T* Vb, T gamma) const {
    return q_from(m.reward(b, s, a), gamma, m.row_dot(s, a, Vb));
  }
};

template <class T>
DenseRows<T> rows_for(DenseMdp<T> m) {
  return DenseRows<T>{m};
}
template <class T, class I>
SparseRows<T, I> rows_for(SparseMdp<T, I> m) {
  return SparseRows<T, I>{m};
}

// The index type of a sparse model's rows (void for dense ones).
template <class Rows>
struct SparseIndex {
  using type = void;
};
template <class T, class I>
struct SparseIndex<SparseRows<T, I>> {
  using type = I;
};

template <class T>
struct StateResult {
  T d;           // enters the per-MDP max and min
  int64_t flag;  // enters the per-MDP count
};

// max and lowest maximising index, without branches (the winner is data-dependent and
// unpredictable, so a branch would mispredict about half the time)
template <class T>
inline void argmax_lowest(const T* q, int64_t A, T& best, int64_t& arg) {
  T b = q[0];
  int64_t i = 0;
  for (int64_t a = 1; a < A; ++a) {
    const bool greater = q[a] > b;
    b = greater ? q[a] : b;
    i = greater ? a : i;
  }
  best = b;
  arg = i;
}

template <class Scalar, class Rows>
struct CpuOps {
  using T = Scalar;
  template <class U>
  struct Buffer {
    std::vector<U> v;
    U* get() { return v.data(); }
  };

  Rows rows;
  T gamma;
  int64_t B, S, A;
  double check_tol = -1.0;  // MdpViews::fused_check

  CpuOps(Rows r, T g) : rows(r), gamma(g), B(r.m.B), S(r.m.S), A(r.m.A) {}

  // The fused probability check (MdpViews::fused_check). The optimality backup checks each row in
  // the pass that reads it for the backup (optimality_range_checked); the other sweeps go through
  // checked_blocks: f(s0, s1) runs on blocks of states whose rows fit in L2, each block's rows
  // checked just before f reads them, so the check reads P from cache instead of making a pass
  // over memory of its own. Failures are kept as the lowest flat row index (the same whichever
  // thread met them) and raised by finish_check.
  static constexpr int64_t kNoRow = std::numeric_limits<int64_t>::max();
  std::mutex check_mutex;
  int64_t bad_value = kNoRow, bad_sum = kNoRow;
  double worst_sum = 0.0;

  // Checks the flat rows [r0, r1) of a dense P, keeping the lowest failing rows over the threads.
  void check_rows(int64_t r0, int64_t r1) {
    if constexpr (std::is_same_v<Rows, DenseRows<T>>) {
      int64_t value_row, sum_row;
      double sum;
      rows.k.probability_rows(rows.m.P, S, r0, r1, 1.0 + check_tol, &value_row, &sum_row, &sum);
      if (value_row == r1 && sum_row == r1) return;
      std::lock_guard<std::mutex> lock(check_mutex);
      if (value_row < r1) bad_value = std::min(bad_value, value_row);
      if (sum_row < r1 && sum_row < bad_sum) {
        bad_sum = sum_row;
        worst_sum = sum;
      }
    }
  }

  template <class F>
  void checked_blocks(int64_t b, int64_t s0, int64_t s1, F&& f) {
    if constexpr (std::is_same_v<Rows, DenseRows<T>>) {
      if (check_tol >= 0.0) {
        const int64_t block = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, A * S));
        for (int64_t s = s0; s < s1; s += block) {
          const int64_t e = std::min(s1, s + block), r0 = (b * S + s) * A, r1 = (b * S + e) * A;
          check_rows(r0, r1);
          f(s, e);
        }
        return;
      }
    }
    f(s0, s1);
  }

  void finish_check() const {
    if (check_tol < 0.0) return;
    NIMBLEOPS_CHECK(bad_value == kNoRow,
                    "P: expected finite probabilities in [0, 1]; row ", bad_value,
                    " (flat state-action index) has a value outside");
    NIMBLEOPS_CHECK(bad_sum == kNoRow, "P: expected each row (s, a) to sum to at most 1 (+",
                    check_tol, "), row ", bad_sum, " sums to ", worst_sum);
  }

  template <class U>
  Buffer<U> alloc(int64_t n) { return Buffer<U>{std::vector<U>(static_cast<size_t>(n))}; }
  template <class U>
  void upload(U* dst, const U* src, int64_t n) { std::memcpy(dst, src, sizeof(U) * n); }
  template <class U>
  void download(U* dst, const U* src, int64_t n) { std::memcpy(dst, src, sizeof(U) * n); }

  // Runs f(b, s, q_scratch) -> StateResult over all states of the active MDPs and reduces, per
  // MDP, max/min of .d and the sum of .flag. Many MDPs: whole MDPs per chunk, stats written
  // without synchronisation. Few large MDPs: each MDP's states split across threads, chunk
  // results merged under a lock (max/min/sum do not depend on the merge order).
  template <class F>
  void sweep(const uint8_t* active, T* dmax, T* dmin, int64_t* count, F&& f) {
    sweep_ranges(active, dmax, dmin, count,
                 [&](int64_t b, int64_t s0, int64_t s1, T* q, T& lmax, T& lmin, int64_t& cnt) {
                   checked_blocks(b, s0, s1, [&](int64_t c0, int64_t c1) {
                     for (int64_t s = c0; s < c1; ++s) {
                       const StateResult<T> r = f(b, s, q);
                       lmax = std::max(lmax, r.d);
                       lmin = std::min(lmin, r.d);
                       cnt += r.flag;
                     }
                   });
                 });
  }

  // The same over ranges: g(b, s0, s1, q_scratch, lmax, lmin, cnt) handles states [s0, s1) of
  // MDP b and folds its results into lmax / lmin / cnt.
  template <class G>
  void sweep_ranges(const uint8_t* active, T* dmax, T* dmin, int64_t* count, G&& g) {
    constexpr T inf = std::numeric_limits<T>::infinity();
    const bool stats = dmax || dmin || count;
    for (int64_t b = 0; b < B; ++b) {
      if (dmax) dmax[b] = -inf;
      if (dmin) dmin[b] = inf;
      if (count) count[b] = 0;
    }
    const int64_t cost = std::max<int64_t>(1, rows.cost_per_state());
    if (B >= 4 * get_num_threads() || S * cost < 65536) {
      parallel_for(B, std::max<int64_t>(1, 65536 / (S * cost)), [&](int64_t b0, int64_t b1) {
        std::vector<T> q(static_cast<size_t>(A));
        for (int64_t b = b0; b < b1; ++b) {
          if (active && !active[b]) continue;
          T lmax = -inf, lmin = inf;
          int64_t cnt = 0;
          g(b, int64_t(0), S, q.data(), lmax, lmin, cnt);
          if (dmax) dmax[b] = lmax;
          if (dmin) dmin[b] = lmin;
          if (count) count[b] = cnt;
        }
      });
      return;
    }
    std::mutex merge_mutex;  // (chunk merges are rare: a few per MDP)
    for (int64_t b = 0; b < B; ++b) {
      if (active && !active[b]) continue;
      parallel_for(S, std::max<int64_t>(1, 65536 / cost), [&](int64_t s0, int64_t s1) {
        std::vector<T> q(static_cast<size_t>(A));
        T lmax = -inf, lmin = inf;
        int64_t cnt = 0;
        g(b, s0, s1, q.data(), lmax, lmin, cnt);
        if (!stats) return;
        std::lock_guard<std::mutex> lock(merge_mutex);
        if (dmax) dmax[b] = std::max(dmax[b], lmax);
        if (dmin) dmin[b] = std::min(dmin[b], lmin);
        if (count) count[b] += cnt;
      });
    }
  }

  void q_values(const T* V, T* Q) {
    sweep(nullptr, nullptr, nullptr, nullptr, [&](int64_t b, int64_t s, T*) {
      rows.q_state(b, s, V + b * S, gamma, Q + (b * S + s) * A);
      return StateResult<T>{T(0), 0};
    });
    finish_check();
  }

  void optimality(const T* V, T* V_out, int64_t* policy, const uint8_t* active, T* dmax, T* dmin) {
    if constexpr (std::is_same_v<Rows, DenseRows<T>>) {  // the hot loop, inlined per ISA
      const auto& m = rows.m;
      sweep_ranges(active, dmax, dmin, nullptr, [&](int64_t b, int64_t s0, int64_t s1, T*, T& lmax, T& lmin, int64_t&) {
        const T* P = m.P + b * S * A * S;
        const T* R = m.R + b * S * A;
        int64_t* pol = policy ? policy + b * S : nullptr;
        if (check_tol < 0.0) {
          rows.k.optimality_range(P, R, V + b * S, gamma, S, A, s0, s1, V_out + b * S, pol, &lmax, &lmin);
          return;
        }
        // the check in the backup's own pass over each row (no second read of P); only a failed
        // range is read again, to name its first bad row
        if (!rows.k.optimality_range_checked(P, R, V + b * S, gamma, S, A, s0, s1, V_out + b * S, pol, &lmax, &lmin,
                                             1.0 + check_tol))
          check_rows((b * S + s0) * A, (b * S + s1) * A);
      });
      finish_check();
      return;
    }
    sweep(active, dmax, dmin, nullptr, [&](int64_t b, int64_t s, T* q) {
      rows.q_state(b, s, V + b * S, gamma, q);
      T best;
      int64_t arg;
      argmax_lowest(q, A, best, arg);
      V_out[b * S + s] = best;
      if (policy) policy[b * S + s] = arg;
      return StateResult<T>{best - V[b * S + s], 0};
    });
    finish_check();
  }

  void optimality_gauss_seidel(T* V, int64_t* policy, const uint8_t* active, T* dmax, T* dmin) {
    parallel_for(B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<T> q(static_cast<size_t>(A));
      for (int64_t b = b0; b < b1; ++b) {
        if (!active[b]) continue;
        T lmax = -std::numeric_limits<T>::infinity(), lmin = std::numeric_limits<T>::infinity();
        for (int64_t s = 0; s < S; ++s) {
          rows.q_state(b, s, V + b * S, gamma, q.data());
          T best;
          int64_t arg;
          argmax_lowest(q.data(), A, best, arg);
          const T d = best - V[b * S + s];
          lmax = std::max(lmax, d);
          lmin = std::min(lmin, d);
          V[b * S + s] = best;
          if (policy) policy[b * S + s] = arg;
        }
        dmax[b] = lmax;
        dmin[b] = lmin;
      }
    });
  }

  T expected_value(int64_t b, int64_t s, const T* Vb, PolicyRef<T> pol, T* q) const {
    if (pol.actions) return rows.q_action(b, s, pol.actions[b * S + s], Vb, gamma);
    rows.q_state(b, s, Vb, gamma, q);
    const T* p = pol.probs + (b * S + s) * A;
    T v = T(0);
    for (int64_t a = 0; a < A; ++a)
      if (p[a] > T(0)) v += p[a] * q[a];
    return v;
  }

  // A deterministic policy's rows of a sparse model, gathered into a CSR of their own for the
  // evaluation sweeps that follow (begin_policy .. end_policy): S rows read in order instead of
  // one row in A strided through the interleaved model, which costs nearly a full sweep's memory
  // traffic. The same products are summed in the same order: the same bits.
  struct PolicyRows {
    std::vector<int64_t> indptr;
    std::vector<std::conditional_t<std::is_void_v<typename SparseIndex<Rows>::type>, int64_t,
                                   typename SparseIndex<Rows>::type>>
        indices;
    std::vector<T> data, R;
    bool ready = false;
  } policy_rows;

  void begin_policy(PolicyRef<T> pol) {
    if constexpr (!std::is_void_v<typename SparseIndex<Rows>::type>) {
      if (!pol.actions) return;
      const auto& m = rows.m;  // B == 1
      PolicyRows& p = policy_rows;
      p.indptr.resize(size_t(S + 1));
      p.indptr[0] = 0;
      for (int64_t s = 0; s < S; ++s) {
        const int64_t r = s * A + pol.actions[s];
        p.indptr[size_t(s + 1)] = p.indptr[size_t(s)] + (m.indptr[r + 1] - m.indptr[r]);
      }
      p.indices.resize(size_t(p.indptr[size_t(S)]));
      p.data.resize(p.indices.size());
      p.R.resize(size_t(S));
      parallel_for(S, 4096, [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s) {
          const int64_t r = s * A + pol.actions[s];
          std::copy(m.indices + m.indptr[r], m.indices + m.indptr[r + 1], p.indices.begin() + p.indptr[size_t(s)]);
          std::copy(m.data + m.indptr[r], m.data + m.indptr[r + 1], p.data.begin() + p.indptr[size_t(s)]);
          p.R[size_t(s)] = m.reward(0, s, pol.actions[s]);
        }
      });
      p.ready = true;
    }
  }
  void end_policy() { policy_rows.ready = false; }

  void expectation(const T* V, T* V_out, PolicyRef<T> pol, const uint8_t* active, T* dmax, T* dmin) {
    if constexpr (!std::is_void_v<typename SparseIndex<Rows>::type>) {
      if (pol.actions && policy_rows.ready) {
        // the gathered rows as a model of one action per state: q_action's own arithmetic
        const PolicyRows& p = policy_rows;
        const Rows gathered{{p.indptr.data(), p.indices.data(), p.data.data(), p.R.data(), 1, S, 1}};
        sweep(active, dmax, dmin, nullptr, [&](int64_t, int64_t s, T*) {
          const T v = gathered.q_action(0, s, 0, V, gamma);
          V_out[s] = v;
          return StateResult<T>{v - V[s], 0};
        });
        finish_check();
        return;
      }
    }
    if constexpr (std::is_same_v<Rows, DenseRows<T>>) {
      if (pol.actions) {
        const auto& m = rows.m;
        sweep_ranges(active, dmax, dmin, nullptr,
                     [&](int64_t b, int64_t s0, int64_t s1, T*, T& lmax, T& lmin, int64_t&) {
                       checked_blocks(b, s0, s1, [&](int64_t c0, int64_t c1) {
                         rows.k.expectation_range(m.P + b * S * A * S, m.R + b * S * A, V + b * S, gamma, S, A, c0,
                                                  c1, pol.actions + b * S, V_out + b * S, &lmax, &lmin);
                       });
                     });
        finish_check();
        return;
      }
    }
    sweep(active, dmax, dmin, nullptr, [&](int64_t b, int64_t s, T* q) {
      const T v = expected_value(b, s, V + b * S, pol, q);
      V_out[b * S + s] = v;
      return StateResult<T>{v - V[b * S + s], 0};
    });
    finish_check();
  }

  void improve(const T* V, int64_t* policy, const uint8_t* active, int64_t* changed, T* bellman_residual) {
    sweep(active, bellman_residual, nullptr, changed, [&](int64_t b, int64_t s, T* q) {
      rows.q_state(b, s, V + b * S, gamma, q);
      T best;
      int64_t arg;
      argmax_lowest(q, A, best, arg);
      int64_t& cur = policy[b * S + s];
      int64_t flag = 0;
      if (best > q[cur]) {
        cur = arg;
        flag = 1;
      }
      const T r = best - V[b * S + s];
      return StateResult<T>{r < T(0) ? -r : r, flag};
    });
  }

  void copy_active(T* dst, const T* src, const uint8_t* active) {
    for (int64_t b = 0; b < B; ++b)
      if (active[b]) std::memcpy(dst + b * S, src + b * S, sizeof(T) * S);
  }

  void shift_active(T* dst, const T* src, const T* shift, const uint8_t* active) {
    for (int64_t b = 0; b < B; ++b)
      if (active[b])
        for (int64_t s = 0; s < S; ++s) dst[b * S + s] = src[b * S + s] + shift[b];
  }
};

// Calls f(ops) with the CpuOps for this model's dtype and layout.
template <class F>
auto with_ops(const MdpViews& m, double gamma, F&& f) {
  validate_mdp(m);
  NIMBLEOPS_CHECK(m.R.device < 0, "R: expected a CPU array for the CPU kernels");
  return NIMBLEOPS_DISPATCH_FLOATING(m.R.dtype, "R", [&] {
    return with_model<scalar_t>(m, [&](auto model) {
      auto rows = rows_for(model);
      CpuOps<scalar_t, decltype(rows)> ops(rows, static_cast<scalar_t>(gamma));
      ops.check_tol = m.fused_check;
      return f(ops);
    });
  });
}

}  // namespace

struct CpuBackend {
  template <class F>
  static auto with_ops(const MdpViews& m, double gamma, F&& f) {
    return cpu::with_ops(m, gamma, std::forward<F>(f));
  }
  static void check_actions(const View& policy, int64_t A, const char* name) {
    check_index_range(policy, A, name, policy.numel());
  }
};

NIMBLEOPS_BELLMAN_DEFINE_ENTRIES(CpuBackend)

void check_index_range(const View& idx, int64_t hi, const char* name, int64_t n) {
  check_contiguous(idx, name);
  check_dtype(idx, DType::int64, name);
  check_numel(idx, n, name);
  NIMBLEOPS_CHECK(idx.device < 0, name, ": expected a CPU array");
  const int64_t* p = idx.ptr<int64_t>();
  // count out-of-range entries (vectorised, in parallel), then locate the first one on failure
  std::atomic<int64_t> bad{0};
  const auto count = dense_row_kernels<double>().count_out_of_range;
  parallel_for(n, 1 << 16, [&](int64_t i0, int64_t i1) { bad += count(p + i0, i1 - i0, hi); });
  if (bad.load() == 0) return;
  for (int64_t i = 0; i < n; ++i)
    NIMBLEOPS_CHECK_INDEX(p[i] >= 0 && p[i] < hi, name, ": ", p[i], " at position ", i, " is out of range [0, ", hi,
                          ")");
}

bool all_finite(const View& x) {
  check_contiguous(x, "array");
  NIMBLEOPS_CHECK(x.device < 0, "array: expected host memory");
  return NIMBLEOPS_DISPATCH_FLOATING(x.dtype, "array", [&] {
    return !dense_row_kernels<scalar_t>().any_non_finite(x.ptr<scalar_t>(), x.numel());
  });
}

void check_rewards(const View& R, int64_t A) {
  check_contiguous(R, "R");
  NIMBLEOPS_CHECK(R.device < 0, "R: expected host memory");
  NIMBLEOPS_CHECK(A >= 1 && R.numel() % A == 0, "R: expected a last axis of ", A, " actions, got shape ", shape_str(R));
  NIMBLEOPS_DISPATCH_FLOATING(R.dtype, "R", [&] {
    constexpr scalar_t inf = std::numeric_limits<scalar_t>::infinity();
    const scalar_t* r = R.ptr<scalar_t>();
    const int64_t n = R.numel(), states = n / A;
    // fast path: one vectorisable pass of OR-reductions; the slow pass below only runs to
    // locate a problem (or when some action is infeasible)
    if (!dense_row_kernels<scalar_t>().any_non_finite(r, n)) return;
    for (int64_t s = 0; s < states; ++s) {
      bool feasible = false;
      for (int64_t a = 0; a < A; ++a) {
        const scalar_t x = r[s * A + a];
        NIMBLEOPS_CHECK(x == x, "R: expected rewards without nan, found one at flat state ", s);
        NIMBLEOPS_CHECK(x != inf, "R: expected finite rewards or -inf (infeasible action), found +inf at flat state ",
                        s);
        feasible = feasible || x > -inf;
      }
      NIMBLEOPS_CHECK(feasible, "R: every state needs at least one feasible action (a reward > -inf); flat state ", s,
                      " has none");
    }
  });
}

void check_probabilities(const View& P, int64_t row_length, double row_sum_tol, const char* name) {
  check_contiguous(P, name);
  NIMBLEOPS_CHECK(P.device < 0, name, ": expected host memory");
  NIMBLEOPS_CHECK(row_length >= 1 && P.numel() % row_length == 0, name, ": rows of ", row_length,
                  " do not tile shape ", shape_str(P));
  NIMBLEOPS_DISPATCH_FLOATING(P.dtype, name, [&] {
    const scalar_t* p = P.ptr<scalar_t>();
    const int64_t rows = P.numel() / row_length;
    int64_t bad_value = rows, bad_sum = rows;
    std::mutex merge_mutex;
    double worst_sum = 0.0;
    parallel_for(rows, std::max<int64_t>(1, 65536 / row_length), [&](int64_t r0, int64_t r1) {
      int64_t lbad_value, lbad_sum;
      double lworst = 0.0;
      dense_row_kernels<scalar_t>().probability_rows(p, row_length, r0, r1, 1.0 + row_sum_tol, &lbad_value,
                                                     &lbad_sum, &lworst);
      if (lbad_value == r1) lbad_value = rows;
      if (lbad_sum == r1) lbad_sum = rows;
      std::lock_guard<std::mutex> lock(merge_mutex);
      {
        bad_value = std::min(bad_value, lbad_value);
        if (lbad_sum < bad_sum) {
          bad_sum = lbad_sum;
          worst_sum = lworst;
        }
      }
    });
    NIMBLEOPS_CHECK(bad_value == rows, name, ": expected finite probabilities in [0, 1]; row ", bad_value,
                    " (flat state-action index) has a value outside");
    NIMBLEOPS_CHECK(bad_sum == rows, name, ": expected each row (s, a) to sum to at most 1 (+", row_sum_tol,
                    "), row ", bad_sum, " sums to ", worst_sum);
  });
}

CsrRowSums csr_row_sums(const View& indptr, const View& data) {
  check_contiguous(indptr, "indptr");
  check_contiguous(data, "data");
  check_dtype(indptr, DType::int64, "indptr");
  NIMBLEOPS_CHECK(indptr.device < 0 && data.device < 0, "indptr, data: expected host memory");
  const int64_t rows = indptr.numel() - 1;
  CsrRowSums out;
  out.bad_value = data.numel();
  out.max_row = rows;
  if (rows <= 0) return out;
  NIMBLEOPS_DISPATCH_FLOATING(data.dtype, "data", [&] {
    const int64_t* ip = indptr.ptr<int64_t>();
    const scalar_t* d = data.ptr<scalar_t>();
    std::mutex merge_mutex;
    out.min_sum = std::numeric_limits<double>::infinity();
    out.max_sum = -std::numeric_limits<double>::infinity();
    parallel_for(rows, 4096, [&](int64_t r0, int64_t r1) {
      double lmin = std::numeric_limits<double>::infinity(), lmax = -lmin;
      int64_t lmax_row = r1, lbad = out.bad_value;
      for (int64_t r = r0; r < r1; ++r) {
        double sum = 0.0;  // in index order: the same bits for any thread count
        for (int64_t k = ip[r]; k < ip[r + 1]; ++k) {
          const double v = double(d[k]);
          if (!(v >= 0.0 && v <= 1.0) && k < lbad) lbad = k;  // written so that nan is caught
          sum += v;
        }
        lmin = std::min(lmin, sum);
        if (sum > lmax) {
          lmax = sum;
          lmax_row = r;
        }
      }
      std::lock_guard<std::mutex> lock(merge_mutex);
      out.min_sum = std::min(out.min_sum, lmin);
      out.bad_value = std::min(out.bad_value, lbad);
      if (lmax > out.max_sum || (lmax == out.max_sum && lmax_row < out.max_row)) {
        out.max_sum = lmax;
        out.max_row = lmax_row;
      }
    });
  });
  return out;
}

void check_csr(const View& indptr, const View& indices, int64_t S, int64_t A) {
  check_contiguous(indptr, "indptr");
  check_contiguous(indices, "indices");
  check_dtype(indptr, DType::int64, "indptr");
  check_numel(indptr, S * A + 1, "indptr");
  const int64_t* ip = indptr.ptr<int64_t>();
  const int64_t nnz = indices.numel();
  NIMBLEOPS_CHECK(ip[0] == 0, "indptr: expected indptr[0] == 0, got ", ip[0]);
  NIMBLEOPS_CHECK(ip[S * A] == nnz, "indptr: expected indptr[-1] == nnz == ", nnz, ", got ", ip[S * A]);
  for (int64_t r = 0; r < S * A; ++r)
    NIMBLEOPS_CHECK(ip[r] <= ip[r + 1], "indptr: expected a non-decreasing array, indptr[", r, "] = ", ip[r],
                    " > indptr[", r + 1, "] = ", ip[r + 1]);
  auto check = [&](auto* idx) {
    for (int64_t k = 0; k < nnz; ++k)
      NIMBLEOPS_CHECK_INDEX(idx[k] >= 0 && idx[k] < S, "indices: next state ", int64_t(idx[k]), " at position ", k,
                            " is out of range [0, ", S, ")");
  };
  if (indices.dtype == DType::int32)
    check(indices.ptr<int32_t>());
  else
    check(indices.ptr<int64_t>());
}

}  // namespace cpu
}  // namespace rl
}  // namespace nimbleops

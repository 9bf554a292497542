// The tabular MDP solvers, written once over a backend `Ops` that runs the sweeps (CPU:
// bellman_cpu.cpp, CUDA: bellman_cuda.cu). The whole loop and its convergence test run here,
// with no Python per iteration. A batch of MDPs is solved in lock-step: each sweep covers the
// MDPs still active; an MDP stops (and keeps its own iteration count) when its own test passes.
//
// Ops provides:
//   using T; int64_t B, S, A;
//   template <class U> Buffer<U> alloc(int64_t n)            (.get(); memory the kernels use)
//   upload(U* dst, const U* host, n) / download(U* host, const U* src, n)
//   optimality(V, V_out, policy_out, active, dmax, dmin)    V_out = T V, greedy actions
//   optimality_gauss_seidel(V, policy_out, active, dmax, dmin)   in place, states in order
//   expectation(V, V_out, PolicyRef, active, dmax, dmin)     V_out = T_pi V
//   begin_policy(PolicyRef) / end_policy()                  around the sweeps of one policy (a
//                                                           backend may gather its rows once)
//   improve(V, policy, active, changed, bellman_residual)    strict-improvement step of PI
//   copy_active(dst, src, active)                           dst[b] = src[b] for active b
//   shift_active(dst, src, shift, active)                   dst[b] = src[b] + shift[b]
// dmax[b] / dmin[b] receive max and min over s of V_out - V for each active MDP.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "nimbleops/enums.h"
#include "rl/bellman.h"

namespace nimbleops {
namespace rl {

template <class T>
struct PolicyRef {
  const int64_t* actions = nullptr;  // [B, S], or
  const T* probs = nullptr;          // [B, S, A]
};

// Threshold on ||V' - V||_sup (sup) or span(V' - V) (span) for a tol-optimal greedy policy.
inline double stop_threshold(double tol, double gamma, StopRule rule) {
  if (gamma <= 0.0) return std::numeric_limits<double>::infinity();
  return rule == StopRule::sup ? tol * (1.0 - gamma) / (2.0 * gamma) : tol * (1.0 - gamma) / gamma;
}

template <class Ops>
struct SolverWork {
  using T = typename Ops::T;
  Ops& ops;
  typename Ops::template Buffer<T> V_next, dmax, dmin;
  typename Ops::template Buffer<uint8_t> active;
  std::vector<T> dmax_h, dmin_h;
  std::vector<uint8_t> active_h;
  explicit SolverWork(Ops& o)
      : ops(o), V_next(o.template alloc<T>(o.B * o.S)), dmax(o.template alloc<T>(o.B)),
        dmin(o.template alloc<T>(o.B)), active(o.template alloc<uint8_t>(o.B)), dmax_h(o.B), dmin_h(o.B),
        active_h(o.B, 1) {}
  bool any_active() const {
    for (uint8_t a : active_h)
      if (a) return true;
    return false;
  }
  void push_active() { ops.upload(active.get(), active_h.data(), ops.B); }
  void pull_stats() {
    ops.download(dmax_h.data(), dmax.get(), ops.B);
    ops.download(dmin_h.data(), dmin.get(), ops.B);
  }
};

// Iterates V <- T_pi V for the MDPs active in `active_in` until ||V' - V||_sup < tol*(1-gamma)/gamma
// (which bounds ||V' - V_pi||_sup by tol), or max_iter sweeps.
template <class Ops>
void evaluate_policy(SolverWork<Ops>& w, PolicyRef<typename Ops::T> policy, typename Ops::T gamma, double tol,
                     int64_t max_iter, typename Ops::T* V, const std::vector<uint8_t>& active_in, SolveStats& out) {
  Ops& ops = w.ops;
  const double thresh = gamma > 0 ? tol * (1.0 - gamma) / gamma : std::numeric_limits<double>::infinity();
  w.active_h = active_in;
  ops.begin_policy(policy);
  for (int64_t it = 1; it <= max_iter && w.any_active(); ++it) {
    w.push_active();
    ops.expectation(V, w.V_next.get(), policy, w.active.get(), w.dmax.get(), w.dmin.get());
    ops.copy_active(V, w.V_next.get(), w.active.get());
    w.pull_stats();
    for (int64_t b = 0; b < ops.B; ++b) {
      if (!w.active_h[b]) continue;
      const double res = sup_norm(w.dmax_h[b], w.dmin_h[b]);
      out.iterations[b] = it;
      out.residual[b] = res;
      if (res < thresh) {
        out.converged[b] = 1;
        w.active_h[b] = 0;
      }
    }
  }
  ops.end_policy();
}

// The rule of MDP b: the span rule only where its rows sum to 1 (its constant shifts are then
// preserved by the backup, which the midrange extrapolation relies on); otherwise the sup rule.
inline StopRule rule_of(StopRule rule, const std::vector<uint8_t>& leaky, int64_t b) {
  return rule == StopRule::span && !leaky.empty() && leaky[size_t(b)] ? StopRule::sup : rule;
}

// The quantity a rule tests, from max and min of V' - V
template <class T>
double stop_residual(StopRule rule, T dmax, T dmin) {
  return rule == StopRule::sup ? double(sup_norm(dmax, dmin)) : double(dmax) - double(dmin);
}

// The span rule's midrange extrapolation, midrange(V' - V) * gamma / (1 - gamma) (Puterman 6.6.12)
template <class T>
T midrange_shift(T dmax, T dmin, T gamma) {
  return T((double(dmax) + double(dmin)) / 2.0 * gamma / (1.0 - gamma));
}

template <class Ops>
SolveStats value_iteration(Ops& ops, typename Ops::T gamma, double tol, int64_t max_iter, StopRule rule,
                           bool gauss_seidel, typename Ops::T* V, int64_t* policy,
                           const std::vector<uint8_t>& leaky = {}) {
  using T = typename Ops::T;
  SolverWork<Ops> w(ops);
  SolveStats out(ops.B);
  std::vector<T> shift_h(ops.B, T(0));  // span rule: midrange(V' - V) * gamma / (1 - gamma)
  for (int64_t it = 1; it <= max_iter && w.any_active(); ++it) {
    w.push_active();
    if (gauss_seidel) {
      ops.optimality_gauss_seidel(V, policy, w.active.get(), w.dmax.get(), w.dmin.get());
    } else {
      ops.optimality(V, w.V_next.get(), policy, w.active.get(), w.dmax.get(), w.dmin.get());
      ops.copy_active(V, w.V_next.get(), w.active.get());
    }
    w.pull_stats();
    for (int64_t b = 0; b < ops.B; ++b) {
      if (!w.active_h[b]) continue;
      const StopRule rule_b = rule_of(rule, leaky, b);
      const double res = stop_residual(rule_b, w.dmax_h[b], w.dmin_h[b]);
      out.iterations[b] = it;
      out.residual[b] = res;
      if (res < stop_threshold(tol, gamma, rule_b)) {
        out.converged[b] = 1;
        w.active_h[b] = 0;
        if (rule_b == StopRule::span && gamma > T(0)) shift_h[b] = midrange_shift(w.dmax_h[b], w.dmin_h[b], gamma);
      }
    }
  }
  if (rule == StopRule::span) {
    auto shift = ops.template alloc<T>(ops.B);
    ops.upload(shift.get(), shift_h.data(), ops.B);
    ops.upload(w.active.get(), out.converged.data(), ops.B);
    ops.shift_active(V, V, shift.get(), w.active.get());
  }
  // the returned policy is greedy with respect to the returned V
  w.active_h.assign(ops.B, 1);
  w.push_active();
  ops.optimality(V, w.V_next.get(), policy, w.active.get(), w.dmax.get(), w.dmin.get());
  return out;
}

template <class Ops>
SolveStats policy_evaluation(Ops& ops, PolicyRef<typename Ops::T> policy, typename Ops::T gamma, double tol,
                             int64_t max_iter, typename Ops::T* V) {
  SolverWork<Ops> w(ops);
  SolveStats out(ops.B);
  evaluate_policy(w, policy, gamma, tol, max_iter, V, std::vector<uint8_t>(ops.B, 1), out);
  return out;
}

// Policy iteration with iterative evaluation (warm-started from the previous V). Improvement
// switches an action only when another is strictly better (the lowest such index), so the
// loop ends when no state changes. residual = ||T V - V||_sup at the last improvement step.
template <class Ops>
SolveStats policy_iteration(Ops& ops, typename Ops::T gamma, double eval_tol, int64_t eval_max_iter,
                            int64_t max_iter, typename Ops::T* V, int64_t* policy) {
  using T = typename Ops::T;
  SolverWork<Ops> w(ops);
  SolveStats out(ops.B), eval_stats(ops.B);
  auto changed = ops.template alloc<int64_t>(ops.B);
  auto bellman = ops.template alloc<T>(ops.B);
  std::vector<int64_t> changed_h(ops.B);
  std::vector<T> bellman_h(ops.B);
  std::vector<uint8_t> active(ops.B, 1);
  PolicyRef<T> pol;
  pol.actions = policy;
  for (int64_t it = 1; it <= max_iter; ++it) {
    bool any = false;
    for (uint8_t a : active) any = any || a;
    if (!any) break;
    evaluate_policy(w, pol, gamma, eval_tol, eval_max_iter, V, active, eval_stats);
    w.active_h = active;
    w.push_active();
    ops.improve(V, policy, w.active.get(), changed.get(), bellman.get());
    ops.download(changed_h.data(), changed.get(), ops.B);
    ops.download(bellman_h.data(), bellman.get(), ops.B);
    for (int64_t b = 0; b < ops.B; ++b) {
      if (!active[b]) continue;
      out.iterations[b] = it;
      out.residual[b] = bellman_h[b];
      if (changed_h[b] == 0) {
        out.converged[b] = 1;
        active[b] = 0;
      }
    }
  }
  return out;
}

// Modified policy iteration (Puterman 6.5; QuantEcon's DiscreteDP rule): u = T v with greedy
// sigma; stop when span(u - v) < tol*(1-gamma)/gamma and return v = u + midrange(u - v) *
// gamma/(1-gamma); otherwise v = T_sigma^k u. An MDP with rows summing to less than 1 (leaky)
// stops on the sup rule, ||u - v|| < tol*(1-gamma)/(2 gamma), and returns v = u.
template <class Ops>
SolveStats modified_policy_iteration(Ops& ops, typename Ops::T gamma, double tol, int64_t k, int64_t max_iter,
                                     typename Ops::T* V, int64_t* policy, const std::vector<uint8_t>& leaky = {}) {
  using T = typename Ops::T;
  SolverWork<Ops> w(ops);
  SolveStats out(ops.B);
  auto U = ops.template alloc<T>(ops.B * ops.S);
  auto shift = ops.template alloc<T>(ops.B);
  auto finishing = ops.template alloc<uint8_t>(ops.B);
  std::vector<T> shift_h(ops.B, T(0));
  std::vector<uint8_t> finishing_h(ops.B);
  PolicyRef<T> pol;
  pol.actions = policy;
  for (int64_t it = 1; it <= max_iter && w.any_active(); ++it) {
    w.push_active();
    ops.optimality(V, U.get(), policy, w.active.get(), w.dmax.get(), w.dmin.get());
    w.pull_stats();
    bool any_finishing = false;
    for (int64_t b = 0; b < ops.B; ++b) {
      finishing_h[b] = 0;
      if (!w.active_h[b]) continue;
      const StopRule rule_b = rule_of(StopRule::span, leaky, b);
      const double res = stop_residual(rule_b, w.dmax_h[b], w.dmin_h[b]);
      out.iterations[b] = it;
      out.residual[b] = res;
      if (res < stop_threshold(tol, gamma, rule_b)) {
        out.converged[b] = 1;
        w.active_h[b] = 0;
        finishing_h[b] = 1;
        any_finishing = true;
        shift_h[b] = gamma > T(0) && rule_b == StopRule::span ? midrange_shift(w.dmax_h[b], w.dmin_h[b], gamma) : T(0);
      }
    }
    if (any_finishing) {
      ops.upload(shift.get(), shift_h.data(), ops.B);
      ops.upload(finishing.get(), finishing_h.data(), ops.B);
      ops.shift_active(V, U.get(), shift.get(), finishing.get());
    }
    if (!w.any_active()) break;
    w.push_active();
    if (k > 0) ops.begin_policy(pol);
    for (int64_t j = 0; j < k; ++j) {
      ops.expectation(U.get(), w.V_next.get(), pol, w.active.get(), w.dmax.get(), w.dmin.get());
      ops.copy_active(U.get(), w.V_next.get(), w.active.get());
    }
    ops.end_policy();
    ops.copy_active(V, U.get(), w.active.get());
  }
  return out;
}

// Backward induction: V holds [horizon+1, B, S] with V[horizon] preset (terminal values);
// policy [horizon, B, S]. V[t] = T V[t+1], policy[t] greedy.
template <class Ops>
void finite_horizon(Ops& ops, typename Ops::T gamma, int64_t horizon, typename Ops::T* V, int64_t* policy) {
  SolverWork<Ops> w(ops);
  w.push_active();
  const int64_t BS = ops.B * ops.S;
  for (int64_t t = horizon - 1; t >= 0; --t)
    ops.optimality(V + (t + 1) * BS, V + t * BS, policy + t * BS, w.active.get(), w.dmax.get(), w.dmin.get());
}

}  // namespace rl
}  // namespace nimbleops

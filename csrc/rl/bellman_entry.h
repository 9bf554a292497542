// The Bellman entry points, written once over a device backend (CPU: bellman_cpu.cpp, CUDA:
// bellman_cuda.cu): argument checks, then the kernels or a solver of bellman_solvers.h.
// Backend provides with_ops(mdp, gamma, f) (calls f with its Ops for the model's dtype and
// layout) and check_actions(view, A, name) (throws std::out_of_range for an action outside [0, A)).
#pragma once
#include <type_traits>
#include <vector>

#include "rl/bellman_api.h"

namespace nimbleops {
namespace rl {

template <class Ops>
typename Ops::template Buffer<uint8_t> all_active(Ops& ops) {
  auto active = ops.template alloc<uint8_t>(ops.B);
  std::vector<uint8_t> ones(ops.B, 1);
  ops.upload(active.get(), ones.data(), ops.B);
  return active;
}

template <class Backend, class T>
PolicyRef<T> policy_ref(const MdpViews& m, const View& policy) {
  PolicyRef<T> ref;
  check_contiguous(policy, "policy");
  check_same_device(policy, m.R, "policy", "R");
  if (policy.dtype == DType::int64) {
    check_numel(policy, m.B * m.S, "policy");
    Backend::check_actions(policy, m.A, "policy");
    ref.actions = policy.ptr<int64_t>();
  } else {
    NIMBLEOPS_CHECK(policy.dtype == m.R.dtype, "policy: expected int64 actions or ", dtype_name(m.R.dtype),
                    " probabilities, got ", dtype_name(policy.dtype));
    check_numel(policy, m.B * m.S * m.A, "policy");
    ref.probs = policy.ptr<T>();
  }
  return ref;
}

template <class Backend>
void q_values_entry(const MdpViews& m, const View& V, double gamma, const View& Q) {
  check_gamma(gamma, false);
  validate_values(m, V, "V");
  check_like(Q, m.R, "Q", "R", m.B * m.S * m.A, m.R.dtype);
  Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    ops.q_values(V.ptr<T>(), Q.ptr<T>());
  });
}

template <class Backend>
void optimality_backup_entry(const MdpViews& m, const View& V, double gamma, const View& V_out, const View& policy_out) {
  check_gamma(gamma, false);
  validate_values(m, V, "V");
  validate_values(m, V_out, "V_out");
  validate_actions(m, policy_out, "policy_out");
  Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    auto active = all_active(ops);
    ops.optimality(V.ptr<T>(), V_out.ptr<T>(), policy_out.ptr<int64_t>(), active.get(), nullptr, nullptr);
  });
}

template <class Backend>
void expectation_backup_entry(const MdpViews& m, const View& V, double gamma, const View& policy, const View& V_out) {
  check_gamma(gamma, false);
  validate_values(m, V, "V");
  validate_values(m, V_out, "V_out");
  Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    auto active = all_active(ops);
    ops.expectation(V.ptr<T>(), V_out.ptr<T>(), policy_ref<Backend, T>(m, policy), active.get(), nullptr, nullptr);
  });
}

template <class Backend>
SolveStats value_iteration_entry(const MdpViews& m, double gamma, const View& V, const View& policy, double tol,
                           int64_t max_iter, StopRule rule, bool gauss_seidel) {
  check_gamma(gamma, true);
  validate_values(m, V, "V");
  validate_actions(m, policy, "policy");
  return Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    return rl::value_iteration(ops, T(gamma), tol, max_iter, rule, gauss_seidel, V.ptr<T>(), policy.ptr<int64_t>(),
                               m.leaky);
  });
}

template <class Backend>
SolveStats policy_evaluation_entry(const MdpViews& m, double gamma, const View& policy, const View& V, double tol,
                             int64_t max_iter) {
  check_gamma(gamma, true);
  validate_values(m, V, "V");
  return Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    return rl::policy_evaluation(ops, policy_ref<Backend, T>(m, policy), T(gamma), tol, max_iter, V.ptr<T>());
  });
}

template <class Backend>
SolveStats policy_iteration_entry(const MdpViews& m, double gamma, const View& V, const View& policy, double eval_tol,
                            int64_t eval_max_iter, int64_t max_iter) {
  check_gamma(gamma, true);
  validate_values(m, V, "V");
  validate_actions(m, policy, "policy");
  Backend::check_actions(policy, m.A, "policy0");
  return Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    return rl::policy_iteration(ops, T(gamma), eval_tol, eval_max_iter, max_iter, V.ptr<T>(), policy.ptr<int64_t>());
  });
}

template <class Backend>
SolveStats modified_policy_iteration_entry(const MdpViews& m, double gamma, const View& V, const View& policy, int64_t k,
                                     double tol, int64_t max_iter) {
  check_gamma(gamma, true);
  validate_values(m, V, "V");
  validate_actions(m, policy, "policy");
  return Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    return rl::modified_policy_iteration(ops, T(gamma), tol, k, max_iter, V.ptr<T>(), policy.ptr<int64_t>(), m.leaky);
  });
}

template <class Backend>
void finite_horizon_entry(const MdpViews& m, double gamma, int64_t horizon, const View& V, const View& policy) {
  check_gamma(gamma, false);
  NIMBLEOPS_CHECK(horizon >= 0, "horizon: expected an integer >= 0, got ", horizon);
  validate_values(m, V, "V", horizon + 1);
  validate_actions(m, policy, "policy", horizon);
  Backend::with_ops(m, gamma, [&](auto& ops) {
    using T = typename std::decay_t<decltype(ops)>::T;
    rl::finite_horizon(ops, T(gamma), horizon, V.ptr<T>(), policy.ptr<int64_t>());
  });
}

}  // namespace rl
}  // namespace nimbleops

// Defines the device namespace's entry points (declared by NIMBLEOPS_BELLMAN_DEVICE_API) for Backend.
#define NIMBLEOPS_BELLMAN_DEFINE_ENTRIES(Backend)                                                               \
  void q_values(const MdpViews& m, const View& V, double gamma, const View& Q) {                                \
    q_values_entry<Backend>(m, V, gamma, Q);                                                                    \
  }                                                                                                             \
  void optimality_backup(const MdpViews& m, const View& V, double gamma, const View& V_out,                     \
                         const View& policy_out) {                                                              \
    optimality_backup_entry<Backend>(m, V, gamma, V_out, policy_out);                                           \
  }                                                                                                             \
  void expectation_backup(const MdpViews& m, const View& V, double gamma, const View& policy, const View& V_out) { \
    expectation_backup_entry<Backend>(m, V, gamma, policy, V_out);                                              \
  }                                                                                                             \
  SolveStats value_iteration(const MdpViews& m, double gamma, const View& V, const View& policy, double tol,    \
                             int64_t max_iter, StopRule rule, bool gauss_seidel) {                              \
    return value_iteration_entry<Backend>(m, gamma, V, policy, tol, max_iter, rule, gauss_seidel);              \
  }                                                                                                             \
  SolveStats policy_evaluation(const MdpViews& m, double gamma, const View& policy, const View& V, double tol,  \
                               int64_t max_iter) {                                                              \
    return policy_evaluation_entry<Backend>(m, gamma, policy, V, tol, max_iter);                                \
  }                                                                                                             \
  SolveStats policy_iteration(const MdpViews& m, double gamma, const View& V, const View& policy,              \
                              double eval_tol, int64_t eval_max_iter, int64_t max_iter) {                       \
    return policy_iteration_entry<Backend>(m, gamma, V, policy, eval_tol, eval_max_iter, max_iter);             \
  }                                                                                                             \
  SolveStats modified_policy_iteration(const MdpViews& m, double gamma, const View& V, const View& policy,     \
                                       int64_t k, double tol, int64_t max_iter) {                               \
    return modified_policy_iteration_entry<Backend>(m, gamma, V, policy, k, tol, max_iter);                     \
  }                                                                                                             \
  void finite_horizon(const MdpViews& m, double gamma, int64_t horizon, const View& V, const View& policy) {    \
    finite_horizon_entry<Backend>(m, gamma, horizon, V, policy);                                                \
  }

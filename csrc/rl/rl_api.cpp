// The public C++ API of the RL family (nimbleops/rl.h): the model checks the Python front end
// runs, then the CPU or CUDA entry point chosen by the arrays' device.
#include <string>
#include <vector>

#include "core/check.h"
#include "core/on_device.h"
#include "core/parallel.h"
#include "rl/bellman_api.h"
#include "rl/returns_api.h"
#include "rl/td_api.h"
#include "rl/traces_api.h"

namespace nimbleops {
namespace rl {

namespace {

// the row-sum tolerances of nimbleops.rl (mdp.ROW_SUM_TOL) and the leak threshold (mdp.LEAK_TOL)
double row_sum_tol(DType d) { return d == DType::float32 ? 1e-5 : 1e-9; }
constexpr double kLeakTol = 1e-5;

void refuse_device_values(const MdpViews& m) {
  NIMBLEOPS_CHECK(!m.R.is_cuda(), "check_values: the value checks of a model read it on the host; got CUDA arrays "
                                  "(check a host copy, or pass check_values = false)");
}

template <class T>
void dense_leaky(MdpViews& m) {
  const T* P = m.P.ptr<T>();
  const int64_t rows = m.B * m.S * m.A, S = m.S;
  std::vector<uint8_t> short_row(size_t(rows), 0);
  parallel_for(rows, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      double sum = 0.0;
      for (int64_t s = 0; s < S; ++s) sum += double(P[r * S + s]);
      short_row[size_t(r)] = sum < 1.0 - kLeakTol;
    }
  });
  m.leaky.assign(size_t(m.B), 0);
  const int64_t per_mdp = m.S * m.A;
  for (int64_t r = 0; r < rows; ++r)
    if (short_row[size_t(r)]) m.leaky[size_t(r / per_mdp)] = 1;
}

// The model with its leaky flags (MdpViews::leaky), for the solvers whose stopping rule needs
// them (value iteration with the span rule, modified policy iteration): one pass over P by each
// such call, as the Python solvers do, unless the model holds them already (sparse_mdp fills them
// as a by-product of its value check); the views of a device model keep none.
MdpViews with_leaky(const MdpViews& m) {
  if (!m.leaky.empty() || m.R.is_cuda()) return m;
  MdpViews marked = m;
  if (m.sparse) marked.leaky.assign(1, cpu::csr_row_sums(m.indptr, m.data).min_sum < 1.0 - kLeakTol);
  else if (m.R.dtype == DType::float32) dense_leaky<float>(marked);
  else dense_leaky<double>(marked);
  return marked;
}

void check_solver(double tol, int64_t max_iter) {
  NIMBLEOPS_CHECK(tol > 0, "tol: expected a number > 0, got ", tol);
  NIMBLEOPS_CHECK(max_iter >= 1, "max_iter: expected an integer >= 1, got ", max_iter);
}

}  // namespace

MdpViews dense_mdp(const View& P, const View& R, int64_t B, int64_t S, int64_t A, bool check_values) {
  MdpViews m = dense_views(P, R, B, S, A);
  if (check_values) {
    refuse_device_values(m);
    cpu::check_probabilities(P, S, row_sum_tol(R.dtype), "P");
    cpu::check_rewards(R, A);
  }
  return m;
}

MdpViews sparse_mdp(const View& indptr, const View& indices, const View& data, const View& R, int64_t S, int64_t A,
                    bool check_values) {
  MdpViews m = sparse_views(indptr, indices, data, R, S, A);
  if (!indptr.is_cuda()) cpu::check_csr(indptr, indices, S, A);
  if (check_values) {
    refuse_device_values(m);
    const cpu::CsrRowSums sums = cpu::csr_row_sums(indptr, data);
    if (sums.bad_value < data.numel()) {
      const double bad = data.dtype == DType::float32 ? double(data.ptr<float>()[sums.bad_value])
                                                      : data.ptr<double>()[sums.bad_value];
      NIMBLEOPS_CHECK(false, "data: expected finite probabilities in [0, 1], got ", bad, " at position ",
                      sums.bad_value);
    }
    const double tol = row_sum_tol(data.dtype);
    NIMBLEOPS_CHECK(sums.max_sum <= 1 + tol, "data: expected each row (s, a) to sum to at most 1 (+", tol, "), row ",
                    sums.max_row, " sums to ", sums.max_sum);
    cpu::check_rewards(R, A);
    m.leaky.assign(1, sums.min_sum < 1.0 - kLeakTol);
  }
  return m;
}

void q_values(const MdpViews& mdp, const View& V, double gamma, const View& Q) {
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "q_values", q_values(mdp, V, gamma, Q));
}

void bellman_optimality_backup(const MdpViews& mdp, const View& V, double gamma, const View& V_out,
                               const View& policy_out) {
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "bellman_optimality_backup",
                      optimality_backup(mdp, V, gamma, V_out, policy_out));
}

void bellman_expectation_backup(const MdpViews& mdp, const View& V, double gamma, const View& policy,
                                const View& V_out) {
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "bellman_expectation_backup",
                      expectation_backup(mdp, V, gamma, policy, V_out));
}

SolveStats value_iteration(const MdpViews& mdp, double gamma, const View& V, const View& policy, double tol,
                           int64_t max_iter, StopRule stop, bool gauss_seidel) {
  check_solver(tol, max_iter);
  NIMBLEOPS_CHECK(!(gauss_seidel && stop == StopRule::span),
                  "stop='span' needs Jacobi sweeps; use stop='sup' with gauss_seidel=True");
  NIMBLEOPS_CHECK(!(gauss_seidel && mdp.R.is_cuda()),
                  "gauss_seidel=True is sequential over states and runs on the CPU only; got CUDA tensors");
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "value_iteration",
                      value_iteration(stop == StopRule::span ? with_leaky(mdp) : mdp, gamma, V, policy, tol, max_iter,
                                      stop, gauss_seidel));
}

SolveStats policy_evaluation(const MdpViews& mdp, double gamma, const View& policy, const View& V, double tol,
                             int64_t max_iter) {
  check_solver(tol, max_iter);
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "policy_evaluation", policy_evaluation(mdp, gamma, policy, V, tol, max_iter));
}

SolveStats policy_iteration(const MdpViews& mdp, double gamma, const View& V, const View& policy, double eval_tol,
                            int64_t eval_max_iter, int64_t max_iter) {
  NIMBLEOPS_CHECK(eval_tol > 0, "eval_tol: expected a number > 0, got ", eval_tol);
  NIMBLEOPS_CHECK(eval_max_iter >= 1, "eval_max_iter: expected an integer >= 1, got ", eval_max_iter);
  NIMBLEOPS_CHECK(max_iter >= 1, "max_iter: expected an integer >= 1, got ", max_iter);
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "policy_iteration",
                      policy_iteration(mdp, gamma, V, policy, eval_tol, eval_max_iter, max_iter));
}

SolveStats modified_policy_iteration(const MdpViews& mdp, double gamma, const View& V, const View& policy, int64_t k,
                                     double tol, int64_t max_iter) {
  check_solver(tol, max_iter);
  NIMBLEOPS_CHECK(k >= 1, "k: expected an integer >= 1, got ", k);
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "modified_policy_iteration",
                      modified_policy_iteration(with_leaky(mdp), gamma, V, policy, k, tol, max_iter));
}

void finite_horizon(const MdpViews& mdp, double gamma, int64_t horizon, const View& V, const View& policy) {
  NIMBLEOPS_ON_DEVICE(mdp.R.is_cuda(), "finite_horizon", finite_horizon(mdp, gamma, horizon, V, policy));
}

void estimate_returns(const ReturnsViews& v, const View& out0, const std::optional<View>& out1) {
  validate_returns(v);
  NIMBLEOPS_ON_DEVICE(v.rewards.is_cuda(), "estimate_returns", returns_forward(v, out0, out1));
}

void estimate_returns_backward(const ReturnsViews& v, const std::optional<View>& grad_out0,
                               const std::optional<View>& grad_out1, const View& grad_rewards,
                               const std::optional<View>& grad_values, const View& grad_next_values) {
  validate_returns(v);
  NIMBLEOPS_ON_DEVICE(v.rewards.is_cuda(), "estimate_returns_backward",
                      returns_backward(v, grad_out0, grad_out1, grad_rewards, grad_values, grad_next_values));
}

void td_update_(const TdViews& v, const View& td_errors) {
  check_td_disjoint(v, td_errors);
  NIMBLEOPS_ON_DEVICE(v.Q.is_cuda(), "td_update_", td_update(v, td_errors));
}

void tabular_trace_step_(const TabularTraceViews& v, const View& td_errors) {
  check_trace_disjoint(v, td_errors);
  NIMBLEOPS_ON_DEVICE(v.Q.is_cuda(), "tabular_trace_step_", tabular_trace_step(v, td_errors));
}

void linear_td_step_(const LinearTraceViews& v, const View& td_errors) {
  check_trace_disjoint(v, td_errors);
  NIMBLEOPS_ON_DEVICE(v.w.is_cuda(), "linear_td_step_", linear_td_step(v, td_errors));
}

}  // namespace rl
}  // namespace nimbleops

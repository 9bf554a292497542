// nimbleops C++ API, reinforcement-learning family: Bellman sweeps and the tabular MDP solvers,
// return estimators, tabular TD updates and eligibility traces.
//
// Every array is a nimbleops::View (nimbleops/view.h): a pointer into memory the caller owns, its
// shape, strides in elements, dtype and device (-1 = host; >= 0 = a CUDA device, on the stream
// given in the arguments' `stream` field, 0 = the default stream). The Python functions of
// nimbleops.rl call these same kernels after converting their arguments: here the caller hands
// over the canonical layout each function states (contiguous arrays, int64 indices, bool masks),
// and the floating arrays of one call share one dtype (float32 or float64).
//
// Errors: std::invalid_argument for a wrong shape, dtype, device or value and std::out_of_range
// for an index outside its range, with the messages the Python functions give (they are raised
// here, in the same checks). A call that throws has written nothing. A function whose name ends
// in _ updates its first table in place; calls that update the same table from several threads
// must be serialised by the caller.
//
// CUDA: device views run the CUDA kernels on the given stream, asynchronously (no device
// synchronisation); a library built without CUDA throws std::invalid_argument for them. The value
// checks that read every element (probabilities, rewards, index ranges) run on the host: for
// device arrays they are the caller's (the kernels never read or write out of bounds whatever the
// indices, but skip an out-of-range transition).
#pragma once
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "nimbleops/enums.h"
#include "nimbleops/view.h"

namespace nimbleops {
namespace rl {

// ---- Tabular MDPs ------------------------------------------------------------------------------
// A batch of B finite MDPs with S states and A actions, dense (P [B, S, A, S], next state last)
// or sparse (one MDP, B = 1: P's S*A rows in CSR form, indptr [S*A + 1] int64, indices [nnz]
// int32/int64 next states, data [nnz] probabilities), with expected rewards R [B, S, A] (-inf
// marks an infeasible action). Build one with dense_mdp / sparse_mdp, which check it.
struct MdpViews {
  bool sparse = false;
  View P;                        // dense: [B, S, A, S]
  View indptr, indices, data;    // sparse: CSR over S*A rows
  View R;                        // [B, S, A]
  int64_t B = 1, S = 0, A = 0;
  uintptr_t stream = 0;          // CUDA: the caller's stream (0 = default)
  // per MDP: 1 where a row sums to less than 1 (a probability of ending). The span stopping rule
  // and its midrange extrapolation assume rows summing to 1; such MDPs use the sup rule instead.
  // Empty: not marked, and every row counts as summing to 1 (the solvers of this API mark a host
  // model when their rule needs it).
  std::vector<uint8_t> leaky;
  // >= 0: the CPU sweeps of a dense model check P's rows (values in [0, 1], sums at most
  // 1 + fused_check) within the sweep (the optimality backup in the pass that reads each row, the
  // others block by block just before reading it) and raise after the pass; < 0: no check (done
  // beforehand, or not wanted).
  double fused_check = -1.0;
};

// A dense model [B, S, A, S] / [B, S, A], checked: shapes, dtypes, contiguity and devices; with
// check_values, and on the host, every row of P finite in [0, 1] summing to at most 1 + tol
// (tol 1e-9 for float64, 1e-5 for float32), R without nan or +inf and with a feasible action in
// every state. check_values on device views throws: check them on the host, or pass
// check_values = false. The leaky flags (an MDP whose rows may sum to less than 1 is solved with the
// sup rule where span is asked) are computed by the solvers that need them, on the host; a device
// model's rows count as summing to 1.
MdpViews dense_mdp(const View& P, const View& R, int64_t B, int64_t S, int64_t A, bool check_values = true);
// A sparse model (the CSR structure is always checked: indptr[0] == 0, non-decreasing,
// indptr[S*A] == nnz, 0 <= indices < S), with the value checks of dense_mdp.
MdpViews sparse_mdp(const View& indptr, const View& indices, const View& data, const View& R, int64_t S, int64_t A,
                    bool check_values = true);

// Per MDP of the batch: the iterations run, the last residual (the stopping rule's quantity) and
// whether the rule was met within max_iter.
struct SolveStats {
  std::vector<int64_t> iterations;
  std::vector<double> residual;
  std::vector<uint8_t> converged;
  explicit SolveStats(int64_t B) : iterations(B, 0), residual(B, std::nan("")), converged(B, 0) {}
};

// Q [B, S, A] = R + gamma P V, V [B, S].
void q_values(const MdpViews& mdp, const View& V, double gamma, const View& Q);
// V_out [B, S] = max_a Q(V), policy_out [B, S] int64 = the lowest maximising action.
void bellman_optimality_backup(const MdpViews& mdp, const View& V, double gamma, const View& V_out,
                               const View& policy_out);
// V_out [B, S] = sum_a pi(a | s) Q(V)[s, a]; policy: [B, S] int64 actions or [B, S, A]
// probabilities in the model's dtype.
void bellman_expectation_backup(const MdpViews& mdp, const View& V, double gamma, const View& policy,
                                const View& V_out);
// The solvers run every iteration in C++ and stop each MDP of the batch by its own test. V [B, S]
// holds the initial values and receives the solution; policy [B, S] int64 receives the greedy
// policy (policy_iteration and modified_policy_iteration also read it as the initial policy).
// tol > 0, max_iter >= 1, 0 <= gamma < 1.
//   value_iteration: stop when a tol-optimal greedy policy is certain (sup: ||V' - V||_sup <
//     tol (1 - gamma) / (2 gamma); span: span(V' - V) < tol (1 - gamma) / gamma, then the
//     midrange extrapolation); gauss_seidel: in-place sweeps over states in order (sup rule, CPU).
SolveStats value_iteration(const MdpViews& mdp, double gamma, const View& V, const View& policy, double tol = 1e-6,
                           int64_t max_iter = 10000, StopRule stop = StopRule::sup, bool gauss_seidel = false);
//   policy_evaluation: V = V_pi by iterative sweeps until ||V' - V||_sup < tol (1 - gamma) / gamma
//     (then ||V - V_pi||_sup < tol); policy as for bellman_expectation_backup.
SolveStats policy_evaluation(const MdpViews& mdp, double gamma, const View& policy, const View& V, double tol = 1e-6,
                             int64_t max_iter = 10000);
//   policy_iteration: Howard's, each evaluation by iterative sweeps (eval_tol, eval_max_iter),
//     improvement only where strictly better; stops when the policy is stable.
SolveStats policy_iteration(const MdpViews& mdp, double gamma, const View& V, const View& policy,
                            double eval_tol = 1e-8, int64_t eval_max_iter = 100000, int64_t max_iter = 1000);
//   modified_policy_iteration: k evaluation sweeps per improvement (k >= 1), the stopping rule of
//     value_iteration's sup rule.
SolveStats modified_policy_iteration(const MdpViews& mdp, double gamma, const View& V, const View& policy,
                                     int64_t k = 20, double tol = 1e-6, int64_t max_iter = 10000);
// Backward induction over horizon steps (0 <= gamma <= 1): V [horizon + 1, B, S] with V[horizon]
// the terminal values (read), V[t] = max_a Q(V[t+1]) (written); policy [horizon, B, S] int64.
void finite_horizon(const MdpViews& mdp, double gamma, int64_t horizon, const View& V, const View& policy);

// ---- Return estimators ---------------------------------------------------------------------------
// Rollouts are time-major [T, B], every array contiguous; terminated[t] (bool): the episode
// reached a terminal state at step t (no bootstrap); truncated[t] (bool): it was cut by a time
// limit (bootstrap from next_values[t], the recursion stops). values[t] = V(s_t), next_values[t]
// = V(s_{t+1}); gamma: gamma_scalar, or a [T, B] array. With nt = 1 - terminated and cont = (not
// done and t < T - 1):
//   discounted: G_t = r_t + g_t nt (cont ? G_{t+1} : nv_t)
//   lambda:     G_t = r_t + g_t nt ((1 - lam) nv_t + lam (cont ? G_{t+1} : nv_t))
//   gae:        A_t = r_t + g_t nt nv_t - v_t + g_t lam cont A_{t+1}; out0 = A, out1 = A + v
//   n_step:     G_t = sum_{k<m} D_k r_{t+k} + D_m nt_{t+m-1} nv_{t+m-1}, D_k = prod_{j<k} g_{t+j},
//               m = min(n, T - t, steps to the end of the episode)
//   vtrace:     rhos = min(rho_clip, e^log_rho), traces = lam min(c_clip, e^log_rho), given;
//               a_t = rho_t (r_t + g_t nt nv_t - v_t) + g_t c_t cont a_{t+1}; out0 = vs = v + a,
//               out1 = pg_t = rho_t (r_t + g_t nt (cont ? vs_{t+1} : nv_t) - v_t)
struct ReturnsViews {
  Estimator estimator = Estimator::gae;
  View rewards, next_values, terminated, truncated;
  std::optional<View> values, gamma, rhos, traces;
  double gamma_scalar = 0.0, lam = 1.0;
  int64_t n = 1;
  uintptr_t stream = 0;  // CUDA: the caller's stream
};

// out0 [T, B] (and out1 [T, B] for gae and vtrace) as above. Rewards must be finite (checked in
// the CPU kernel's pass; the caller's for device arrays).
void estimate_returns(const ReturnsViews& v, const View& out0, const std::optional<View>& out1 = std::nullopt);
// The adjoint: the gradients of rewards, values (gae, vtrace; optional) and next_values from those
// of the outputs (either may be absent: zero).
void estimate_returns_backward(const ReturnsViews& v, const std::optional<View>& grad_out0,
                               const std::optional<View>& grad_out1, const View& grad_rewards,
                               const std::optional<View>& grad_values, const View& grad_next_values);

// ---- Tabular TD updates --------------------------------------------------------------------------
// Tabular TD updates from a batch of N transitions, in place on Q [S, A] (V [S] is Q with A = 1).
//   td0:            target = r + gamma (1 - terminated) V[s']
//   sarsa:          target = r + gamma (1 - terminated) Q[s', a']
//   q_learning:     target = r + gamma (1 - terminated) max_a Q[s', a]
//   expected_sarsa: target = r + gamma (1 - terminated) sum_a pi(a | s') Q[s', a], pi = the given
//                   probabilities, or epsilon-greedy of Q[s'] (1 - epsilon spread evenly over the
//                   maximising actions, epsilon / A on each action)
//   double_q:       X = Q1 where update_first else Q2, Y the other table:
//                   target = r + gamma (1 - terminated) Y[s', argmax_a X[s', a]] (lowest index)
// delta = target - X[s, a]; X[s, a] += alpha delta. Modes: sequential (in order, each update seen
// by the next: the online algorithm) or accumulate (every delta from the tables as they were
// before the call, increments summed per cell in transition order: numpy.add.at's semantics).
// Every index and value is checked before anything is written.
struct TdViews {
  TdRule rule = TdRule::q_learning;
  bool sequential = true;
  View Q;                          // [S, A] float, written in place
  std::optional<View> Q2;          // double_q
  View s, s_next;                  // [N] int64
  std::optional<View> a, a_next;   // [N] int64 (a: all but td0; a_next: sarsa)
  View rewards;                    // [N], Q's dtype
  View terminated;                 // [N] bool
  std::optional<View> alpha, gamma;  // [N] arrays, else the scalars
  double alpha_scalar = 0.1, gamma_scalar = 0.99;
  std::optional<View> probs;       // expected_sarsa: [N, A]
  double epsilon = 0.0;
  std::optional<View> update_first;  // double_q: [N] bool
  uintptr_t stream = 0;            // CUDA: the caller's stream
};

// Updates Q (and Q2) in place; td_errors [N] (Q's dtype) receives the N TD errors. alpha, gamma in
// [0, 1]; indices in range (checked on the host before anything is written).
void td_update_(const TdViews& v, const View& td_errors);

// ---- Eligibility traces --------------------------------------------------------------------------
// Eligibility-trace steps for B parallel environments sharing one table or weight vector.
// Synchronous semantics: every environment's TD error comes from the table / weights as they
// are before the step, and the updates are summed over the environments in order (one thread
// per cell or weight, so the result never depends on the thread count).
//
// Tabular (table Q [S, A], V is A = 1; traces e [B, S, A]), per environment b, with
// done = terminated | truncated:
//   td_lambda / sarsa_lambda: delta = r + gamma (1 - terminated) Q[s', a'] - Q[s, a]
//     (td_lambda: A = 1, a = a' = 0)
//   watkins_q_lambda:        delta = r + gamma (1 - terminated) max Q[s', .] - Q[s, a]
//   then e[s, a] += 1 (accumulating) | = 1 (replacing) | = (1 - alpha) e[s, a] + 1 (dutch);
//   Q += alpha sum_b delta_b e_b; then e_b *= gamma lam, or e_b = 0 where done (and, for
//   Watkins, where a' is not greedy at s': Q[s', a'] < max Q[s', .]).
// Linear (weights w [d], features phi, phi' [B, d], traces z [B, d]):
//   td0:         delta = r + gamma (1 - terminated) w.phi' - w.phi; w += alpha sum_b delta_b phi_b
//   td_lambda:   z = gamma lam z + phi; w += alpha sum_b delta_b z_b; z = 0 where done
//   true_online: (van Seijen & Sutton 2014) v = w.phi, v' = w.phi', delta = r + gamma (1 - terminated) v' - v,
//                z = gamma lam z + (1 - alpha gamma lam z.phi) phi,
//                w += alpha sum_b ((delta + v - v_old) z - (v - v_old) phi), v_old = v';
//                z = 0, v_old = 0 where done
struct TabularTraceViews {
  TraceRule rule = TraceRule::td_lambda;
  TraceKind kind = TraceKind::accumulating;
  View Q, e;                       // [S, A], [B, S, A]
  View s, s_next;                  // [B] int64
  std::optional<View> a, a_next;   // [B] int64
  View rewards, terminated, truncated;
  double alpha = 0.1, gamma = 0.99, lam = 0.9;
  uintptr_t stream = 0;  // CUDA: the caller's stream
};

struct LinearTraceViews {
  LinearRule rule = LinearRule::td0;
  View w;                          // [d]
  std::optional<View> z, v_old;    // [B, d], [B]
  View phi, phi_next;              // [B, d]
  View rewards, terminated;
  std::optional<View> truncated;
  double alpha = 0.1, gamma = 0.99, lam = 0.9;
  uintptr_t stream = 0;
};

// Updates Q and e (w, z, v_old) in place; td_errors [B] receives each environment's TD error.
void tabular_trace_step_(const TabularTraceViews& v, const View& td_errors);
void linear_td_step_(const LinearTraceViews& v, const View& td_errors);

}  // namespace rl
}  // namespace nimbleops

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
#pragma once
#include <optional>

#include "core/check.h"
#include "core/view.h"

namespace nimbleops {
namespace rl {

enum class TraceRule : int { td_lambda = 0, sarsa_lambda = 1, watkins_q_lambda = 2 };
enum class TraceKind : int { accumulating = 0, replacing = 1, dutch = 2 };
enum class LinearRule : int { td0 = 0, td_lambda = 1, true_online = 2 };

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

namespace cpu {
void tabular_trace_step(const TabularTraceViews& v, const View& td_errors);
void linear_td_step(const LinearTraceViews& v, const View& td_errors);
}  // namespace cpu
namespace cuda {
// Index ranges and finite rewards are checked by the caller on the device (the kernels still
// skip an out-of-range environment); one thread per environment, then per cell / weight.
void tabular_trace_step(const TabularTraceViews& v, const View& td_errors);
void linear_td_step(const LinearTraceViews& v, const View& td_errors);
}  // namespace cuda

}  // namespace rl
}  // namespace nimbleops

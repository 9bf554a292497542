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
#pragma once
#include <optional>

#include "core/check.h"
#include "core/view.h"

namespace nimbleops {
namespace rl {

enum class TdRule : int { td0 = 0, sarsa = 1, q_learning = 2, expected_sarsa = 3, double_q = 4 };

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

namespace cpu {
// Validates everything, then updates; writes the N TD errors into td_errors (Q's dtype).
void td_update(const TdViews& v, const View& td_errors);
}  // namespace cpu
namespace cuda {
// Shapes, dtypes and devices are validated here; index ranges and finite rewards by the caller
// (the Python wrapper, on the device) before the call; the kernels still skip an out-of-range
// transition, so nothing is read or written out of bounds. Accumulate mode sorts the cells
// (a stable radix sort) and sums each cell's increments in transition order: the bits of the
// CPU and of numpy.add.at. Sequential mode is the online chain: one GPU thread.
void td_update(const TdViews& v, const View& td_errors);
}  // namespace cuda

}  // namespace rl
}  // namespace nimbleops

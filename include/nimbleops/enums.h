// The choices the op families take, as enums: shared by the public API (nimbleops/rl.h,
// nimbleops/vision.h) and the kernels. No includes: the per-ISA kernel units include it.
#pragma once

namespace nimbleops {
namespace rl {

// Stopping rule of value iteration: ||V' - V||_sup (sup) or span(V' - V) (span, with the
// midrange extrapolation; for models whose rows of P sum to 1).
enum class StopRule { sup, span };

// Return estimator (nimbleops/rl.h, ReturnsViews).
enum class Estimator : int { discounted = 0, lambda = 1, gae = 2, n_step = 3, vtrace = 4 };

// Tabular TD rule (nimbleops/rl.h, TdViews).
enum class TdRule : int { td0 = 0, sarsa = 1, q_learning = 2, expected_sarsa = 3, double_q = 4 };

// Eligibility traces: the tabular rule, the trace kind, the linear rule.
enum class TraceRule : int { td_lambda = 0, sarsa_lambda = 1, watkins_q_lambda = 2 };
enum class TraceKind : int { accumulating = 0, replacing = 1, dutch = 2 };
enum class LinearRule : int { td0 = 0, td_lambda = 1, true_online = 2 };

}  // namespace rl

namespace vision {

// Position-sensitive RoI op: align with average or max over the samples of a bin, or pool.
enum class PsRoiOp : int { align_avg = 0, align_max = 1, pool = 2 };

// The channel gathers (nimbleops/vision.h, ChannelGatherViews).
enum class ChannelOp : int {
  shuffle = 0,                       // 1 input [N, C], 1 output: out[k*g + i] = in[i*(C/g) + k]
  concat_shuffle_split = 1,          // 2 inputs a [N, Ca], b [N, Cb], 2 outputs of (Ca + Cb) / 2
  concat_shuffle_split_backward = 2  // 2 inputs (grads of the outputs), 2 outputs (grads of a, b)
};

}  // namespace vision
}  // namespace nimbleops

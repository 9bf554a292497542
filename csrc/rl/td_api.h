// Tabular TD updates: the per-device entry points of nimbleops::rl::td_update_ (semantics in
// nimbleops/rl.h, beside TdViews).
#pragma once
#include <optional>

#include "core/check.h"
#include "nimbleops/rl.h"

namespace nimbleops {
namespace rl {

// The tables updated in place share no memory with each other or with what the call reads.
inline void check_td_disjoint(const TdViews& v, const View& td_errors) {
  const char* table = v.rule == TdRule::td0 ? "V" : (v.rule == TdRule::double_q ? "Q1" : "Q");
  check_disjoint({{table, &v.Q}, {"Q2", view_or_null(v.Q2)}},
                 {{"s", &v.s}, {"s_next", &v.s_next}, {"a", view_or_null(v.a)}, {"a_next", view_or_null(v.a_next)},
                  {"r", &v.rewards}, {"terminated", &v.terminated}, {"alpha", view_or_null(v.alpha)},
                  {"gamma", view_or_null(v.gamma)}, {"probs", view_or_null(v.probs)},
                  {"update_first", view_or_null(v.update_first)}, {"td_errors", &td_errors}});
}

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

// Eligibility-trace steps: the per-device entry points (semantics in nimbleops/rl.h, beside
// TabularTraceViews and LinearTraceViews).
#pragma once
#include <optional>

#include "core/check.h"
#include "nimbleops/rl.h"

namespace nimbleops {
namespace rl {

// The arrays updated in place share no memory with each other or with what the call reads.
inline void check_trace_disjoint(const TabularTraceViews& v, const View& td_errors) {
  check_disjoint({{v.rule == TraceRule::td_lambda ? "V" : "Q", &v.Q}, {"e", &v.e}},
                 {{"s", &v.s}, {"s_next", &v.s_next}, {"a", view_or_null(v.a)}, {"a_next", view_or_null(v.a_next)},
                  {"r", &v.rewards}, {"terminated", &v.terminated}, {"truncated", &v.truncated},
                  {"td_errors", &td_errors}});
}
inline void check_trace_disjoint(const LinearTraceViews& v, const View& td_errors) {
  check_disjoint({{"w", &v.w}, {"z", view_or_null(v.z)}, {"v_old", view_or_null(v.v_old)}},
                 {{"phi", &v.phi}, {"r", &v.rewards}, {"phi_next", &v.phi_next}, {"terminated", &v.terminated},
                  {"truncated", view_or_null(v.truncated)}, {"td_errors", &td_errors}});
}

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
